/// A sum of money: integer minor units and the currency they count in. Never floating point.
public struct Amount: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Minor units (fen for CNY). Non-negative for transaction amounts; signed for balances.
    public let minorUnits: Int64
    public let currency: Currency

    public init(minorUnits: Int64, currency: Currency) {
        self.minorUnits = minorUnits
        self.currency = currency
    }

    /// Errors for amount text.
    public enum Error: Swift.Error, Hashable, Sendable, CustomStringConvertible {
        case malformed(String)
        case tooManyDecimals(String, allowed: Int)
        case overflow(String)
        case currencyMismatch(Currency, Currency)

        public var description: String {
            switch self {
            case .malformed(let s): return "'\(s)' is not an amount (expected digits with an optional decimal point)"
            case .tooManyDecimals(let s, let n): return "'\(s)' has more than \(n) decimal places"
            case .overflow(let s): return "'\(s)' is too large"
            case .currencyMismatch(let a, let b): return "cannot combine \(a) with \(b)"
            }
        }
    }

    /// Parses a decimal major-unit amount such as "1288.00", "38.5" or "1,288.00" exactly.
    public init(_ text: String, currency: Currency) throws(Amount.Error) {
        let cleaned = text.filter { $0 != "," }
        let parts = cleaned.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), !parts[0].isEmpty,
              parts.allSatisfy({ $0.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }) else {
            throw .malformed(text)
        }
        let fraction = parts.count == 2 ? String(parts[1]) : ""
        guard fraction.count <= currency.exponent else { throw .tooManyDecimals(text, allowed: currency.exponent) }
        let digits = String(parts[0]) + fraction + String(repeating: "0", count: currency.exponent - fraction.count)
        guard digits.count <= 18, let value = Int64(digits) else { throw .overflow(text) }
        self.init(minorUnits: value, currency: currency)
    }

    /// The amount as EMV format n12 / ISO 8583 DE4 digits: minor units, zero-filled to 12.
    public var n12: String {
        let s = String(minorUnits)
        return String(repeating: "0", count: max(0, 12 - s.count)) + s
    }

    /// "1288.00 CNY"
    public var description: String {
        let sign = minorUnits < 0 ? "-" : ""
        let magnitude = minorUnits.magnitude
        guard currency.exponent > 0 else { return "\(sign)\(magnitude) \(currency.alphaCode)" }
        var divisor: UInt64 = 1
        for _ in 0..<currency.exponent { divisor *= 10 }
        let major = magnitude / divisor
        let minor = String(magnitude % divisor)
        let padded = String(repeating: "0", count: currency.exponent - minor.count) + minor
        return "\(sign)\(major).\(padded) \(currency.alphaCode)"
    }

    public static func < (lhs: Amount, rhs: Amount) -> Bool {
        precondition(lhs.currency == rhs.currency, "comparing \(lhs.currency) with \(rhs.currency)")
        return lhs.minorUnits < rhs.minorUnits
    }

    /// Adds two amounts of the same currency, refusing overflow.
    public func adding(_ other: Amount) throws(Amount.Error) -> Amount {
        guard currency == other.currency else { throw .currencyMismatch(currency, other.currency) }
        let (sum, overflow) = minorUnits.addingReportingOverflow(other.minorUnits)
        guard !overflow else { throw .overflow("\(self) + \(other)") }
        return Amount(minorUnits: sum, currency: currency)
    }
}
