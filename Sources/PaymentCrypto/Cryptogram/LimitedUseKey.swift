import Foundation
import PaymentCore

/// Identifies one limited-use key (LUK) of a cloud card: when the token service generated it
/// and its sequence number for that token. Carried in the cloud IAD so the cloud can derive the
/// same key again. See docs/cloud-cvn.md.
public struct LimitedUseKeyIndex: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The epoch of ``generationHour``: 2020-01-01T00:00:00Z.
    public static let epoch = Date(timeIntervalSince1970: 1_577_836_800)

    /// Whole hours since 2020-01-01T00:00Z when the key was generated (24 bits: until year 3934).
    public let generationHour: UInt32
    /// Per-token sequence number of the key, counting up from 1.
    public let sequence: UInt16

    public init(generationHour: UInt32, sequence: UInt16) {
        precondition(generationHour < 1 << 24, "generation hour is 24 bits")
        self.generationHour = generationHour
        self.sequence = sequence
    }

    public init(generatedAt date: Date, sequence: UInt16) {
        let hours = max(0, date.timeIntervalSince(LimitedUseKeyIndex.epoch) / 3600)
        self.init(generationHour: UInt32(min(hours, Double(1 << 24 - 1))), sequence: sequence)
    }

    /// The start of the hour the key was generated in.
    public var generatedAt: Date { LimitedUseKeyIndex.epoch.addingTimeInterval(Double(generationHour) * 3600) }

    /// The 5 bytes as carried in the IAD: hour (3) ‖ sequence (2), big-endian.
    public var bytes: [UInt8] {
        [UInt8(truncatingIfNeeded: generationHour >> 16), UInt8(truncatingIfNeeded: generationHour >> 8), UInt8(truncatingIfNeeded: generationHour),
         UInt8(truncatingIfNeeded: sequence >> 8), UInt8(truncatingIfNeeded: sequence)]
    }

    public init(bytes: [UInt8]) throws(CryptoError) {
        guard bytes.count == 5 else { throw CryptoError("key index must be 5 bytes, got \(bytes.count)") }
        self.init(generationHour: UInt32(Array(bytes[0..<3]).bigEndianUInt64), sequence: UInt16(Array(bytes[3..<5]).bigEndianUInt64))
    }

    /// The 8-byte diversification data of the LUK: `4C` ("L") ‖ hour (3) ‖ sequence (2) ‖ 0000.
    public var derivationData: [UInt8] { [0x4C] + bytes + [0x00, 0x00] }

    public var description: String { "\(bytes.hexString) (hour \(generationHour), #\(sequence))" }

    public static func < (a: Self, b: Self) -> Bool { (a.generationHour, a.sequence) < (b.generationHour, b.sequence) }
}

/// Limits on one limited-use key. The phone stops using a key that reaches any of them; the
/// cloud declines a cryptogram made past them.
public struct LimitedUseKeyLimits: Sendable, Hashable, Codable {
    /// Cryptograms one key may make.
    public var maxTransactions: Int
    /// Seconds from generation after which the key is spent.
    public var timeToLive: TimeInterval
    /// Total of the amounts (minor units) the key may authorise.
    public var maxCumulativeAmount: Int64

    public init(maxTransactions: Int = 10, timeToLive: TimeInterval = 72 * 3600, maxCumulativeAmount: Int64 = 200_000) {
        self.maxTransactions = maxTransactions
        self.timeToLive = timeToLive
        self.maxCumulativeAmount = maxCumulativeAmount
    }

    /// A limit that was crossed.
    public enum Violation: Sendable, Hashable, CustomStringConvertible {
        case tooManyTransactions(used: Int, limit: Int)
        case expired(ageSeconds: Int, limit: Int)
        case amountExceeded(cumulative: Int64, limit: Int64)
        case generatedInFuture

        public var description: String {
            switch self {
            case .tooManyTransactions(let u, let l): return "key used \(u) times, limit \(l)"
            case .expired(let a, let l): return "key is \(a) s old, time to live \(l) s"
            case .amountExceeded(let c, let l): return "cumulative amount \(c) exceeds \(l)"
            case .generatedInFuture: return "key index names a generation time in the future"
            }
        }
    }

