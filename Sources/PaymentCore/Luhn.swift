/// The Luhn (mod 10) check digit of ISO/IEC 7812-1 Annex B.
public enum Luhn {
    /// The check digit that makes `digits` + check digit pass the Luhn test.
    /// `digits` must be decimal digits only.
    public static func checkDigit(for digits: some StringProtocol) -> Character {
        Character(Unicode.Scalar(checkValue(Array(digits.utf8))))
    }

    /// The check digit, as an ASCII byte, for ASCII digits.
    static func checkValue<C: BidirectionalCollection>(_ digits: C) -> UInt8 where C.Element == UInt8 {
        var sum = 0
        var double = true  // the digit left of the (future) check digit is doubled
        for c in digits.reversed() {
            var d = Int(c) - 48
            if double { d *= 2; if d > 9 { d -= 9 } }
            sum += d
            double.toggle()
        }
        return UInt8(48 + (10 - sum % 10) % 10)
    }

    /// Whether the last digit of `number` is its Luhn check digit.
    public static func isValid(_ number: some StringProtocol) -> Bool {
        guard number.utf8.count >= 2, number.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return false }
        let bytes = Array(number.utf8)
        return checkValue(bytes.dropLast()) == bytes.last
    }
}
