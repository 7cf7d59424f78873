/// The data element format of EMV 4.4 Book 3 §4.3.
public enum DataFormat: String, Sendable, Hashable {
    /// Alphabetic.
    case a
    /// Alphanumeric.
    case an
    /// Alphanumeric special (printable ASCII, or the common character set).
    case ans
    /// Binary.
    case b
    /// Compressed numeric: BCD left-aligned, padded on the right with `F`.
    case cn
    /// Numeric: BCD right-aligned, padded on the left with zeros.
    case n
    /// A template: the value is more TLV objects.
    case template
}

/// Where a data element comes from.
public enum DataSource: String, Sendable, Hashable {
    case card, terminal, issuer, network
}

/// What the dictionary knows of one tag.
public struct TagInfo: Sendable, Hashable {
    public let tag: Tag
    public let name: String
    public let format: DataFormat
    /// Allowed value lengths in bytes.
    public let length: ClosedRange<Int>
    public let source: DataSource
    /// Templates the element appears in (`70`, `77`, `A5`, …); empty where not in a template.
    public let templates: [Tag]
}

/// A tag dictionary: EMV 4.4 Book 3 Annex A, Book 4 Annex A, the contactless books and the
/// UnionPay qPBOC (JR/T 0025) additions CloudTap uses. It is a table, kept as data below.
public struct TagDictionary: Sendable {
    public let entries: [Tag: TagInfo]

    public init(entries: [TagInfo]) {
        var map: [Tag: TagInfo] = [:]
        for e in entries { map[e.tag] = e }
        self.entries = map
    }

    public subscript(tag: Tag) -> TagInfo? { entries[tag] }

    /// The dictionary CloudTap ships.
    public static let standard = TagDictionary(entries: parse(TagDictionary.table))

    /// Parses the table: `tag | name | format | min-max | source | templates`.
    static func parse(_ text: String) -> [TagInfo] {
        text.split(separator: "\n").compactMap { line in
            let cols = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: " ") }
            guard cols.count == 6, let tag = try? Tag(hex: cols[0]), let format = DataFormat(rawValue: cols[2]),
                  let source = DataSource(rawValue: cols[4]) else { return nil }
            let bounds = cols[3].split(separator: "-").compactMap { Int($0) }
            guard let low = bounds.first, let high = bounds.last else { return nil }
            let templates = cols[5].split(separator: " ").compactMap { try? Tag(hex: String($0)) }
            return TagInfo(tag: tag, name: cols[1], format: format, length: low...high, source: source, templates: templates)
        }
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        var s = self[...]
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return String(s)
    }
}
