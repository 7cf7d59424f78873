import Foundation

/// A dialect of ISO 8583: header, MTI and bitmap encodings and every field's spec. A value,
/// loadable from JSON (the dialects shipped in `Dialects/`).
public struct MessageSpec: Sendable, Codable {
    public var name: String
    public var description: String
    public var header: HeaderSpec?
    public var mtiEncoding: FieldEncoding
    public var bitmapEncoding: FieldEncoding
    /// Whether field 65's bit announces a third bitmap (fields 129–192).
    public var tertiaryBitmap: Bool
    /// The response code (DE39) a server answers a malformed request with.
    public var formatErrorResponseCode: String
    /// Field specs by number as text ("2", "55", …) in the JSON, resolved to an array.
    public var fields: [String: FieldSpec]

    /// Specs by field number, 1…192 (index 0 unused).
    public private(set) var table: [FieldSpec?] = []
    /// The codec's view of each field, by number.
    private(set) var codecs: [FieldCodec?] = []
    /// How each field is masked for a stored record (``Message/masked(spec:)``), worked out once.
    private(set) var maskings: [FieldMasking] = []
    /// The header with every value at its default, computed fields zero; and where the
    /// computed fields sit.
    private(set) var defaultHeader: [UInt8] = []
    /// The header fields' lengths, encodings and roles, without their names.
    private(set) var headerLayout: [HeaderSpec.Layout] = []
    /// How the MTI is read: four digits in the MTI encoding.
    private(set) var mtiCodec = FieldCodec(FieldSpec(description: "MTI", type: .n, length: 4, encoding: .ascii))

    private enum CodingKeys: String, CodingKey {
        case name, description, header, mtiEncoding, bitmapEncoding, tertiaryBitmap, formatErrorResponseCode, fields
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description) ?? ""
        header = try c.decodeIfPresent(HeaderSpec.self, forKey: .header)
        mtiEncoding = try c.decode(FieldEncoding.self, forKey: .mtiEncoding)
        bitmapEncoding = try c.decode(FieldEncoding.self, forKey: .bitmapEncoding)
        tertiaryBitmap = try c.decodeIfPresent(Bool.self, forKey: .tertiaryBitmap) ?? false
        formatErrorResponseCode = try c.decodeIfPresent(String.self, forKey: .formatErrorResponseCode) ?? "30"
        fields = try c.decode([String: FieldSpec].self, forKey: .fields)
        try buildTable()
    }

    public init(
        name: String, description: String = "", header: HeaderSpec? = nil, mtiEncoding: FieldEncoding, bitmapEncoding: FieldEncoding,
        tertiaryBitmap: Bool = false, formatErrorResponseCode: String = "30", fields: [Int: FieldSpec]
    ) throws {
        self.name = name
        self.description = description
        self.header = header
        self.mtiEncoding = mtiEncoding
        self.bitmapEncoding = bitmapEncoding
        self.tertiaryBitmap = tertiaryBitmap
        self.formatErrorResponseCode = formatErrorResponseCode
        self.fields = Dictionary(uniqueKeysWithValues: fields.map { (String($0.key), $0.value) })
        try buildTable()
    }

    private mutating func buildTable() throws {
        var t = [FieldSpec?](repeating: nil, count: 193)
        for (key, spec) in fields {
            guard let n = Int(key), (2...192).contains(n), n != 65 || !tertiaryBitmap else {
                throw ISO8583Error(.invalidSpec("field key '\(key)' is not a data element number 2–192"), path: "spec.\(key)", offset: 0)
            }
            if spec.encoding == .bcd && ![.n, .z, .xn].contains(spec.type) {
                throw ISO8583Error(.invalidSpec("BCD encoding needs a numeric or track type"), path: "DE\(n)", offset: 0)
            }
            t[n] = spec
        }
        table = t
        codecs = t.map { $0.map(FieldCodec.init) }
        maskings = t.map(FieldMasking.init)
        mtiCodec = FieldCodec(FieldSpec(description: "MTI", type: .n, length: 4, encoding: mtiEncoding == .bcd ? .bcd : mtiEncoding))
        if let header {
            var w = Writer(capacity: header.length)
            try MessageSpec.writeHeader([:], spec: header, into: &w)
            defaultHeader = w.out
            headerLayout = header.fields.map { HeaderSpec.Layout(length: $0.length, encoding: $0.encoding, role: $0.role) }
        }
    }

    /// The highest field number the bitmaps can carry.
    public var maxField: Int { tertiaryBitmap ? 192 : 128 }

    public subscript(field: Int) -> FieldSpec? { field < table.count ? table[field] : nil }

    /// Loads a spec from a JSON file.
    public static func load(from url: URL) throws -> MessageSpec {
        try JSONDecoder().decode(MessageSpec.self, from: Data(contentsOf: url))
    }

    /// The dialects shipped with the module: `network`, `terminal`, `iso87ascii`.
    public static func dialect(_ name: String) throws -> MessageSpec {
        if let cached = DialectCache.shared.specs[name] { return cached }
        throw ISO8583Error(.invalidSpec("no dialect named '\(name)' (network, terminal, iso87ascii)"), path: "spec", offset: 0)
    }

    public static var network: MessageSpec { try! dialect("network") }
    public static var terminal: MessageSpec { try! dialect("terminal") }
    public static var iso87ascii: MessageSpec { try! dialect("iso87ascii") }
}

/// The shipped dialects, parsed once.
final class DialectCache: Sendable {
    static let shared = DialectCache()
    let specs: [String: MessageSpec]

    private init() {
        var out: [String: MessageSpec] = [:]
        for name in ["network", "terminal", "iso87ascii"] {
            guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Dialects") else { continue }
            do { out[name] = try MessageSpec.load(from: url) } catch {
                fatalError("shipped dialect \(name).json is invalid: \(error)")
            }
        }
        specs = out
    }
}

/// A fixed-layout message header (the network dialect's 46 bytes; the terminal's TPDU).
public struct HeaderSpec: Sendable, Hashable, Codable {
    public struct Field: Sendable, Hashable, Codable {
        public enum Role: String, Sendable, Hashable, Codable {
            /// Given by the sender.
            case value
            /// Computed when packing: the header's own length.
            case headerLength
            /// Computed when packing: the whole message's length, header included.
            case totalLength
        }
        public var name: String
        /// Length in characters (ASCII) or bytes (binary/hex shown as 2 hex digits per byte).
        public var length: Int
        public var encoding: FieldEncoding
        public var role: Role?
        public var defaultValue: String?
        public var description: String?
    }

    public var fields: [Field]

    /// A header field without its strings, for the unpack path.
    struct Layout: Sendable {
        let length: Int
        let encoding: FieldEncoding
        let role: Field.Role?
    }

    /// Total header length in bytes.
    public var length: Int { fields.reduce(0) { $0 + $1.length } }
}
