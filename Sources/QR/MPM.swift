import PaymentCore

/// One data object of an EMV merchant-presented payload (EMV QRCPS Merchant-Presented Mode):
/// a two-digit ID, a two-digit length counted in characters, and the value — a string, or for a
/// template (26–51, 62, 64, 80–99) the objects nested inside it.
public struct MPMObject: Sendable, Hashable, CustomStringConvertible {
    public var id: String
    public var value: String

    public init(_ id: String, _ value: String) {
        self.id = id
        self.value = value
    }

    /// A template whose value is its children, encoded.
    public init(_ id: String, children: [MPMObject]) {
        self.init(id, children.map(\.encoded).joined())
    }

    /// ID, length and value as they appear in a payload.
    public var encoded: String {
        let n = value.unicodeScalars.count
        return id + (n < 10 ? "0\(n)" : "\(n)") + value
    }

    /// The nested objects of a template.
    public func children() throws(MPMError) -> [MPMObject] {
        try MPM.objects(in: Array(value.unicodeScalars), offset: 0)
    }

    public var description: String { encoded }
}

/// Why a merchant-presented payload was refused; `offset` counts characters from its start.
public struct MPMError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        case truncated
        case badID(String)
        case badLength(String)
        case missingCRC
        case crcMismatch(expected: String, found: String)
        case crcNotLast
        case payloadFormatFirst
        case duplicateID(String)
        case templateWithoutIdentifier(String)
        case invalidValue(id: String, reason: String)
    }
    public let kind: Kind
    public let offset: Int

    public init(_ kind: Kind, offset: Int = 0) {
        self.kind = kind
        self.offset = offset
    }

    public var description: String {
        let what: String = switch kind {
        case .truncated: "the payload ends inside a data object"
        case .badID(let id): "'\(id)' is not a two-digit ID"
        case .badLength(let l): "'\(l)' is not a two-digit length"
        case .missingCRC: "no CRC (ID 63) at the end"
        case .crcMismatch(let expected, let found): "CRC \(found) does not match the payload (\(expected))"
        case .crcNotLast: "the CRC (ID 63) must be the last data object"
        case .payloadFormatFirst: "the payload format indicator (ID 00, \"01\") must come first"
        case .duplicateID(let id): "ID \(id) appears twice"
        case .templateWithoutIdentifier(let id): "template \(id) has no globally unique identifier (sub-ID 00)"
        case .invalidValue(let id, let reason): "ID \(id): \(reason)"
        }
        return "\(what) (at character \(offset))"
    }
}

/// Reading and writing EMV merchant-presented payloads: ID–length–value objects, the
/// CRC-16/CCITT-FALSE in ID 63 over everything before its value (its ID and length included).
public enum MPM {
    /// The objects of a payload, after checking its CRC (compared case-blind); ID 63 is not
    /// among them.
    public static func decode(_ payload: String) throws(MPMError) -> [MPMObject] {
        let scalars = Array(payload.unicodeScalars)
        let objects = try objects(in: scalars, offset: 0)
        guard let last = objects.last, last.id == "63" else {
            if objects.contains(where: { $0.id == "63" }) { throw MPMError(.crcNotLast, offset: scalars.count) }
            throw MPMError(.missingCRC, offset: scalars.count)
        }
        guard last.value.unicodeScalars.count == 4, last.value.allSatisfy(\.isHexDigit) else {
            throw MPMError(.invalidValue(id: "63", reason: "the CRC is four hex digits"), offset: scalars.count - 4)
        }
        var covered = String.UnicodeScalarView()
        covered.append(contentsOf: scalars.dropLast(4))
        let expected = crc(String(covered))
        guard expected == last.value.uppercased() else { throw MPMError(.crcMismatch(expected: expected, found: last.value), offset: scalars.count - 4) }
        return Array(objects.dropLast())
    }

    /// The payload for `objects` (without ID 63): their encodings, then `6304` and the CRC.
    public static func encode(_ objects: [MPMObject]) -> String {
        let body = objects.filter { $0.id != "63" }.map(\.encoded).joined() + "6304"
        return body + crc(body)
    }

    /// CRC-16/CCITT-FALSE over the UTF-8 bytes, as four upper-case hex digits.
    public static func crc(_ text: String) -> String {
        let value = CRC16.ccittFalse(Array(text.utf8))
        return String(value, radix: 16, uppercase: true).leftPadded(to: 4)
    }

    static func objects(in scalars: [Unicode.Scalar], offset base: Int) throws(MPMError) -> [MPMObject] {
        var out: [MPMObject] = []
        var i = 0
        func digits(_ at: Int) -> String? {
            guard at + 2 <= scalars.count else { return nil }
            let pair = scalars[at..<at + 2]
            return pair.allSatisfy({ ("0"..."9").contains($0) }) ? String(String.UnicodeScalarView(pair)) : nil
        }
        while i < scalars.count {
            guard i + 4 <= scalars.count else { throw MPMError(.truncated, offset: base + i) }
            guard let id = digits(i) else { throw MPMError(.badID(String(String.UnicodeScalarView(scalars[i..<i + 2]))), offset: base + i) }
            guard let lengthText = digits(i + 2), let length = Int(lengthText) else {
                throw MPMError(.badLength(String(String.UnicodeScalarView(scalars[i + 2..<i + 4]))), offset: base + i + 2)
            }
            guard i + 4 + length <= scalars.count else { throw MPMError(.truncated, offset: base + i) }
            out.append(MPMObject(id, String(String.UnicodeScalarView(scalars[i + 4..<i + 4 + length]))))
            i += 4 + length
        }
        return out
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
