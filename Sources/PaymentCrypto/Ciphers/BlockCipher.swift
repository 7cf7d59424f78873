/// A block cipher keyed once and used for many blocks. Implementations are immutable and
/// safe to share across tasks.
public protocol BlockCipher: Sendable {
    /// Block size in bytes (8 for DES and 3DES, 16 for AES and SM4).
    var blockSize: Int { get }
    /// Encrypts one block; `block.count` must equal ``blockSize``.
    func encrypt(block: [UInt8]) -> [UInt8]
    /// Decrypts one block; `block.count` must equal ``blockSize``.
    func decrypt(block: [UInt8]) -> [UInt8]
}

/// Errors from key and data handling in PaymentCrypto.
public struct CryptoError: Error, Hashable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    static func keyLength(_ algorithm: String, _ allowed: String, _ actual: Int) -> CryptoError {
        CryptoError("\(algorithm) key must be \(allowed) bytes, got \(actual)")
    }
    static func dataLength(_ what: String, multipleOf n: Int, _ actual: Int) -> CryptoError {
        CryptoError("\(what) must be a multiple of \(n) bytes, got \(actual)")
    }
}

extension BlockCipher {
    /// Electronic codebook over whole blocks.
    public func encryptECB(_ data: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard data.count % blockSize == 0 else { throw .dataLength("ECB data", multipleOf: blockSize, data.count) }
        var out: [UInt8] = []
        out.reserveCapacity(data.count)
        for start in stride(from: 0, to: data.count, by: blockSize) {
            out += encrypt(block: Array(data[start..<start + blockSize]))
        }
        return out
    }

    public func decryptECB(_ data: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard data.count % blockSize == 0 else { throw .dataLength("ECB data", multipleOf: blockSize, data.count) }
        var out: [UInt8] = []
        out.reserveCapacity(data.count)
        for start in stride(from: 0, to: data.count, by: blockSize) {
            out += decrypt(block: Array(data[start..<start + blockSize]))
        }
        return out
    }

    /// Cipher block chaining with an initial vector (zeros by default, as payment MACs and
    /// key blocks use).
    public func encryptCBC(_ data: [UInt8], iv: [UInt8]? = nil) throws(CryptoError) -> [UInt8] {
        guard data.count % blockSize == 0 else { throw .dataLength("CBC data", multipleOf: blockSize, data.count) }
        var chain = iv ?? [UInt8](repeating: 0, count: blockSize)
        var out: [UInt8] = []
        out.reserveCapacity(data.count)
        for start in stride(from: 0, to: data.count, by: blockSize) {
            for i in 0..<blockSize { chain[i] ^= data[start + i] }
            chain = encrypt(block: chain)
            out += chain
        }
        return out
    }

    public func decryptCBC(_ data: [UInt8], iv: [UInt8]? = nil) throws(CryptoError) -> [UInt8] {
        guard data.count % blockSize == 0 else { throw .dataLength("CBC data", multipleOf: blockSize, data.count) }
        var chain = iv ?? [UInt8](repeating: 0, count: blockSize)
        var out: [UInt8] = []
        out.reserveCapacity(data.count)
        for start in stride(from: 0, to: data.count, by: blockSize) {
            let block = Array(data[start..<start + blockSize])
            var plain = decrypt(block: block)
            for i in 0..<blockSize { plain[i] ^= chain[i] }
            out += plain
            chain = block
        }
        return out
    }
}
