import PaymentCore

/// SM4, the Chinese national block cipher (GB/T 32907-2016): 128-bit block, 128-bit key,
/// 32 rounds. PBOC 3.0 and UnionPay use it where EMV uses 3DES (algorithm id `04`).
///
/// Each round's τ (four S-box lookups) and linear transform L are merged into four
/// 256-entry word tables, so a round is four lookups and XORs.
public struct SM4: BlockCipher, CustomStringConvertible {
    public var blockSize: Int { 16 }
    private let roundKeys: [UInt32]
    private let reversedRoundKeys: [UInt32]

    public init(key: [UInt8]) throws(CryptoError) {
        guard key.count == 16 else { throw .keyLength("SM4", "16", key.count) }
        var k: [UInt32] = (0..<4).map { i in SM4.word(key, 4 * i) ^ SM4.fk[i] }
        var rk = [UInt32](repeating: 0, count: 32)
        for i in 0..<32 {
            let t: UInt32 = k[(i + 1) % 4] ^ k[(i + 2) % 4] ^ k[(i + 3) % 4] ^ SM4.ck[i]
            let b: UInt32 = SM4.tau(t)
            let spread: UInt32 = b.rotl(13) ^ b.rotl(23)
            let next: UInt32 = k[i % 4] ^ b ^ spread
            k[i % 4] = next
            rk[i] = next
        }
        roundKeys = rk
        reversedRoundKeys = rk.reversed()
    }

    public func encrypt(block: [UInt8]) -> [UInt8] { crypt(block, decrypt: false) }
    public func decrypt(block: [UInt8]) -> [UInt8] { crypt(block, decrypt: true) }

    private func crypt(_ block: [UInt8], decrypt: Bool) -> [UInt8] {
        precondition(block.count == 16, "SM4 block must be 16 bytes")
        var x0 = SM4.word(block, 0), x1 = SM4.word(block, 4), x2 = SM4.word(block, 8), x3 = SM4.word(block, 12)
        let t = SM4.t
        (decrypt ? reversedRoundKeys : roundKeys).withUnsafeBufferPointer { rk in
            var i = 0
            while i < 32 {
                x0 ^= SM4.round(x1 ^ x2 ^ x3 ^ rk[i], t)
                x1 ^= SM4.round(x2 ^ x3 ^ x0 ^ rk[i + 1], t)
                x2 ^= SM4.round(x3 ^ x0 ^ x1 ^ rk[i + 2], t)
                x3 ^= SM4.round(x0 ^ x1 ^ x2 ^ rk[i + 3], t)
                i += 4
            }
        }
        return [UInt8](unsafeUninitializedCapacity: 16) { out, count in
            for (j, w) in [x3, x2, x1, x0].enumerated() {
                out[4 * j] = UInt8(truncatingIfNeeded: w >> 24)
                out[4 * j + 1] = UInt8(truncatingIfNeeded: w >> 16)
                out[4 * j + 2] = UInt8(truncatingIfNeeded: w >> 8)
                out[4 * j + 3] = UInt8(truncatingIfNeeded: w)
            }
            count = 16
        }
    }

    @inline(__always)
    private static func round(_ a: UInt32, _ t: UnsafePointer<UInt32>) -> UInt32 {
        t[Int(a >> 24)] ^ t[256 + Int((a >> 16) & 0xFF)] ^ t[512 + Int((a >> 8) & 0xFF)] ^ t[768 + Int(a & 0xFF)]
    }

    @inline(__always)
    private static func word(_ b: [UInt8], _ i: Int) -> UInt32 {
        let high: UInt32 = UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16
        let low: UInt32 = UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
        return high | low
    }

    /// τ: the S-box on each byte.
    private static func tau(_ a: UInt32) -> UInt32 {
        let b0: UInt32 = UInt32(sbox[Int(a >> 24)]) << 24
        let b1: UInt32 = UInt32(sbox[Int((a >> 16) & 0xFF)]) << 16
        let b2: UInt32 = UInt32(sbox[Int((a >> 8) & 0xFF)]) << 8
        let b3: UInt32 = UInt32(sbox[Int(a & 0xFF)])
        return b0 | b1 | b2 | b3
    }

    /// T = L∘τ as four byte-indexed tables: L(B) = B ⊕ (B⋘2) ⊕ (B⋘10) ⊕ (B⋘18) ⊕ (B⋘24).
    nonisolated(unsafe) private static let t: UnsafePointer<UInt32> = {
        let table = UnsafeMutablePointer<UInt32>.allocate(capacity: 1024)
        for position in 0..<4 {
            for v in 0..<256 {
                let b: UInt32 = UInt32(sbox[v]) << UInt32(24 - 8 * position)
                let spread: UInt32 = b.rotl(2) ^ b.rotl(10) ^ b.rotl(18) ^ b.rotl(24)
                table[256 * position + v] = b ^ spread
            }
        }
        return UnsafePointer(table)
    }()

