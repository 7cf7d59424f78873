import PaymentCore

/// The transaction and card data an application cryptogram covers: the EMV 4.4 Book 2 §8.1.1
/// recommended minimum set, in its order, plus the Issuer Application Data.
///
/// Tags are given as their numbers (PaymentCrypto does not depend on the EMV module):
/// 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 82 9F36, and 9F10.
public struct TransactionData: Sendable, Hashable {
    /// (tag, length) of the minimum data set, in MAC order.
    public static let minimumSet: [(tag: UInt32, length: Int)] = [
        (0x9F02, 6), (0x9F03, 6), (0x9F1A, 2), (0x95, 5), (0x5F2A, 2),
        (0x9A, 3), (0x9C, 1), (0x9F37, 4), (0x82, 2), (0x9F36, 2),
    ]

    /// The minimum set's values concatenated (33 bytes).
    public let elements: [UInt8]
    /// Issuer Application Data (9F10).
    public let iad: [UInt8]

    /// Builds the data from tag values; every tag of the minimum set and 9F10 must be present
    /// with its exact length, or the error names the tag.
    public init(values: [UInt32: [UInt8]]) throws(CryptoError) {
        var out: [UInt8] = []
        for (tag, length) in TransactionData.minimumSet {
            guard let v = values[tag] else { throw CryptoError("tag \(TransactionData.name(tag)) is missing from the cryptogram data") }
            guard v.count == length else {
                throw CryptoError("tag \(TransactionData.name(tag)) must be \(length) bytes, got \(v.count)")
            }
            out += v
        }
        guard let iad = values[0x9F10] else { throw CryptoError("tag 9F10 (Issuer Application Data) is missing") }
        self.elements = out
        self.iad = iad
    }

    /// Builds the data from the concatenated minimum set (33 bytes, as tools print it) and the IAD.
    public init(elements: [UInt8], iad: [UInt8]) throws(CryptoError) {
        guard elements.count == 33 else { throw CryptoError("cryptogram data must be 33 bytes (9F02…9F36), got \(elements.count)") }
        self.elements = elements
        self.iad = iad
    }

    /// Value of one element of the minimum set.
    public func value(_ tag: UInt32) -> [UInt8]? {
        var offset = 0
        for (t, length) in TransactionData.minimumSet {
            if t == tag { return Array(elements[offset..<offset + length]) }
            offset += length
        }
        return tag == 0x9F10 ? iad : nil
    }

    /// Application Transaction Counter (9F36).
    public var atc: [UInt8] { Array(elements[31..<33]) }
    /// Unpredictable Number (9F37).
    public var unpredictableNumber: [UInt8] { Array(elements[25..<29]) }
    /// Amount, Authorised (9F02) in minor units.
    public var amountAuthorised: Int64 { Int64(BCDValue(elements[0..<6])) }
    /// Transaction Currency Code (5F2A), ISO 4217 numeric.
    public var transactionCurrency: UInt16 { UInt16(BCDValue(elements[19..<21])) }

    static func name(_ tag: UInt32) -> String {
        (tag > 0xFF ? [UInt8(tag >> 8), UInt8(tag & 0xFF)] : [UInt8(tag)]).hexString
    }
}

/// A packed-BCD value as an integer; non-digit nibbles count as zero.
func BCDValue(_ bytes: ArraySlice<UInt8>) -> UInt64 {
    bytes.reduce(0) { acc, b in
        let hi = UInt64(min(b >> 4, 9)), lo = UInt64(min(b & 0x0F, 9))
        return acc * 100 + hi * 10 + lo
    }
}
