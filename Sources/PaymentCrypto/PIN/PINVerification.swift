import PaymentCore

/// Issuer PIN verification data: Visa PVV and the IBM 3624 PIN offset.
public enum PINVerification {
    /// Visa PIN Verification Value: 3DES(PVK) over the transformed security parameter
    /// TSP = 11 rightmost PAN digits before the check digit ‖ PVKI ‖ 4 leftmost PIN digits;
    /// the result's decimal digits left to right, then its letters A–F as 0–5, first four.
    public static func visaPVV(pvk: [UInt8], pan: PAN, pvki: Int, pin: String) throws -> String {
        guard (0...9).contains(pvki) else { throw CryptoError("PVKI must be 0–9") }
        guard pin.count >= 4, pin.allSatisfy(\.isASCIIDigit) else { throw PINBlock.Error.pinNotDigits }
        let body = pan.digits.dropLast()
        guard body.count >= 11 else { throw PINBlock.Error.panTooShort }
        let tsp = String(body.suffix(11)) + String(pvki) + String(pin.prefix(4))
        let result = try Legacy.TripleDES(key: pvk).encrypt(block: BCD.pack(tsp)).hexString
        return decimalize(result, count: 4)
    }

    public static func verifyVisaPVV(pvk: [UInt8], pan: PAN, pvki: Int, pin: String, pvv: String) throws -> Bool {
        constantTimeEqual(Array(try visaPVV(pvk: pvk, pan: pan, pvki: pvki, pin: pin).utf8), Array(pvv.utf8))
    }

    /// IBM 3624 validation data: `length` PAN digits from `offset`, right-filled with `pad` to 16.
    public static func validationData(pan: PAN, offset: Int = 0, length: Int? = nil, pad: Character = "F") throws -> [UInt8] {
        let digits = Array(pan.digits)
        let n = length ?? min(16, digits.count - offset)
        guard offset >= 0, n > 0, n <= 16, offset + n <= digits.count else { throw CryptoError("validation data range is outside the PAN") }
        let text = String(digits[offset..<offset + n]) + String(repeating: pad, count: 16 - n)
        return try [UInt8](hex: text)
    }

    /// IBM 3624 natural PIN: 3DES(PVK)[validation data], each hex digit mapped through the
    /// 16-digit decimalization table, leftmost `length` digits.
    public static func ibm3624NaturalPIN(pvk: [UInt8], validationData: [UInt8], decimalizationTable: String, length: Int) throws -> String {
        guard decimalizationTable.count == 16, decimalizationTable.allSatisfy(\.isASCIIDigit) else {
            throw CryptoError("decimalization table must be 16 digits")
        }
        guard validationData.count == 8 else { throw CryptoError("validation data must be 8 bytes") }
        let table = Array(decimalizationTable)
        let hex = try Legacy.TripleDES(key: pvk).encrypt(block: validationData).hexString
        return String(hex.prefix(length).map { table[Int($0.hexDigitValue!)] })
    }

    /// IBM 3624 offset: (customer PIN − natural PIN) mod 10, digit by digit.
    public static func ibm3624Offset(pvk: [UInt8], validationData: [UInt8], decimalizationTable: String, pin: String) throws -> String {
        guard (4...12).contains(pin.count), pin.allSatisfy(\.isASCIIDigit) else { throw PINBlock.Error.pinLength(pin.count) }
        let natural = try ibm3624NaturalPIN(pvk: pvk, validationData: validationData, decimalizationTable: decimalizationTable, length: pin.count)
        return String(zip(pin, natural).map { p, n in Character(String((p.wholeNumberValue! - n.wholeNumberValue! + 10) % 10)) })
    }

    /// The customer PIN from an offset: (natural PIN + offset) mod 10.
    public static func ibm3624PIN(pvk: [UInt8], validationData: [UInt8], decimalizationTable: String, offset: String) throws -> String {
        let natural = try ibm3624NaturalPIN(pvk: pvk, validationData: validationData, decimalizationTable: decimalizationTable, length: offset.count)
        return String(zip(offset, natural).map { o, n in Character(String((o.wholeNumberValue! + n.wholeNumberValue!) % 10)) })
    }

    public static func verifyIBM3624(pvk: [UInt8], validationData: [UInt8], decimalizationTable: String, pin: String, offset: String) throws -> Bool {
        guard pin.count == offset.count else { return false }
        let expected = try ibm3624Offset(pvk: pvk, validationData: validationData, decimalizationTable: decimalizationTable, pin: pin)
        return constantTimeEqual(Array(expected.utf8), Array(offset.utf8))
    }

    /// Visa/Mastercard decimalization: decimal digits of `hex` in order, then if short its
    /// letters A–F as 0–5.
    static func decimalize(_ hex: String, count: Int) -> String {
        var out = hex.filter(\.isASCIIDigit)
        if out.count < count {
            out += hex.filter { !$0.isASCIIDigit }.map { Character(String($0.hexDigitValue! - 10)) }
        }
        return String(out.prefix(count))
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
