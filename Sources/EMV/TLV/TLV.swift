import PaymentCore

/// One BER-TLV data object.
///
/// The value is kept as its raw bytes, so any object — including tags this build has never
/// heard of, and templates — re-encodes byte for byte as it was read. The length field's form
/// (e.g. a non-minimal `81 05`) is also remembered until the value changes.
public struct TLV: Sendable, Hashable, CustomStringConvertible {
    public var tag: Tag
    /// The value field. For a constructed tag, the encoding of its children.
    public var value: [UInt8] {
        didSet { originalLengthBytes = nil }
    }
    /// The length field as it was read, when it was not the minimal encoding.
    private var originalLengthBytes: [UInt8]?

    /// A primitive (or raw constructed) object.
    public init(_ tag: Tag, _ value: [UInt8]) {
        self.tag = tag
        self.value = value
        self.originalLengthBytes = nil
    }

    /// A constructed object whose value is the encoding of `children`.
    public init(_ tag: Tag, children: [TLV]) {
        self.init(tag, children.encoded())
    }

    init(tag: Tag, value: [UInt8], lengthBytes: [UInt8]) {
        self.tag = tag
        self.value = value
        self.originalLengthBytes = lengthBytes == TLV.encodeLength(value.count) ? nil : lengthBytes
    }

    /// Two objects are equal when tag and value are; the length field's form does not count.
    public static func == (lhs: TLV, rhs: TLV) -> Bool { lhs.tag == rhs.tag && lhs.value == rhs.value }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(tag)
        hasher.combine(value)
    }

    /// Decodes the children of a constructed object.
    public func children() throws(TLVError) -> [TLV] {
        try TLV.decode(value)
    }

    /// Tag, length and value bytes.
    public var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(value.count + 8)
        encode(into: &out)
        return out
    }

    /// Appends the encoding: tag, length (as read, when it was not minimal), value.
    func encode(into out: inout [UInt8]) {
        tag.append(to: &out)
        if let originalLengthBytes {
            out += originalLengthBytes
        } else {
            let count = value.count
            switch count {
            case 0..<0x80: out.append(UInt8(count))
            case 0..<0x100: out.append(0x81); out.append(UInt8(count))
            default: out += TLV.encodeLength(count)
            }
        }
        out += value
    }

    /// The minimal BER length field for `count` (EMV 4.4 Book 3 Annex B2).
    public static func encodeLength(_ count: Int) -> [UInt8] {
        precondition(count >= 0)
        switch count {
        case 0..<0x80: return [UInt8(count)]
        case 0..<0x100: return [0x81, UInt8(count)]
        case 0..<0x1_0000: return [0x82, UInt8(count >> 8), UInt8(count & 0xFF)]
        case 0..<0x100_0000: return [0x83, UInt8(count >> 16), UInt8((count >> 8) & 0xFF), UInt8(count & 0xFF)]
        default: return [0x84] + UInt32(truncatingIfNeeded: count).bigEndianBytes()
        }
    }

    /// How many bytes ``encodeLength(_:)`` writes for `count`.
    static func encodedLengthCount(_ count: Int) -> Int {
        switch count {
        case 0..<0x80: 1
        case 0..<0x100: 2
        case 0..<0x1_0000: 3
        case 0..<0x100_0000: 4
        default: 5
        }
    }

    /// Shows tag and length only: values may be card data. Use ``TLVPrinter`` for a full dump.
    public var description: String { "TLV(\(tag), \(value.count) bytes)" }
}

extension Array where Element == TLV {
    /// The concatenated encodings.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(reduce(0) { $0 + $1.value.count + 8 })
        for item in self { item.encode(into: &out) }
        return out
    }

    /// The first object with `tag` at this level.
    public subscript(tag: Tag) -> TLV? { first { $0.tag == tag } }

    /// The first object with `tag` at any depth (depth-first, in order), descending into
    /// constructed objects that decode cleanly.
    public func find(_ tag: Tag) -> TLV? {
        for item in self {
            if item.tag == tag { return item }
            if item.tag.isConstructed, let kids = try? item.children(), let hit = kids.find(tag) { return hit }
        }
        return nil
    }
}

extension TLV {
    /// The first object with `tag` inside this constructed object, at any depth.
    public func find(_ tag: Tag) -> TLV? {
        guard self.tag.isConstructed, let kids = try? children() else { return nil }
        return kids.find(tag)
    }
}
