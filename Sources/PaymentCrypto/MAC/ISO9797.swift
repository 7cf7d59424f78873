import PaymentCore

/// Padding methods of ISO/IEC 9797-1 §6.3.
public enum MACPadding: Int, Sendable, CaseIterable {
    /// Method 1: zero bytes to a block boundary (none when already aligned; empty data gets one block).
    case method1 = 1
    /// Method 2: one `80` byte, then zero bytes to a block boundary (always adds at least one byte).
    case method2 = 2

    /// Pads `data` to a multiple of `blockSize`.
    public func pad(_ data: [UInt8], blockSize: Int) -> [UInt8] {
        switch self {
        case .method1:
            if data.isEmpty { return [UInt8](repeating: 0, count: blockSize) }
            let rem = data.count % blockSize
            return rem == 0 ? data : data + [UInt8](repeating: 0, count: blockSize - rem)
        case .method2:
            var out = data + [0x80]
            let rem = out.count % blockSize
            if rem != 0 { out += [UInt8](repeating: 0, count: blockSize - rem) }
            return out
        }
    }
}

/// Message authentication codes of ISO/IEC 9797-1.
public enum ISO9797 {
    /// MAC algorithm 1: CBC-MAC with a zero IV under any block cipher (DES, 3DES, SM4, AES),
    /// the last cipher block truncated to `length` bytes.
    public static func mac1(
        _ data: [UInt8], cipher: some BlockCipher, padding: MACPadding, length: Int? = nil
    ) -> [UInt8] {
        let padded = padding.pad(data, blockSize: cipher.blockSize)
        var chain = [UInt8](repeating: 0, count: cipher.blockSize)
        for start in stride(from: 0, to: padded.count, by: cipher.blockSize) {
            for i in 0..<cipher.blockSize { chain[i] ^= padded[start + i] }
            chain = cipher.encrypt(block: chain)
        }
        return Array(chain.prefix(length ?? cipher.blockSize))
    }

    /// MAC algorithm 3, the "retail MAC" (ANSI X9.19): single-DES CBC-MAC under K (the left
    /// half of a two-key 3DES key), then the final block decrypted under K′ and encrypted
    /// again under K — equal to 3DES on the final block.
    public static func retailMAC(
        _ data: [UInt8], key: [UInt8], padding: MACPadding, length: Int = 8
    ) throws(CryptoError) -> [UInt8] {
        guard key.count == 16 else { throw .keyLength("retail MAC", "16", key.count) }
        return retailMAC(data, key: try Legacy.TripleDES(key: key), padding: padding, length: length)
    }

    /// Retail MAC with the key already expanded (the hot path of ARQC verification): the
    /// chaining uses K1 alone, the last block the full two-key 3DES.
    public static func retailMAC(
        _ data: [UInt8], key full: Legacy.TripleDES, padding: MACPadding, length: Int = 8
    ) -> [UInt8] {
        let chain = retailMACWord(padding.pad(data, blockSize: 8), key: full)
        return Array(chain.bigEndianBytes().prefix(length))
    }

    /// The retail MAC of data already padded to whole blocks, as a 64-bit word.
    static func retailMACWord(_ padded: [UInt8], key: Legacy.TripleDES) -> UInt64 {
        var chain: UInt64 = 0
        let blocks = padded.count / 8
        padded.withUnsafeBufferPointer { p in
            for b in 0..<blocks {
                var word: UInt64 = 0
                for i in 0..<8 { word = word << 8 | UInt64(p[8 * b + i]) }
                chain ^= word
                chain = b == blocks - 1 ? key.encrypt(chain) : key.encryptUnderFirstKey(chain)
            }
        }
        return chain
    }
}
