/// An ISO 4217 currency: numeric code (as EMV tag 5F2A and ISO 8583 DE49 carry it), alphabetic
/// code and minor-unit exponent.
public struct Currency: Hashable, Sendable, CustomStringConvertible {
    /// Three-digit numeric code, e.g. 156 for the Chinese yuan.
    public let numericCode: UInt16
    /// Three-letter code, e.g. "CNY".
    public let alphaCode: String
    /// Number of minor-unit digits (2 for CNY: one yuan is 100 fen).
    public let exponent: Int

    public init(numericCode: UInt16, alphaCode: String, exponent: Int) {
        self.numericCode = numericCode
        self.alphaCode = alphaCode
        self.exponent = exponent
    }

    public var description: String { alphaCode }

    /// The numeric code as three digits ("156").
    public var numericString: String {
        let s = String(numericCode)
        return String(repeating: "0", count: 3 - s.count) + s
    }

    public static let cny = Currency(numericCode: 156, alphaCode: "CNY", exponent: 2)
    public static let hkd = Currency(numericCode: 344, alphaCode: "HKD", exponent: 2)
    public static let usd = Currency(numericCode: 840, alphaCode: "USD", exponent: 2)
    public static let eur = Currency(numericCode: 978, alphaCode: "EUR", exponent: 2)
    public static let gbp = Currency(numericCode: 826, alphaCode: "GBP", exponent: 2)
    public static let jpy = Currency(numericCode: 392, alphaCode: "JPY", exponent: 0)
    public static let krw = Currency(numericCode: 410, alphaCode: "KRW", exponent: 0)
    public static let sgd = Currency(numericCode: 702, alphaCode: "SGD", exponent: 2)
    public static let mop = Currency(numericCode: 446, alphaCode: "MOP", exponent: 2)
    public static let brl = Currency(numericCode: 986, alphaCode: "BRL", exponent: 2)
    public static let bhd = Currency(numericCode: 48, alphaCode: "BHD", exponent: 3)

    /// The currencies CloudTap knows by code.
    public static let known: [Currency] = [.cny, .hkd, .usd, .eur, .gbp, .jpy, .krw, .sgd, .mop, .brl, .bhd]

    /// Looks a currency up by numeric ("156") or alphabetic ("CNY") code.
    public init?(code: String) {
        let upper = code.uppercased()
        if let n = UInt16(code), let c = Currency.known.first(where: { $0.numericCode == n }) {
            self = c
        } else if let c = Currency.known.first(where: { $0.alphaCode == upper }) {
            self = c
        } else {
            return nil
        }
    }
}
