import PaymentCore

/// Application cryptograms (ARQC, TC, AAC) and the issuer's response cryptogram (ARPC),
/// for every ``CryptogramProfile`` (EMV 4.4 Book 2 §8 and Annex A1.2).
public enum Cryptogram {
    /// The AC key for this transaction, from the key the card holds: the card master key for
    /// classic profiles, the limited-use key for cloud profiles.
    public static func sessionKey(profile: CryptogramProfile, cardKey: [UInt8], data: TransactionData) throws(CryptoError) -> [UInt8] {
        switch profile.sessionKey {
        case .none, .limitedUseKey:
            return cardKey
        case .emvCommonATC:
            return try EMVKeyDerivation.commonSessionKey(mk: cardKey, r: data.atc + [0, 0, 0, 0, 0, 0], algorithm: profile.algorithm)
        case .emvCommonATCUN:
            return try EMVKeyDerivation.commonSessionKey(mk: cardKey, r: data.atc + [0, 0] + data.unpredictableNumber, algorithm: profile.algorithm)
        case .unionPay:
            return try EMVKeyDerivation.unionPaySessionKey(cardKey: cardKey, atc: data.atc, algorithm: profile.algorithm)
        }
    }

    /// The bytes the MAC covers.
    public static func macInput(profile: CryptogramProfile, data: TransactionData) throws(CryptoError) -> [UInt8] {
        switch profile.acData {
        case .fullIAD:
            return data.elements + data.iad
        case .cvr(let offset, let length):
            guard data.iad.count >= offset + length else {
                throw CryptoError("IAD of \(data.iad.count) bytes has no CVR at \(offset)..<\(offset + length)")
            }
            return data.elements + data.iad[offset..<offset + length]
        }
    }

    /// The 8-byte MAC with the session key: ISO 9797-1 algorithm 3 for 3DES, algorithm 1 for
    /// SM4 and AES (truncated to 8 bytes).
    public static func mac(_ input: [UInt8], key: [UInt8], algorithm: KeyAlgorithm, padding: MACPadding) throws(CryptoError) -> [UInt8] {
        switch algorithm {
        case .tdes: return try ISO9797.retailMAC(input, key: key, padding: padding)
        case .sm4, .aes: return ISO9797.mac1(input, cipher: try algorithm.cipher(key), padding: padding, length: 8)
        }
    }

    /// Generates an ARQC (or TC/AAC: the computation is the same) as the card does, from the
    /// key the card holds.
    public static func generate(profile: CryptogramProfile, cardKey: [UInt8], data: TransactionData) throws(CryptoError) -> [UInt8] {
        if profile.algorithm == .tdes {
            let held = try Legacy.TripleDES(key: cardKey)
            return try tdesAC(profile: profile, key: tdesACKey(profile: profile, held: held, data: data), data: data).bigEndianBytes()
        }
        let sk = try sessionKey(profile: profile, cardKey: cardKey, data: data)
        return try mac(try macInput(profile: profile, data: data), key: sk, algorithm: profile.algorithm, padding: profile.padding)
    }

    /// The key the card holds, derived on the issuer side from the issuer master key: the card
    /// key by option A or B, and for cloud profiles the limited-use key named by the IAD.
    public static func cardKey(profile: CryptogramProfile, imk: [UInt8], pan: PAN, psn: String, iad: [UInt8]) throws(CryptoError) -> [UInt8] {
        try cardKey(profile: profile, imk: IssuerMasterKey(imk, algorithm: profile.algorithm), pan: pan, psn: psn, iad: iad)
    }

    /// As ``cardKey(profile:imk:pan:psn:iad:)`` with the issuer master key already expanded.
    public static func cardKey(profile: CryptogramProfile, imk: IssuerMasterKey, pan: PAN, psn: String, iad: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard imk.algorithm == profile.algorithm else {
            throw CryptoError("\(profile) needs a \(profile.algorithm.rawValue) issuer master key, not \(imk.algorithm.rawValue)")
        }
        let mk = try imk.cardKey(pan: pan, psn: psn, method: profile.cardKey)
        guard profile.sessionKey == .limitedUseKey else { return mk }
        let cloud = try CloudIAD(bytes: iad)
        return try EMVKeyDerivation.limitedUseKey(cardKey: mk, index: cloud.keyIndex, algorithm: profile.algorithm)
    }

    /// Verifies an ARQC from the issuer master key. A mismatch is a result, not an error;
    /// errors are for malformed input.
    public static func verify(
        profile: CryptogramProfile, imk: [UInt8], pan: PAN, psn: String, data: TransactionData, arqc: [UInt8]
    ) throws(CryptoError) -> Bool {
        try verify(profile: profile, imk: IssuerMasterKey(imk, algorithm: profile.algorithm), pan: pan, psn: psn, data: data, arqc: arqc)
    }