    /// System parameter FK (GB/T 32907-2016 §7.3).
    static let fk: [UInt32] = [0xA3B1_BAC6, 0x56AA_3350, 0x677D_9197, 0xB270_22DC]
    /// Fixed parameters CK: byte j of CK_i is (4i + j) × 7 mod 256.
    static let ck: [UInt32] = (0..<32).map { (i: Int) -> UInt32 in
        var word: UInt32 = 0
        for j in 0..<4 { word = word << 8 | UInt32(((4 * i + j) * 7) % 256) }
        return word
    }

    /// The S-box (GB/T 32907-2016 §6.2).
    static let sbox: [UInt8] = [
        0xD6, 0x90, 0xE9, 0xFE, 0xCC, 0xE1, 0x3D, 0xB7, 0x16, 0xB6, 0x14, 0xC2, 0x28, 0xFB, 0x2C, 0x05,
        0x2B, 0x67, 0x9A, 0x76, 0x2A, 0xBE, 0x04, 0xC3, 0xAA, 0x44, 0x13, 0x26, 0x49, 0x86, 0x06, 0x99,
        0x9C, 0x42, 0x50, 0xF4, 0x91, 0xEF, 0x98, 0x7A, 0x33, 0x54, 0x0B, 0x43, 0xED, 0xCF, 0xAC, 0x62,
        0xE4, 0xB3, 0x1C, 0xA9, 0xC9, 0x08, 0xE8, 0x95, 0x80, 0xDF, 0x94, 0xFA, 0x75, 0x8F, 0x3F, 0xA6,
        0x47, 0x07, 0xA7, 0xFC, 0xF3, 0x73, 0x17, 0xBA, 0x83, 0x59, 0x3C, 0x19, 0xE6, 0x85, 0x4F, 0xA8,
        0x68, 0x6B, 0x81, 0xB2, 0x71, 0x64, 0xDA, 0x8B, 0xF8, 0xEB, 0x0F, 0x4B, 0x70, 0x56, 0x9D, 0x35,
        0x1E, 0x24, 0x0E, 0x5E, 0x63, 0x58, 0xD1, 0xA2, 0x25, 0x22, 0x7C, 0x3B, 0x01, 0x21, 0x78, 0x87,
        0xD4, 0x00, 0x46, 0x57, 0x9F, 0xD3, 0x27, 0x52, 0x4C, 0x36, 0x02, 0xE7, 0xA0, 0xC4, 0xC8, 0x9E,
        0xEA, 0xBF, 0x8A, 0xD2, 0x40, 0xC7, 0x38, 0xB5, 0xA3, 0xF7, 0xF2, 0xCE, 0xF9, 0x61, 0x15, 0xA1,
        0xE0, 0xAE, 0x5D, 0xA4, 0x9B, 0x34, 0x1A, 0x55, 0xAD, 0x93, 0x32, 0x30, 0xF5, 0x8C, 0xB1, 0xE3,
        0x1D, 0xF6, 0xE2, 0x2E, 0x82, 0x66, 0xCA, 0x60, 0xC0, 0x29, 0x23, 0xAB, 0x0D, 0x53, 0x4E, 0x6F,
        0xD5, 0xDB, 0x37, 0x45, 0xDE, 0xFD, 0x8E, 0x2F, 0x03, 0xFF, 0x6A, 0x72, 0x6D, 0x6C, 0x5B, 0x51,
        0x8D, 0x1B, 0xAF, 0x92, 0xBB, 0xDD, 0xBC, 0x7F, 0x11, 0xD9, 0x5C, 0x41, 0x1F, 0x10, 0x5A, 0xD8,
        0x0A, 0xC1, 0x31, 0x88, 0xA5, 0xCD, 0x7B, 0xBD, 0x2D, 0x74, 0xD0, 0x12, 0xB8, 0xE5, 0xB4, 0xB0,
        0x89, 0x69, 0x97, 0x4A, 0x0C, 0x96, 0x77, 0x7E, 0x65, 0xB9, 0xF1, 0x09, 0xC5, 0x6E, 0xC6, 0x84,
        0x18, 0xF0, 0x7D, 0xEC, 0x3A, 0xDC, 0x4D, 0x20, 0x79, 0xEE, 0x5F, 0x3E, 0xD7, 0xCB, 0x39, 0x48,
    ]

    public var description: String {
        "SM4(KCV \(encrypt(block: [UInt8](repeating: 0, count: 16)).prefix(3).hexString))"
    }
}

extension UInt32 {
    @inline(__always)
    func rotl(_ n: UInt32) -> UInt32 { (self << n) | (self >> (32 - n)) }
}
