/// Why a BER-TLV byte string could not be decoded, with the tag (when known) and the absolute
/// byte offset of the problem.
public struct TLVError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// The input ended inside a tag.
        case truncatedTag
        /// A tag longer than the four bytes EMV allows.
        case tagTooLong
        /// The input ended inside a length field.
        case truncatedLength
        /// Length byte `80` (indefinite form) is not used in EMV.
        case indefiniteLength
        /// A long-form length with more than four length bytes.
        case lengthTooLong(lengthBytes: Int)
        /// The length names more value bytes than remain.
        case valueOverrun(declared: Int, available: Int)
        /// Nesting deeper than the decoder allows.
        case nestingTooDeep
    }

    public let kind: Kind
    /// The tag being read, when its bytes were complete.
    public let tag: Tag?
    /// Offset of the offending byte from the start of the outermost input.
    public let offset: Int

    public init(_ kind: Kind, tag: Tag?, offset: Int) {
        self.kind = kind
        self.tag = tag
        self.offset = offset
    }

    public var description: String {
        let at = tag.map { "tag \($0) at offset \(offset)" } ?? "offset \(offset)"
        switch kind {
        case .truncatedTag: return "input ends inside a tag at offset \(offset)"
        case .tagTooLong: return "tag longer than 4 bytes at offset \(offset)"
        case .truncatedLength: return "\(at): input ends inside the length"
        case .indefiniteLength: return "\(at): indefinite length (80) is not allowed in EMV"
        case .lengthTooLong(let n): return "\(at): length field of \(n) bytes is too long"
        case .valueOverrun(let d, let a): return "\(at): length \(d) but only \(a) bytes remain"
        case .nestingTooDeep: return "\(at): templates nested too deeply"
        }
    }
}