    /// As ``verify(profile:imk:pan:psn:data:arqc:)`` with the issuer master key already expanded
    /// (the issuer's hot path: a card key, a session key and one MAC per call).
    public static func verify(
        profile: CryptogramProfile, imk: IssuerMasterKey, pan: PAN, psn: String, data: TransactionData, arqc: [UInt8]
    ) throws(CryptoError) -> Bool {
        if profile.algorithm == .tdes, imk.algorithm == .tdes, let tdes = imk.cipher as? Legacy.TripleDES {
            let held = try tdesHeldKey(profile: profile, imk: tdes, pan: pan, psn: psn, iad: data.iad)
            let ac = try tdesAC(profile: profile, key: tdesACKey(profile: profile, held: held, data: data), data: data)
            guard arqc.count == 8 else { return false }
            return ac ^ arqc.bigEndianUInt64 == 0
        }
        let key = try cardKey(profile: profile, imk: imk, pan: pan, psn: psn, iad: data.iad)
        let expected = try generate(profile: profile, cardKey: key, data: data)
        return constantTimeEqual(expected, arqc)
    }

    /// ARPC method 1 (EMV 4.4 Book 2 §8.2.1): ALG(K)[ARQC ⊕ (ARC ‖ 00…)], leftmost 8 bytes.
    /// `arc` is the 2-byte Authorisation Response Code as carried in tag 8A — ASCII, so "00"
    /// is `3030`.
    public static func arpcMethod1(key: [UInt8], arqc: [UInt8], arc: [UInt8], algorithm: KeyAlgorithm) throws(CryptoError) -> [UInt8] {
        guard arqc.count == 8 else { throw CryptoError("ARQC must be 8 bytes, got \(arqc.count)") }
        guard arc.count == 2 else { throw CryptoError("ARC must be 2 bytes, got \(arc.count)") }
        let cipher = try algorithm.cipher(key)
        var block = arqc + [UInt8](repeating: 0, count: cipher.blockSize - 8)
        block[0] ^= arc[0]
        block[1] ^= arc[1]
        return Array(cipher.encrypt(block: block).prefix(8))
    }

    /// ARPC method 2 (EMV 4.4 Book 2 §8.2.2): MAC algorithm 3, padding 2, over
    /// ARQC ‖ CSU ‖ proprietary authentication data, leftmost 4 bytes.
    public static func arpcMethod2(key: [UInt8], arqc: [UInt8], csu: [UInt8], proprietaryData: [UInt8] = [], algorithm: KeyAlgorithm = .tdes) throws(CryptoError) -> [UInt8] {
        guard arqc.count == 8 else { throw CryptoError("ARQC must be 8 bytes, got \(arqc.count)") }
        guard csu.count == 4 else { throw CryptoError("CSU must be 4 bytes, got \(csu.count)") }
        guard proprietaryData.count <= 8 else { throw CryptoError("proprietary authentication data is at most 8 bytes") }
        return Array(try mac(arqc + csu + proprietaryData, key: key, algorithm: algorithm, padding: .method2).prefix(4))
    }

    /// The ARPC for a profile, from the card key (the key the card holds) and the transaction.
    /// Method 1 takes `arc`; method 2 takes `csu` and optional proprietary data.
    public static func arpc(
        profile: CryptogramProfile, cardKey: [UInt8], data: TransactionData, arqc: [UInt8],
        arc: [UInt8] = [0x30, 0x30], csu: [UInt8] = [0, 0, 0, 0], proprietaryData: [UInt8] = []
    ) throws(CryptoError) -> [UInt8] {
        let key = profile.arpcKey == .card ? cardKey : try sessionKey(profile: profile, cardKey: cardKey, data: data)
        switch profile.arpcMethod {
        case .method1: return try arpcMethod1(key: key, arqc: arqc, arc: arc, algorithm: profile.algorithm)
        case .method2: return try arpcMethod2(key: key, arqc: arqc, csu: csu, proprietaryData: proprietaryData, algorithm: profile.algorithm)
        }
    }

    /// Issuer Authentication Data (tag 91): ARPC ‖ ARC for method 1, ARPC ‖ CSU ‖ data for method 2.
    public static func issuerAuthenticationData(profile: CryptogramProfile, arpc: [UInt8], arc: [UInt8], csu: [UInt8], proprietaryData: [UInt8] = []) -> [UInt8] {
        profile.arpcMethod == .method1 ? arpc + arc : arpc + csu + proprietaryData
    }
}

/// Compares two byte strings in time that depends only on their lengths.
public func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var diff: UInt8 = 0
    for i in 0..<a.count { diff |= a[i] ^ b[i] }
    return diff == 0
}
