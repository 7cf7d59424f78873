import PaymentCore

/// A data object list (PDOL, CDOL1/2, DDOL, TDOL): tags with the lengths the card asks for,
/// without values (EMV 4.4 Book 3 §5.4).
public struct DOL: Sendable, Hashable, CustomStringConvertible {
    public struct Entry: Sendable, Hashable {
        public let tag: Tag
        public let length: Int
        public init(tag: Tag, length: Int) { self.tag = tag; self.length = length }
    }

    public var entries: [Entry]

    public init(_ entries: [Entry]) { self.entries = entries }

    /// Parses the DOL's value bytes (tag, then a one-byte or BER length, repeated).
    public init(_ bytes: [UInt8], baseOffset: Int = 0) throws(TLVError) {
        var entries: [Entry] = []
        var i = 0
        while i < bytes.count {
            let tag = try TLV.readTag(bytes, at: &i, baseOffset: baseOffset)
            let length = try TLV.readLength(bytes, at: &i, tag: tag, baseOffset: baseOffset)
            entries.append(Entry(tag: tag, length: length))
        }
        self.entries = entries
    }

    /// Total length of the data the list asks for.
    public var dataLength: Int { entries.reduce(0) { $0 + $1.length } }

    /// Encodes the list back to bytes.
    public var encoded: [UInt8] {
        entries.flatMap { $0.tag.bytes + TLV.encodeLength($0.length) }
    }

    public var description: String {
        entries.map { "\($0.tag)[\($0.length)]" }.joined(separator: " ")
    }

    /// Builds the concatenated data the list asks for (EMV 4.4 Book 3 §5.4):
    /// - a value of the right length is used as it is;
    /// - a longer value is truncated — numeric (`n`) keeps its rightmost bytes, every other
    ///   format its leftmost;
    /// - a shorter value is padded — `n` with leading zeros, `cn` with trailing `FF`, every
    ///   other format with trailing `00`;
    /// - a value that is absent, or a constructed tag, becomes zeros.
    public func build(
        from values: [Tag: [UInt8]], dictionary: TagDictionary = .standard
    ) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(dataLength)
        for entry in entries {
            let n = entry.length
            guard !entry.tag.isConstructed, let value = values[entry.tag] else {
                out += [UInt8](repeating: 0, count: n)
                continue
            }
            let format = dictionary[entry.tag]?.format ?? .b
            if value.count == n {
                out += value
            } else if value.count > n {
                out += format == .n ? Array(value.suffix(n)) : Array(value.prefix(n))
            } else {
                let padCount = n - value.count
                switch format {
                case .n: out += [UInt8](repeating: 0, count: padCount) + value
                case .cn: out += value + [UInt8](repeating: 0xFF, count: padCount)
                default: out += value + [UInt8](repeating: 0, count: padCount)
                }
            }
        }
        return out
    }

    /// Splits data built from this list back into tag → value (how the card reads the GPO or
    /// GENERATE AC command data). Throws when the data is shorter or longer than the list.
    public func split(_ data: [UInt8]) throws(EncodingError) -> [Tag: [UInt8]] {
        guard data.count == dataLength else {
            throw .wrongLength(what: "data for DOL \(description)", expected: "\(dataLength) bytes", actual: data.count)
        }
        var out: [Tag: [UInt8]] = [:]
        var i = 0
        for e in entries {
            out[e.tag] = Array(data[i..<i + e.length])
            i += e.length
        }
        return out
    }
}
