import Crypto
import PaymentCore

/// Card (ICC master) key and session key derivation: EMV 4.4 Book 2 Annex A1.3–A1.4 and the
/// UnionPay/PBOC session key.
public enum EMVKeyDerivation {
    /// The 8-byte derivation data Y of option A: the rightmost 16 digits of PAN‖PSN, packed BCD,
    /// left-filled with zeros when shorter (EMV 4.4 Book 2 A1.4.1).
    public static func optionAInput(pan: PAN, psn: String) throws(EncodingError) -> [UInt8] {
        let nibbles = try panPSNNibbles(pan: pan, psn: psn)
        var y = [UInt8](repeating: 0, count: 8)
        let digits = nibbles.suffix(16)
        let offset = 16 - digits.count
        for (i, d) in digits.enumerated() {
            let position = offset + i
            y[position / 2] |= position % 2 == 0 ? d << 4 : d
        }
        return y
    }

    /// The digits of PAN ‖ PSN as nibble values; the PSN must be two digits.
    static func panPSNNibbles(pan: PAN, psn: String) throws(EncodingError) -> [UInt8] {
        guard psn.utf8.count == 2 else { throw .wrongLength(what: "PAN sequence number", expected: "2 digits", actual: psn.utf8.count) }
        var nibbles: [UInt8] = []
        nibbles.reserveCapacity(pan.digits.utf8.count + 2)
        for c in pan.digits.utf8 { nibbles.append(c &- 48) }
        for (i, c) in psn.utf8.enumerated() {
            guard c >= 48, c <= 57 else { throw .invalidDigit(Character(Unicode.Scalar(c)), offset: i) }
            nibbles.append(c - 48)
        }
        return nibbles
    }

    /// Option A: MK = ALG(IMK)[Y] ‖ ALG(IMK)[Y ⊕ FF…FF], odd parity (EMV 4.4 Book 2 A1.4.1).
    /// For SM4 (PBOC 3.0 JR/T 0025.17), MK = SM4(IMK)[Y ‖ ~Y] in one block.
    ///
    /// PBOC printouts show the 3DES card key before parity adjustment; pass `oddParity: false`
    /// to match them. Parity bits do not enter DES, so every cryptogram is the same either way.
    public static func optionA(
        imk: [UInt8], pan: PAN, psn: String = "00", algorithm: KeyAlgorithm = .tdes, oddParity: Bool = true
    ) throws(CryptoError) -> [UInt8] {
        try IssuerMasterKey(imk, algorithm: algorithm).cardKey(pan: pan, psn: psn, method: .optionA, oddParity: oddParity)
    }

    /// ALG(K)[Y] ‖ ALG(K)[~Y] for an 8-byte Y: two 3DES blocks (odd parity unless asked not
    /// to), or one 16-byte SM4/AES block.
    public static func diversify(key: [UInt8], _ y: [UInt8], algorithm: KeyAlgorithm, oddParity: Bool = true) throws(CryptoError) -> [UInt8] {
        diversify(cipher: try algorithm.cipher(key), y, oddParity: oddParity)
    }

    /// As ``diversify(key:_:algorithm:oddParity:)`` with the key already expanded.
    public static func diversify(cipher: any BlockCipher, _ y: [UInt8], oddParity: Bool = true) -> [UInt8] {
        precondition(y.count == 8, "diversification data is 8 bytes")
        let notY = y.map { ~$0 }
        if cipher.blockSize == 8 {
            let raw = cipher.encrypt(block: y) + cipher.encrypt(block: notY)
            return oddParity ? KeyTools.oddParity(raw) : raw
        }
        return cipher.encrypt(block: y + notY)
    }

    /// Option B for PANs longer than 16 digits (EMV 4.4 Book 2 A1.4.2): SHA-1 over PAN‖PSN
    /// (BCD, left-padded with a zero nibble to whole bytes); the hash's decimal digits in order,
    /// then if fewer than 16 its letters A–F decimalised to 0–5, give the 16-digit Y; then as
    /// option A. PANs of 16 digits or fewer use option A.
    public static func optionB(imk: [UInt8], pan: PAN, psn: String = "00", algorithm: KeyAlgorithm = .tdes) throws(CryptoError) -> [UInt8] {
        try IssuerMasterKey(imk, algorithm: algorithm).cardKey(pan: pan, psn: psn, method: .optionB)
    }

