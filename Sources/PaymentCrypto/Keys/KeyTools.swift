import PaymentCore

/// Key check values, DES parity and key variants.
public enum KeyTools {
    /// The key check value: the leftmost `length` bytes of the key encrypting a zero block
    /// (ANSI X9.24-1 for DES and 3DES; the same convention is used for SM4 here). AES keys use
    /// the CMAC of an empty block, as ANSI X9.24-1:2017 and X9.143 specify.
    public static func kcv(_ key: [UInt8], algorithm: KeyAlgorithm, length: Int = 3) throws(CryptoError) -> [UInt8] {
        switch algorithm {
        case .tdes:
            return Array(try Legacy.TripleDES(key: key).encrypt(block: [UInt8](repeating: 0, count: 8)).prefix(length))
        case .sm4:
            return Array(try SM4(key: key).encrypt(block: [UInt8](repeating: 0, count: 16)).prefix(length))
        case .aes:
            return Array(try AESCMAC.mac([UInt8](repeating: 0, count: 16), key: key).prefix(length))
        }
    }

    /// Sets the least significant bit of each byte so the byte has an odd number of set bits
    /// (FIPS 46-3 §2: DES key parity).
    public static func oddParity(_ key: [UInt8]) -> [UInt8] {
        key.map { b in
            let high = b & 0xFE
            return (high.nonzeroBitCount % 2 == 0) ? high | 1 : high
        }
    }

    /// Whether every byte has odd parity.
    public static func hasOddParity(_ key: [UInt8]) -> Bool {
        key.allSatisfy { $0.nonzeroBitCount % 2 == 1 }
    }

    /// A key variant: the variant byte XORed into the first byte of each 8-byte key part,
    /// as HSMs do for key-type variants of the local master key (`variant` 0…255).
    public static func variant(_ key: [UInt8], _ variant: UInt8) -> [UInt8] {
        var out = key
        for start in stride(from: 0, to: out.count, by: 8) { out[start] ^= variant }
        return out
    }
}

/// The block cipher a key belongs to.
public enum KeyAlgorithm: String, Sendable, Hashable, CaseIterable, Codable {
    case tdes = "TDES", aes = "AES", sm4 = "SM4"

    /// A cipher keyed with `key`.
    public func cipher(_ key: [UInt8]) throws(CryptoError) -> any BlockCipher {
        switch self {
        case .tdes: return try Legacy.TripleDES(key: key)
        case .aes: return try AESCipher(key: key)
        case .sm4: return try SM4(key: key)
        }
    }
}
