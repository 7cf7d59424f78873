import PaymentCore

/// Card verification values: Visa CVV/CVV2/iCVV, dCVV, and Mastercard CVC3.
public enum CardVerification {
    /// The Visa/Mastercard CVV algorithm: PAN ‖ expiry ‖ service code, zero-filled to 32 digits;
    /// DES(KA) over the first 16, XOR the second 16, 3DES(KA‖KB); decimalized, first three.
    /// CVV2 uses service code 000 and iCVV 999; `expiry` is YYMM (or MMYY where the issuer says so).
    public static func cvv(cvk: [UInt8], pan: PAN, expiry: String, serviceCode: String) throws -> String {
        guard cvk.count == 16 else { throw CryptoError.keyLength("CVK", "16", cvk.count) }
        guard expiry.count == 4, expiry.allSatisfy(\.isASCIIDigit) else { throw CryptoError("expiry must be 4 digits (YYMM)") }
        guard serviceCode.count == 3, serviceCode.allSatisfy(\.isASCIIDigit) else { throw CryptoError("service code must be 3 digits") }
        return try cvvAlgorithm(cvk: cvk, data: pan.digits + expiry + serviceCode, digits: 3)
    }

    static func cvvAlgorithm(cvk: [UInt8], data: String, digits: Int) throws -> String {
        guard data.count <= 32 else { throw CryptoError("CVV data longer than 32 digits") }
        let block = try [UInt8](hex: data + String(repeating: "0", count: 32 - data.count))
        let tdes = try Legacy.TripleDES(key: cvk)
        let first = tdes.encryptUnderFirstKey(Array(block[0..<8]).bigEndianUInt64)
        let result = tdes.encrypt(first ^ Array(block[8..<16]).bigEndianUInt64)
        return PINVerification.decimalize(result.bigEndianBytes().hexString, count: digits)
    }

    /// Visa dynamic CVV (contactless magnetic-stripe mode): the CVV algorithm under the card's
    /// own dCVV key (derived from the issuer key by option A) over
    /// PAN ‖ expiry ‖ service code ‖ ATC (4 hex digits). See docs/card-verification.md.
    public static func dcvv(cardKey: [UInt8], pan: PAN, expiry: String, serviceCode: String, atc: [UInt8]) throws -> String {
        guard atc.count == 2 else { throw CryptoError("ATC must be 2 bytes") }
        guard expiry.count == 4, serviceCode.count == 3 else { throw CryptoError("expiry is 4 digits and service code 3") }
        return try cvvAlgorithm(cvk: cardKey, data: pan.digits + expiry + serviceCode + atc.hexString, digits: 3)
    }

    /// Mastercard CVC3 (PayPass magnetic-stripe): IVCVC3 = the last 2 bytes of the retail MAC
    /// (ISO 9797-1 algorithm 3, padding 2) of the track data under the card's CVC3 key;
    /// CVC3 = the last 2 bytes of 3DES(key)[IVCVC3 ‖ UN ‖ ATC], as a decimal number.
    public static func cvc3(cardKey: [UInt8], trackData: [UInt8], unpredictableNumber: [UInt8], atc: [UInt8]) throws -> String {
        guard cardKey.count == 16 else { throw CryptoError.keyLength("CVC3 key", "16", cardKey.count) }
        guard unpredictableNumber.count == 4, atc.count == 2 else { throw CryptoError("UN must be 4 bytes and ATC 2") }
        let ivcvc3 = try ISO9797.retailMAC(trackData, key: cardKey, padding: .method2).suffix(2)
        let out = try Legacy.TripleDES(key: cardKey).encrypt(block: Array(ivcvc3) + unpredictableNumber + atc)
        return String(UInt16(out[6]) << 8 | UInt16(out[7]))
    }
}