    /// The limits a use of key `index` would cross. `useCount` counts this use; `cumulativeAmount`
    /// includes this transaction's amount. An empty result means the key may be used.
    public func violations(index: LimitedUseKeyIndex, useCount: Int, cumulativeAmount: Int64, now: Date) -> [Violation] {
        var out: [Violation] = []
        if useCount > maxTransactions { out.append(.tooManyTransactions(used: useCount, limit: maxTransactions)) }
        let age = now.timeIntervalSince(index.generatedAt)
        if age < -3600 { out.append(.generatedInFuture) }
        if age > timeToLive + 3600 {  // the index keeps whole hours; allow the hour it started in
            out.append(.expired(ageSeconds: Int(age), limit: Int(timeToLive)))
        }
        if cumulativeAmount > maxCumulativeAmount { out.append(.amountExceeded(cumulative: cumulativeAmount, limit: maxCumulativeAmount)) }
        return out
    }
}

/// Issuer Application Data of CloudTap's cloud CVN (14 bytes):
///
///     0      0D    length of what follows
///     1      DKI   derivation key index (which issuer master key)
///     2      41    CVN
///     3–6    CVR   card verification results (PBOC layout: 03 ‖ 3 bytes)
///     7      ALG   01 3DES, 04 SM4
///     8–12   KI    key index: generation hour (3) ‖ sequence (2)
///     13     USE   cryptograms made with this key, this one included
public struct CloudIAD: Sendable, Hashable {
    public var dki: UInt8
    public var cvr: [UInt8]
    public var algorithmID: UInt8
    public var keyIndex: LimitedUseKeyIndex
    public var useCount: UInt8

    public static let cvn: UInt8 = 0x41
    public static let length = 14

    /// CVR byte 3 bit 8: the owner verified themselves on the phone (consumer device CVM).
    public var cardholderVerifiedOnDevice: Bool { cvr[2] & 0x80 != 0 }

    public init(dki: UInt8, cvr: [UInt8], algorithm: KeyAlgorithm, keyIndex: LimitedUseKeyIndex, useCount: UInt8) {
        precondition(cvr.count == 4, "CVR is 4 bytes")
        self.dki = dki
        self.cvr = cvr
        self.algorithmID = algorithm == .sm4 ? 0x04 : 0x01
        self.keyIndex = keyIndex
        self.useCount = useCount
    }

    public var bytes: [UInt8] {
        [0x0D, dki, CloudIAD.cvn] + cvr + [algorithmID] + keyIndex.bytes + [useCount]
    }

    public init(bytes: [UInt8]) throws(CryptoError) {
        guard bytes.count == CloudIAD.length else { throw CryptoError("cloud IAD must be \(CloudIAD.length) bytes, got \(bytes.count)") }
        guard bytes[0] == 0x0D else { throw CryptoError("cloud IAD length byte must be 0D, got \([bytes[0]].hexString)") }
        guard bytes[2] == CloudIAD.cvn else { throw CryptoError("IAD CVN \([bytes[2]].hexString) is not the cloud CVN 41") }
        guard bytes[7] == 0x01 || bytes[7] == 0x04 else { throw CryptoError("unknown algorithm id \([bytes[7]].hexString) in IAD") }
        dki = bytes[1]
        cvr = Array(bytes[3..<7])
        algorithmID = bytes[7]
        keyIndex = try LimitedUseKeyIndex(bytes: Array(bytes[8..<13]))
        useCount = bytes[13]
    }
}

/// The UnionPay (PBOC) IAD: 07 DKI CVN CVR(4) ALG, then optional issuer discretionary data.
public struct UnionPayIAD: Sendable, Hashable {
    public var dki: UInt8
    public var cvn: UInt8
    public var cvr: [UInt8]
    public var algorithmID: UInt8

    public init(dki: UInt8 = 0x01, cvn: UInt8 = 0x01, cvr: [UInt8], algorithm: KeyAlgorithm) {
        self.dki = dki
        self.cvn = cvn
        self.cvr = cvr
        self.algorithmID = algorithm == .sm4 ? 0x04 : 0x01
    }

    public var bytes: [UInt8] { [0x07, dki, cvn] + cvr + [algorithmID] }
}

extension EMVKeyDerivation {
    /// The limited-use key for `index`: ALG(card key)[Y] ‖ ALG(card key)[~Y] with
    /// Y = `4C` ‖ hour ‖ sequence ‖ 0000 (docs/cloud-cvn.md).
    public static func limitedUseKey(cardKey: [UInt8], index: LimitedUseKeyIndex, algorithm: KeyAlgorithm) throws(CryptoError) -> [UInt8] {
        try diversify(key: cardKey, index.derivationData, algorithm: algorithm)
    }
}
