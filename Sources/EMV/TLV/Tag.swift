import PaymentCore

/// A BER-TLV tag as used by EMV (ISO/IEC 8825-1 with the EMV 4.4 Book 3 Annex B restrictions):
/// one to four bytes, the first byte carrying class and constructed bit, `1F` low bits meaning
/// "more tag bytes follow", and bit 8 of each following byte meaning the same.
public struct Tag: Hashable, Sendable, Comparable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    /// The tag bytes as a big-endian integer (`0x9F26` for Application Cryptogram).
    public let rawValue: UInt32

    public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt32) { self.rawValue = value }

    /// Parses a tag from hex text such as "9F26".
    public init(hex: String) throws(EncodingError) {
        let bytes = try [UInt8](hex: hex)
        guard (1...4).contains(bytes.count) else {
            throw .wrongLength(what: "tag", expected: "1 to 4 bytes", actual: bytes.count)
        }
        self.rawValue = UInt32(bytes.bigEndianUInt64)
    }

    /// The tag's encoded bytes.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(4)
        append(to: &out)
        return out
    }

    /// Appends the tag's encoded bytes (most significant non-zero byte first; a zero tag is one
    /// zero byte).
    func append(to out: inout [UInt8]) {
        if rawValue > 0xFF_FFFF { out.append(UInt8(truncatingIfNeeded: rawValue >> 24)) }
        if rawValue > 0xFFFF { out.append(UInt8(truncatingIfNeeded: rawValue >> 16)) }
        if rawValue > 0xFF { out.append(UInt8(truncatingIfNeeded: rawValue >> 8)) }
        out.append(UInt8(truncatingIfNeeded: rawValue))
    }

    private var firstByte: UInt8 {
        if rawValue > 0xFF_FFFF { return UInt8(truncatingIfNeeded: rawValue >> 24) }
        if rawValue > 0xFFFF { return UInt8(truncatingIfNeeded: rawValue >> 16) }
        if rawValue > 0xFF { return UInt8(truncatingIfNeeded: rawValue >> 8) }
        return UInt8(truncatingIfNeeded: rawValue)
    }

    /// Bit 6 of the first byte: the value is itself a sequence of TLV objects.
    public var isConstructed: Bool { firstByte & 0x20 != 0 }

    /// The class in bits 8–7 of the first byte.
    public var tagClass: TagClass { TagClass(rawValue: firstByte >> 6)! }

    public var description: String { bytes.hexString }

    public static func < (lhs: Tag, rhs: Tag) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// ASN.1 tag classes.
public enum TagClass: UInt8, Sendable {
    case universal = 0, application = 1, contextSpecific = 2, `private` = 3
}
