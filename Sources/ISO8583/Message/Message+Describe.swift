import EMV
import PaymentCore

extension Message {
    /// A field-by-field description for logs and traces. Card data is masked by the spec's
    /// sensitivity marks (DE2, DE35, DE45 as PANs and tracks; DE52 and keys hidden; DE55 with
    /// card-data tags masked) unless `reveal` is set, which only test tools should do.
    public func describe(spec: MessageSpec, reveal: Bool = false) -> String {
        // One string appended to in place: this runs for every message the switch traces.
        var out = "MTI "
        out.reserveCapacity(1024)
        out += mti
        if let h = spec.header {
            let values = headerFields(spec: spec)
            for f in h.fields {
                out += "\n  header."
                out += f.name
                out += " = "
                out += values[f.name] ?? ""
            }
        }
        let printer = TLVPrinter(revealCardData: reveal)
        for n in fieldNumbers {
            guard let value = bytes(n) else { continue }
            let fs = spec[n]
            out += "\nDE"
            let number = String(n)
            for _ in number.count..<3 { out += " " }
            out += number
            out += " "
            out += fs?.description ?? "(not in dialect)"
            out += ": "
            guard let fs else {
                out += "\(value.count) bytes"
                continue
            }
            if let composite = fs.composite, composite.kind != .tlv {
                // A composite with a sensitive subfield (DE63 TK carries the token) shows only its
                // subfields, each masked, never its raw value.
                if !reveal && composite.subfields.contains(where: { $0.sensitivity != nil }) {
                    out += "\(value.count) characters, by subfield:"
                } else {
                    out += Message.display(value, spec: fs, reveal: reveal)
                }
                if let subs = try? Message.subfields(value, composite, path: "DE\(n)") {
                    for (id, desc, v) in subs {
                        out += "\n      ."
                        out += id
                        out += " "
                        out += desc
                        out += ": "
                        out += reveal ? v : Message.maskSubfield(v, composite.subfields.first { $0.id == id }?.sensitivity)
                    }
                }
            } else {
                out += Message.display(value, spec: fs, reveal: reveal)
                if fs.composite?.kind == .tlv, let items = try? TLV.decodeTree(value) {
                    printer.render(items, into: &out, lineStart: "\n      ")
                }
            }
        }
        return out
    }

    /// The value as a person reads it, masked by sensitivity.
    static func display(_ value: [UInt8], spec: FieldSpec, reveal: Bool) -> String {
        let isBinary = spec.type == .b
        if !reveal {
            switch spec.sensitivity {
            case .pan?:
                return maskCardNumbers(in: String(decoding: value, as: UTF8.self))
            case .track?:
                let text = String(decoding: value, as: UTF8.self)
                guard let sep = text.firstIndex(where: { $0 == "=" || $0 == "D" || $0 == "^" }) else { return maskCardNumbers(in: text) }
                return maskCardNumbers(in: String(text[..<sep])) + String(text[sep]) + String(repeating: "*", count: text.distance(from: sep, to: text.endIndex) - 1)
            case .secret?:
                return "**** (\(value.count) \(isBinary ? "bytes" : "characters"))"
            case .emv?:
                return "\(value.count) bytes of EMV data"
            case nil:
                break
            }
        }
        return isBinary ? value.hexString : String(decoding: value, as: UTF8.self)
    }

    static func maskSubfield(_ value: String, _ sensitivity: Sensitivity?) -> String {
        switch sensitivity {
        case .pan?, .track?: return maskCardNumbers(in: value)
        case .secret?: return "****"
        default: return value
        }
    }

    /// Subfields of a positional or tagged field as (id, description, value).
    static func subfields(_ value: [UInt8], _ composite: CompositeSpec, path: String) throws(ISO8583Error) -> [(String, String, String)] {
        switch composite.kind {
        case .positional:
            return try Positional.split(value, composite, path: path).map { ($0.0.id, $0.0.description, String(decoding: $0.1, as: UTF8.self)) }
        case .tagged:
            return try Tagged.parse(value, composite, path: path).map { tag, v in
                (tag, composite.subfields.first { $0.id == tag }?.description ?? "(unknown tag)", String(decoding: v, as: UTF8.self))
            }
        case .tlv:
            return []
        }
    }

    /// The subfields of field `n` (positional or tagged) by id, e.g. `subfields(90, spec:)["2"]`.
    public func subfields(_ n: Int, spec: MessageSpec) throws(ISO8583Error) -> [String: String] {
        guard let value = bytes(n), let composite = spec[n]?.composite else { return [:] }
        var out: [String: String] = [:]
        for (id, _, v) in try Message.subfields(value, composite, path: "DE\(n)") { out[id] = v }
        return out
    }
}

extension Message {
    /// The header's values by name: as received for an unpacked message (binary fields in
    /// hex), overlaid with any set in ``header``; the spec's defaults for the rest.
    public func headerFields(spec: MessageSpec) -> [String: String] {
        guard let h = spec.header else { return [:] }
        var out: [String: String] = [:]
        var offset = 0
        for f in h.fields {
            defer { offset += f.length }
            if let value = headerValue(f, at: offset) { out[f.name] = value }
        }
        return out
    }

    /// One header field's value (`offset` is where it starts in the header): set in ``header``,
    /// else as received, else the spec's default; nil when none of them.
    func headerValue(_ f: HeaderSpec.Field, at offset: Int) -> String? {
        if let given = header[f.name] { return given }
        guard let raw = receivedHeader, raw.count >= offset + f.length else { return f.defaultValue }
        let bytes = raw[offset..<offset + f.length]
        switch f.encoding {
        case .binary, .hex, .bcd: return bytes.hexString
        case .ascii: return String(decoding: bytes, as: UTF8.self)
        case .ebcdic: return String(decoding: bytes.map { EBCDIC.toASCII[Int($0)] ?? 63 }, as: UTF8.self)
        }
    }

    /// Upper-case hexadecimal digits, as `hexString` writes them.
    static let hexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

    /// ``headerValue(_:at:)``'s text appended as UTF-8 to `out` (nothing when it is nil),
    /// without making the string.
    func appendHeaderValue(_ f: HeaderSpec.Field, at offset: Int, to out: inout [UInt8]) {
        if !header.isEmpty, let given = header[f.name] { out.append(contentsOf: given.utf8); return }
        guard let raw = receivedHeader, raw.count >= offset + f.length else {
            if let value = f.defaultValue { out.append(contentsOf: value.utf8) }
            return
        }
        for byte in raw[offset..<offset + f.length] {
            switch f.encoding {
            case .binary, .hex, .bcd:
                out.append(Message.hexDigits[Int(byte >> 4)])
                out.append(Message.hexDigits[Int(byte & 0x0F)])
            case .ascii: out.append(byte)
            case .ebcdic: out.append(EBCDIC.toASCII[Int(byte)] ?? 63)
            }
        }
    }
}
