import PaymentCore
import Crypto
import CryptoExtras

/// AES-CMAC (NIST SP 800-38B, RFC 4493), through swift-crypto.
public enum AESCMAC {
    public static func mac(_ data: [UInt8], key: [UInt8], length: Int = 16) throws(CryptoError) -> [UInt8] {
        guard [16, 24, 32].contains(key.count) else { throw .keyLength("AES-CMAC", "16, 24 or 32", key.count) }
        do {
            var cmac = try AES.CMAC(key: SymmetricKey(data: key), outputSize: length)
            cmac.update(data: data)
            return Array(cmac.finalize())
        } catch {
            throw CryptoError("AES-CMAC failed: \(error)")
        }
    }
}

/// CMAC (NIST SP 800-38B) over any block cipher, for TDES and SM4 where swift-crypto has none
/// (TR-31 version B uses TDES-CMAC).
public enum CMAC {
    public static func mac(_ data: [UInt8], cipher: some BlockCipher, length: Int? = nil) -> [UInt8] {
        let n = cipher.blockSize
        let (k1, k2) = subkeys(cipher)
        var blocks = data.isEmpty ? 1 : (data.count + n - 1) / n
        if blocks == 0 { blocks = 1 }
        let complete = !data.isEmpty && data.count % n == 0
        var last: [UInt8]
        if complete {
            last = xor(Array(data[(blocks - 1) * n..<blocks * n]), k1)
        } else {
            var tail = Array(data[(blocks - 1) * n..<data.count])
            tail.append(0x80)
            tail += [UInt8](repeating: 0, count: n - tail.count)
            last = xor(tail, k2)
        }
        var chain = [UInt8](repeating: 0, count: n)
        for b in 0..<(blocks - 1) {
            chain = cipher.encrypt(block: xor(chain, Array(data[b * n..<(b + 1) * n])))
        }
        last = xor(last, chain)
        return Array(cipher.encrypt(block: last).prefix(length ?? n))
    }

    /// Subkey generation of SP 800-38B §6.1 (Rb = 0x1B for 64-bit blocks, 0x87 for 128-bit).
    static func subkeys(_ cipher: some BlockCipher) -> ([UInt8], [UInt8]) {
        let rb: UInt8 = cipher.blockSize == 8 ? 0x1B : 0x87
        func double(_ x: [UInt8]) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: x.count)
            var carry: UInt8 = 0
            for i in stride(from: x.count - 1, through: 0, by: -1) {
                out[i] = x[i] << 1 | carry
                carry = x[i] >> 7
            }
            if x[0] & 0x80 != 0 { out[x.count - 1] ^= rb }
            return out
        }
        let l = cipher.encrypt(block: [UInt8](repeating: 0, count: cipher.blockSize))
        let k1 = double(l)
        return (k1, double(k1))
    }
}
