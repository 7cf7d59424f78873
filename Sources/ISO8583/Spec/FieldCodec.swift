/// The parts of a ``FieldSpec`` the codec's hot path reads, as a plain value with no strings or
/// arrays (so reading it costs no reference counting). Built once per field with the spec.
struct FieldCodec: Sendable {
    let type: FieldType
    let length: Int
    /// 0 for fixed fields.
    let prefixDigits: Int
    let prefixEncoding: FieldEncoding
    let encoding: FieldEncoding
    let align: Alignment
    let padNibble: UInt8
    /// For fixed character fields that may be padded to length: the pad character.
    let padCharacter: UInt8?
    let composite: CompositeSpec.Kind?

    init(_ spec: FieldSpec) {
        type = spec.type
        length = spec.length
        prefixDigits = spec.prefix.digits
        prefixEncoding = spec.prefixEncoding
        encoding = spec.encoding
        align = spec.align ?? .right
        switch spec.pad?.uppercased() {
        case "F": padNibble = 0x0F
        case "D": padNibble = 0x0D
        default: padNibble = 0
        }
        if let pad = spec.pad, spec.prefix == .fixed, spec.encoding != .bcd || spec.type == .an || spec.type == .ans {
            padCharacter = Array(pad.utf8).first
        } else {
            padCharacter = nil
        }
        composite = spec.composite?.kind
    }

    var isFixed: Bool { prefixDigits == 0 }
}
