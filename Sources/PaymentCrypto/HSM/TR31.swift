import PaymentCore

/// TR-31 / ANSI X9.143 key blocks, version D (AES key block protection key): a key with its
/// usage, algorithm and mode of use bound to it by a CMAC, encrypted under a KBPK.
///
///     D 0112 P0 T E 00 N 00 00 | encrypted key data (hex) | MAC (32 hex)
///
/// Key derivation (X9.143 §7.3): KBEK and KBMK = AES-CMAC(KBPK, counter ‖ usage ‖ 00 ‖
/// algorithm ‖ length); key data = key length in bits (2) ‖ key ‖ random padding (padding also
/// hides the key length up to the algorithm's longest key); MAC = AES-CMAC(KBMK, header ‖ clear
/// key data); key data encrypted AES-CBC under KBEK with the MAC as IV.
public enum TR31 {
    public struct Header: Sendable, Hashable, CustomStringConvertible {
        public var versionID: Character = "D"
        /// Two-character key usage ("P0" PIN encryption, "E0" EMV issuer master key for AC, …).
        public var keyUsage: String
        /// "A" AES, "T" TDES, "D" DES; "4" is CloudTap's proprietary code for SM4 (X9.143 leaves
        /// numeric algorithm codes to proprietary use).
        public var algorithm: Character
        /// "B" encrypt/decrypt, "C" generate/verify, "D" decrypt, "E" encrypt, "G" generate,
        /// "N" no restriction, "V" verify, "X" derive keys.
        public var modeOfUse: Character
        public var keyVersion: String = "00"
        /// "E" exportable under a KEK, "N" not exportable, "S" sensitive.
        public var exportability: Character = "E"

        public init(keyUsage: String, algorithm: Character, modeOfUse: Character, keyVersion: String = "00", exportability: Character = "E") {
            self.keyUsage = keyUsage
            self.algorithm = algorithm
            self.modeOfUse = modeOfUse
            self.keyVersion = keyVersion
            self.exportability = exportability
        }

        /// The 16-character header for a block of `totalLength` characters, no optional blocks.
        func render(totalLength: Int) -> String {
            let len = String(totalLength)
            return "\(versionID)\(String(repeating: "0", count: 4 - len.count) + len)\(keyUsage)\(algorithm)\(modeOfUse)\(keyVersion)\(exportability)0000"
        }

        public var description: String { "\(keyUsage)/\(algorithm)/\(modeOfUse)/v\(keyVersion)/\(exportability)" }
    }

    public enum Error: Swift.Error, Hashable, Sendable, CustomStringConvertible {
        case malformed(String)
        case unsupportedVersion(Character)
        case macMismatch
        case wrongKBPK

        public var description: String {
            switch self {
            case .malformed(let why): return "TR-31 key block is malformed: \(why)"
            case .unsupportedVersion(let v): return "TR-31 key block version \(v) is not supported (D is)"
            case .macMismatch: return "TR-31 key block MAC does not verify (wrong KBPK or altered block)"
            case .wrongKBPK: return "KBPK must be an AES-128, -192 or -256 key"
            }
        }
    }

    /// Longest key per algorithm code, to which key data is padded.
    static func maskedLength(_ algorithm: Character, keyLength: Int) -> Int {
        switch algorithm {
        case "A": return max(32, keyLength)
        case "T": return max(24, keyLength)
        default: return keyLength
        }
    }

    /// Wraps `key` under `kbpk`.
    public static func wrap<R: RandomNumberGenerator>(key: [UInt8], header: Header, kbpk: [UInt8], using rng: inout R) throws(TR31.Error) -> String {
        guard [16, 24, 32].contains(kbpk.count) else { throw .wrongKBPK }
        let (kbek, kbmk) = try derive(kbpk)
        let masked = maskedLength(header.algorithm, keyLength: key.count)
        var padLength = 16 - (2 + masked) % 16
        if padLength == 16 { padLength = 0 }
        padLength += masked - key.count
        let clear = UInt16(key.count * 8).bigEndianBytes() + key + (0..<padLength).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let total = 16 + 2 * clear.count + 32
        let headerText = header.render(totalLength: total)
        do {
            let mac = try AESCMAC.mac(Array(headerText.utf8) + clear, key: kbmk)
            let encrypted = try AESCipher(key: kbek).encryptCBC(clear, iv: mac)
            return headerText + encrypted.hexString + mac.hexString
        } catch {
            throw .malformed("\(error)")
        }
    }

