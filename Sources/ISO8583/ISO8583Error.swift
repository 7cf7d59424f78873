/// Why a message could not be packed or unpacked: what, the field path (`DE55`, `DE60.2`,
/// `header.totalLength`, `MTI`, `bitmap`) and the byte offset from the start of the message.
public struct ISO8583Error: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        case truncated(needed: Int, available: Int)
        case badLength(String)
        case badCharacter(String)
        case missingSpec
        case tooLong(length: Int, maximum: Int)
        case wrongLength(length: Int, expected: Int)
        case trailingBytes(Int)
        case invalidSpec(String)
        case invalidValue(String)
    }

    public let kind: Kind
    public let path: String
    public let offset: Int

    public init(_ kind: Kind, path: String, offset: Int) {
        self.kind = kind
        self.path = path
        self.offset = offset
    }

    public var description: String {
        let at = "\(path) at byte \(offset)"
        switch kind {
        case .truncated(let n, let a): return "\(at): needs \(n) bytes, \(a) remain"
        case .badLength(let s): return "\(at): bad length prefix \(s)"
        case .badCharacter(let s): return "\(at): \(s)"
        case .missingSpec: return "\(at): the bitmap names a field the dialect does not define"
        case .tooLong(let l, let m): return "\(at): length \(l) exceeds the maximum \(m)"
        case .wrongLength(let l, let e): return "\(at): length \(l), the field is fixed at \(e)"
        case .trailingBytes(let n): return "\(at): \(n) bytes after the last field"
        case .invalidSpec(let s): return "\(at): invalid spec: \(s)"
        case .invalidValue(let s): return "\(at): \(s)"
        }
    }
}
