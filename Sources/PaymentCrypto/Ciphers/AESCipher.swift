import Crypto
import CryptoExtras
import PaymentCore

/// AES (FIPS 197) as a ``BlockCipher``, through swift-crypto's single-block permutation.
/// Used for ISO 9564 format 4 PIN blocks, AES key derivation and TR-31 version D.
public struct AESCipher: BlockCipher, CustomStringConvertible {
    public var blockSize: Int { 16 }
    private let key: SymmetricKey

    public init(key: [UInt8]) throws(CryptoError) {
        guard [16, 24, 32].contains(key.count) else { throw .keyLength("AES", "16, 24 or 32", key.count) }
        self.key = SymmetricKey(data: key)
    }

    public func encrypt(block: [UInt8]) -> [UInt8] {
        var b = block
        do { try AES.permute(&b, key: key) } catch { preconditionFailure("AES block must be 16 bytes") }
        return b
    }

    public func decrypt(block: [UInt8]) -> [UInt8] {
        var b = block
        do { try AES.inversePermute(&b, key: key) } catch { preconditionFailure("AES block must be 16 bytes") }
        return b
    }

    public var description: String {
        "AES(\(key.bitCount)-bit, KCV \(encrypt(block: [UInt8](repeating: 0, count: 16)).prefix(3).hexString))"
    }
}
