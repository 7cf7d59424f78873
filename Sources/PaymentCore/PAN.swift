/// A primary account number (ISO/IEC 7812): 12 to 19 decimal digits whose last digit is the
/// Luhn check digit.
///
/// A `PAN` never prints itself in full: `description` and `debugDescription` show the first six
/// and last four digits (PCI DSS 3.4 masking). Use ``digits`` deliberately where the full number
/// is needed (cryptography, the vault).
public struct PAN: Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The full number. Reading it is a deliberate act; never log it.
    public let digits: String

    /// Errors for text that is not a PAN.
    public enum Error: Swift.Error, Hashable, Sendable, CustomStringConvertible {
        case notDigits(offset: Int)
        case badLength(Int)
        case badCheckDigit(expected: Character)

        public var description: String {
            switch self {
            case .notDigits(let o): return "card number has a non-digit at offset \(o)"
            case .badLength(let n): return "card number must have 12 to 19 digits, got \(n)"
            case .badCheckDigit(let c): return "card number fails the Luhn check (check digit should be \(c))"
            }
        }
    }

    /// Parses and Luhn-checks a card number. Spaces are ignored.
    public init(_ text: some StringProtocol) throws(PAN.Error) {
        let compact = try PAN.digitsOnly(text)
        let expected = Luhn.checkValue(compact.dropLast())
        guard compact.last == expected else { throw .badCheckDigit(expected: Character(Unicode.Scalar(expected))) }
        self.digits = String(decoding: compact, as: UTF8.self)
    }

    /// A number taken without the Luhn check, for replaying published vectors whose PANs were
    /// never meant to pass it. Length and digit checks still apply.
    public init(unchecked text: some StringProtocol) throws(PAN.Error) {
        self.digits = String(decoding: try PAN.digitsOnly(text), as: UTF8.self)
    }

    /// The digits of `text` as ASCII bytes, spaces dropped.
    private static func digitsOnly(_ text: some StringProtocol) throws(PAN.Error) -> [UInt8] {
        var compact: [UInt8] = []
        compact.reserveCapacity(19)
        for c in text.utf8 where c != 0x20 {
            guard c >= 0x30, c <= 0x39 else { throw .notDigits(offset: compact.count) }
            compact.append(c)
        }
        guard (12...19).contains(compact.count) else { throw .badLength(compact.count) }
        return compact
    }

    /// The issuer identification number (first 6 digits; the first 8 are the IIN under ISO/IEC 7812-1:2017).
    public var bin: String { String(digits.prefix(6)) }
    /// The last four digits, as printed on receipts.
    public var lastFour: String { String(digits.suffix(4)) }

    /// First six and last four digits, the middle masked with `*`.
    public var masked: String {
        let hidden = max(digits.count - 10, 0)
        return digits.prefix(6) + String(repeating: "*", count: hidden) + digits.suffix(4)
    }

    public var description: String { masked }
    public var debugDescription: String { "PAN(\(masked))" }
}

/// Masks every run of 12–19 digits in free text, for log lines and traces built from
/// strings that may carry card numbers.
public func maskCardNumbers(in text: String) -> String {
    String(decoding: maskCardNumbers(utf8: Array(text.utf8)), as: UTF8.self)
}

/// ``maskCardNumbers(in:)`` over UTF-8 bytes: each run of 12–19 ASCII digits keeps its first
/// six and last four, the rest starred; everything else is left as it is.
public func maskCardNumbers(utf8 text: [UInt8]) -> [UInt8] {
    var out = text
    var i = 0
    while i < out.count {
        guard out[i] >= 0x30 && out[i] <= 0x39 else { i += 1; continue }
        var end = i
        while end < out.count, out[end] >= 0x30 && out[end] <= 0x39 { end += 1 }
        if (12...19).contains(end - i) {
            for j in (i + 6)..<(end - 4) { out[j] = 0x2A }
        }
        i = end
    }
    return out
}
