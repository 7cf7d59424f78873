/// How a field's characters or bytes are written on the wire.
public enum FieldEncoding: String, Sendable, Hashable, Codable {
    /// One ASCII character per unit.
    case ascii
    /// One EBCDIC (code page 037) character per unit.
    case ebcdic
    /// Packed BCD, two digits per byte; odd lengths padded per ``FieldSpec/align``.
    case bcd
    /// Raw bytes; the value is binary.
    case binary
    /// Binary value written as hex characters in ASCII (two per byte).
    case hex
}

/// The length prefix of a variable field.
public enum LengthKind: String, Sendable, Hashable, Codable {
    case fixed
    /// One digit: up to 9.
    case L
    /// Two digits: up to 99.
    case LL
    /// Three digits: up to 999.
    case LLL
    /// Four digits: up to 9999.
    case LLLL

    /// Number of decimal digits in the prefix (0 for fixed).
    public var digits: Int {
        switch self {
        case .fixed: return 0
        case .L: return 1
        case .LL: return 2
        case .LLL: return 3
        case .LLLL: return 4
        }
    }
}

/// What kind of data a field carries: it decides what "length" counts and which characters
/// are allowed.
public enum FieldType: String, Sendable, Hashable, Codable {
    /// Numeric digits.
    case n
    /// Alphanumeric.
    case an
    /// Alphanumeric and special (printable).
    case ans
    /// Track 2 characters: digits and the separator `=` (written `D` in BCD).
    case z
    /// Binary.
    case b
    /// Amount with a C/D sign character then digits (ISO 8583 x+n).
    case xn = "x+n"
}

/// Which side a short BCD value is padded on.
public enum Alignment: String, Sendable, Hashable, Codable {
    /// Right-aligned: pad on the left (numeric amounts, counters).
    case right
    /// Left-aligned: pad on the right (PANs, track 2).
    case left
}

/// Which kind of card data a field carries, for masking in descriptions.
public enum Sensitivity: String, Sendable, Hashable, Codable {
    /// A card number: show first 6 and last 4.
    case pan
    /// Track data: show the PAN masked, hide the rest.
    case track
    /// A PIN block or key material: hide entirely.
    case secret
    /// EMV data (DE55): show tags with card data masked.
    case emv
}

/// One subfield of a composite field.
public struct SubfieldSpec: Sendable, Hashable, Codable {
    /// Position (1-based) for positional subfields, or the tag for tagged ones.
    public var id: String
    public var description: String
    /// Length in characters (positional: fixed length; tagged: maximum).
    public var length: Int
    public var type: FieldType?
    public var sensitivity: Sensitivity?

    public init(id: String, description: String, length: Int, type: FieldType? = nil, sensitivity: Sensitivity? = nil) {
        self.id = id
        self.description = description
        self.length = length
        self.type = type
        self.sensitivity = sensitivity
    }
}

/// How a composite field is divided.
public struct CompositeSpec: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        /// Fixed-length subfields one after another (DE60, DE90); trailing ones may be absent.
        case positional
        /// `tag (tagLength chars) ‖ length (lengthDigits) ‖ value` repeated (DE48, DE63).
        case tagged
        /// BER-TLV (DE55).
        case tlv
    }

    public var kind: Kind
    public var subfields: [SubfieldSpec]
    public var tagLength: Int?
    public var lengthDigits: Int?

    public init(kind: Kind, subfields: [SubfieldSpec] = [], tagLength: Int? = nil, lengthDigits: Int? = nil) {
        self.kind = kind
        self.subfields = subfields
        self.tagLength = tagLength
        self.lengthDigits = lengthDigits
    }

    private enum CodingKeys: String, CodingKey { case kind, subfields, tagLength, lengthDigits }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(Kind.self, forKey: .kind)
        subfields = try c.decodeIfPresent([SubfieldSpec].self, forKey: .subfields) ?? []
        tagLength = try c.decodeIfPresent(Int.self, forKey: .tagLength)
        lengthDigits = try c.decodeIfPresent(Int.self, forKey: .lengthDigits)
    }
}

/// One data element: encoding × length prefix × padding, plus its composite layout.
public struct FieldSpec: Sendable, Hashable, Codable {
    public var description: String
    public var type: FieldType
    /// Fixed length, or the maximum for variable fields; in digits/characters, or bytes for `b`.
    public var length: Int
    public var prefix: LengthKind
    public var prefixEncoding: FieldEncoding
    public var encoding: FieldEncoding
    /// For BCD values with an odd number of digits; `right` by default.
    public var align: Alignment?
    /// Pad nibble for BCD ("0" or "F"), or pad character for fixed character fields.
    public var pad: String?
    public var composite: CompositeSpec?
    public var sensitivity: Sensitivity?

    public init(
        description: String, type: FieldType, length: Int, prefix: LengthKind = .fixed, prefixEncoding: FieldEncoding = .ascii,
        encoding: FieldEncoding, align: Alignment? = nil, pad: String? = nil, composite: CompositeSpec? = nil, sensitivity: Sensitivity? = nil
    ) {
        self.description = description
        self.type = type
        self.length = length
        self.prefix = prefix
        self.prefixEncoding = prefixEncoding
        self.encoding = encoding
        self.align = align
        self.pad = pad
        self.composite = composite
        self.sensitivity = sensitivity
    }
}