    public static func wrap(key: [UInt8], header: Header, kbpk: [UInt8]) throws(TR31.Error) -> String {
        var rng = SystemRandomNumberGenerator()
        return try wrap(key: key, header: header, kbpk: kbpk, using: &rng)
    }

    /// Unwraps a version D key block, verifying its MAC; returns header and key.
    public static func unwrap(_ block: String, kbpk: [UInt8]) throws(TR31.Error) -> (header: Header, key: [UInt8]) {
        guard [16, 24, 32].contains(kbpk.count) else { throw .wrongKBPK }
        let chars = Array(block)
        guard chars.count >= 16 + 64 else { throw .malformed("shorter than a header, one block and a MAC") }
        guard chars[0] == "D" else { throw .unsupportedVersion(chars[0]) }
        guard let total = Int(String(chars[1..<5])), total == chars.count else {
            throw .malformed("length field \(String(chars[1..<5])) does not match \(chars.count) characters")
        }
        let optionalBlocks = Int(String(chars[12..<14])) ?? -1
        guard optionalBlocks == 0 else { throw .malformed("optional blocks are not supported in stored keys") }
        let header = Header(
            keyUsage: String(chars[5..<7]), algorithm: chars[7], modeOfUse: chars[8],
            keyVersion: String(chars[9..<11]), exportability: chars[11])
        let headerText = String(chars[0..<16])
        let body: [UInt8], mac: [UInt8]
        do {
            body = try [UInt8](hex: String(chars[16..<(chars.count - 32)]))
            mac = try [UInt8](hex: String(chars[(chars.count - 32)...]))
        } catch {
            throw .malformed("\(error)")
        }
        guard !body.isEmpty, body.count % 16 == 0 else { throw .malformed("key data is not whole AES blocks") }
        let (kbek, kbmk) = try derive(kbpk)
        let clear: [UInt8]
        let expected: [UInt8]
        do {
            clear = try AESCipher(key: kbek).decryptCBC(body, iv: mac)
            expected = try AESCMAC.mac(Array(headerText.utf8) + clear, key: kbmk)
        } catch {
            throw .malformed("\(error)")
        }
        guard constantTimeEqual(expected, mac) else { throw .macMismatch }
        let bits = Int(clear[0]) << 8 | Int(clear[1])
        guard bits % 8 == 0, 2 + bits / 8 <= clear.count else { throw .malformed("key length \(bits) bits") }
        return (header, Array(clear[2..<2 + bits / 8]))
    }

    /// KBEK and KBMK from the KBPK (X9.143 §7.3.2, CMAC in counter mode).
    static func derive(_ kbpk: [UInt8]) throws(TR31.Error) -> ([UInt8], [UInt8]) {
        let (algorithmCode, bits): ([UInt8], [UInt8]) = switch kbpk.count {
        case 16: ([0x00, 0x02], [0x00, 0x80])
        case 24: ([0x00, 0x03], [0x00, 0xC0])
        default: ([0x00, 0x04], [0x01, 0x00])
        }
        let calls = kbpk.count == 16 ? 1 : 2
        var kbek: [UInt8] = [], kbmk: [UInt8] = []
        do {
            for counter in 1...calls {
                kbek += try AESCMAC.mac([UInt8(counter), 0x00, 0x00, 0x00] + algorithmCode + bits, key: kbpk)
                kbmk += try AESCMAC.mac([UInt8(counter), 0x00, 0x01, 0x00] + algorithmCode + bits, key: kbpk)
            }
        } catch {
            throw .malformed("\(error)")
        }
        return (Array(kbek.prefix(kbpk.count)), Array(kbmk.prefix(kbpk.count)))
    }
}