    /// Y for option B: 16 decimal digits chosen from SHA-1(PAN‖PSN); option A's Y for PANs of
    /// 16 digits or fewer.
    static func optionBInput(pan: PAN, psn: String) throws(CryptoError) -> [UInt8] {
        guard pan.digits.count > 16 else {
            do { return try optionAInput(pan: pan, psn: psn) } catch { throw CryptoError("PAN/PSN: \(error)") }
        }
        let nibbles: [UInt8]
        do { nibbles = try panPSNNibbles(pan: pan, psn: psn) } catch { throw CryptoError("PAN/PSN: \(error)") }
        // X = PAN ‖ PSN as BCD, a zero nibble in front when the count is odd.
        let odd = nibbles.count % 2
        var x = [UInt8](repeating: 0, count: (nibbles.count + 1) / 2)
        for (i, d) in nibbles.enumerated() {
            let position = i + odd
            x[position / 2] |= position % 2 == 0 ? d << 4 : d
        }
        let digest = Insecure.SHA1.hash(data: x)
        // Decimal digits of the hash in order; then, if short, its letters A–F as 0–5.
        var y: UInt64 = 0
        var taken = 0
        for pass in 0..<2 where taken < 16 {
            for byte in digest {
                for nibble in [byte >> 4, byte & 0x0F] where taken < 16 {
                    let isDigit = nibble <= 9
                    if pass == 0 && isDigit { y = y << 4 | UInt64(nibble); taken += 1 }
                    if pass == 1 && !isDigit { y = y << 4 | UInt64(nibble - 10); taken += 1 }
                }
            }
        }
        return y.bigEndianBytes()
    }

    /// The EMV common session key derivation (EMV 4.4 Book 2 A1.3.1): byte 3 of R (index 2) is
    /// replaced by `F0` for the left part and `0F` for the right part.
    /// - 3DES: R is 8 bytes (ATC‖00…00 for Visa CVN 18, ATC‖0000‖UN for Mastercard);
    ///   SK = 3DES(MK)[R, F0] ‖ 3DES(MK)[R, 0F], odd parity.
    /// - 16-byte-block ciphers (AES-128, SM4): R is 16 bytes (shorter R is zero-filled on the
    ///   right); SK = ALG(MK)[R, F0], one block.
    public static func commonSessionKey(mk: [UInt8], r: [UInt8], algorithm: KeyAlgorithm = .tdes) throws(CryptoError) -> [UInt8] {
        switch algorithm {
        case .tdes:
            guard r.count == 8 else { throw CryptoError("diversification value R must be 8 bytes, got \(r.count)") }
            let c = try Legacy.TripleDES(key: mk)
            var left = r, right = r
            left[2] = 0xF0
            right[2] = 0x0F
            return KeyTools.oddParity(c.encrypt(block: left) + c.encrypt(block: right))
        case .sm4, .aes:
            guard r.count <= 16 else { throw CryptoError("diversification value R must be at most 16 bytes, got \(r.count)") }
            guard mk.count == 16 else { throw CryptoError("the common session key is derived here for 128-bit keys only") }
            var block = r + [UInt8](repeating: 0, count: 16 - r.count)
            block[2] = 0xF0
            return try algorithm.cipher(mk).encrypt(block: block)
        }
    }

    /// The UnionPay/PBOC session key (PBOC 2.0/3.0, JR/T 0025.5 Annex):
    /// SK = ALG(MK)[00…00‖ATC ‖ 00…00‖~ATC] — for 3DES two blocks, for SM4 one 16-byte block.
    /// Note that it differs from the EMV common session key.
    public static func unionPaySessionKey(cardKey: [UInt8], atc: [UInt8], algorithm: KeyAlgorithm = .tdes) throws(CryptoError) -> [UInt8] {
        guard atc.count == 2 else { throw CryptoError("ATC must be 2 bytes, got \(atc.count)") }
        let zeros = [UInt8](repeating: 0, count: 6)
        let input = zeros + atc + zeros + atc.map { ~$0 }
        switch algorithm {
        case .tdes:
            let c = try Legacy.TripleDES(key: cardKey)
            return c.encrypt(block: Array(input[0..<8])) + c.encrypt(block: Array(input[8..<16]))
        case .sm4, .aes:
            return try algorithm.cipher(cardKey).encrypt(block: input)
        }
    }
}

/// An issuer master key, expanded once, from which card keys are derived.
public struct IssuerMasterKey: Sendable, CustomStringConvertible {
    public let algorithm: KeyAlgorithm
    let cipher: any BlockCipher

    public init(_ key: [UInt8], algorithm: KeyAlgorithm) throws(CryptoError) {
        self.algorithm = algorithm
        self.cipher = try algorithm.cipher(key)
    }

    /// The card (ICC master) key for a PAN and PSN by option A or option B.
    public func cardKey(
        pan: PAN, psn: String, method: CryptogramProfile.CardKeyMethod, oddParity: Bool = true
    ) throws(CryptoError) -> [UInt8] {
        let y: [UInt8]
        switch method {
        case .optionA:
            do { y = try EMVKeyDerivation.optionAInput(pan: pan, psn: psn) } catch { throw CryptoError("PAN/PSN: \(error)") }
        case .optionB:
            y = try EMVKeyDerivation.optionBInput(pan: pan, psn: psn)
        }
        return EMVKeyDerivation.diversify(cipher: cipher, y, oddParity: oddParity)
    }

    public var description: String { "IssuerMasterKey(\(cipher))" }
}
