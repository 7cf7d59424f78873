import EMV
import PaymentCore

extension MessageSpec {
    /// Unpacks wire bytes (header included, framing excluded). Errors name the field path and
    /// the byte offset.
    public func unpack(_ bytes: [UInt8]) throws(ISO8583Error) -> Message {
        var r = Reader(bytes)
        var message = Message(mti: "")
        if let header { message.header = try unpackHeader(header, from: &r) }
        message.mti = try unpackMTI(from: &r)
        let maps = try unpackBitmaps(from: &r)

        for n in 2...maxField where isSet(n, maps) {
            if tertiaryBitmap && n == 65 { continue }
            guard let spec = table[n] else { throw ISO8583Error(.missingSpec, path: "DE\(n)", offset: r.offset) }
            message.values[n] = try unpackField(n, spec: spec, from: &r)
        }
        guard r.remaining == 0 else { throw ISO8583Error(.trailingBytes(r.remaining), path: "message", offset: r.offset) }
        return message
    }

    @inline(__always)
    func isSet(_ n: Int, _ maps: (UInt64, UInt64, UInt64)) -> Bool {
        let bit = UInt64(1) << UInt64(63 - (n - 1) % 64)
        switch (n - 1) / 64 {
        case 0: return maps.0 & bit != 0
        case 1: return maps.1 & bit != 0
        default: return maps.2 & bit != 0
        }
    }

    func unpackMTI(from r: inout Reader) throws(ISO8583Error) -> String {
        let start = r.offset
        let spec = FieldSpec(description: "MTI", type: .n, length: 4, encoding: mtiEncoding == .bcd ? .bcd : mtiEncoding)
        let value = try r.readValue(units: 4, spec: spec, path: "MTI")
        guard value.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
            throw ISO8583Error(.badCharacter("MTI is not four digits"), path: "MTI", offset: start)
        }
        return String(decoding: value, as: UTF8.self)
    }

    func unpackBitmaps(from r: inout Reader) throws(ISO8583Error) -> (UInt64, UInt64, UInt64) {
        func one(_ path: String) throws(ISO8583Error) -> UInt64 {
            let start = r.offset
            if bitmapEncoding == .hex {
                let raw = try r.take(16, path: path)
                var v: UInt64 = 0
                for c in raw {
                    let d: UInt8
                    switch c {
                    case 48...57: d = c - 48
                    case 65...70: d = c - 55
                    case 97...102: d = c - 87
                    default: throw ISO8583Error(.badCharacter("bitmap is not hex"), path: path, offset: start)
                    }
                    v = v << 4 | UInt64(d)
                }
                return v
            }
            return try r.take(8, path: path).reduce(0) { $0 << 8 | UInt64($1) }
        }
        let primary = try one("bitmap")
        let secondary = primary >> 63 == 1 ? try one("bitmap.secondary") : 0
        let tertiary = tertiaryBitmap && secondary >> 63 == 1 ? try one("bitmap.tertiary") : 0
        return (primary, secondary, tertiary)
    }

    /// Reads one field: prefix, value, and the checks of its type and composite layout.
    func unpackField(_ n: Int, spec: FieldSpec, from r: inout Reader) throws(ISO8583Error) -> [UInt8] {
        let start = r.offset
        let units: Int
        if spec.prefix == .fixed {
            units = spec.length
        } else {
            units = try r.readPrefix(digits: spec.prefix.digits, encoding: spec.prefixEncoding, path: "DE\(n)")
            guard units <= spec.length else { throw ISO8583Error(.tooLong(length: units, maximum: spec.length), path: "DE\(n)", offset: start) }
        }
        let value = try r.readValue(units: units, spec: spec, path: "DE\(n)")
        if spec.type != .b || spec.composite != nil {
            try validate(value, spec: spec, path: "DE\(n)", offset: start)
        }
        return value
    }

    private func unpackHeader(_ spec: HeaderSpec, from r: inout Reader) throws(ISO8583Error) -> [String: String] {
        var out: [String: String] = [:]
        for field in spec.fields {
            let path = "header.\(field.name)"
            let start = r.offset
            let raw = try r.take(field.length, path: path)
            let text: String
            switch field.encoding {
            case .binary, .hex, .bcd: text = raw.hexString
            case .ascii:
                guard raw.allSatisfy({ $0 >= 0x20 && $0 <= 0x7E }) else {
                    throw ISO8583Error(.badCharacter("header field is not printable ASCII"), path: path, offset: start)
                }
                text = String(decoding: raw, as: UTF8.self)
            case .ebcdic: text = String(decoding: raw.map { EBCDIC.toASCII[Int($0)] ?? 63 }, as: UTF8.self)
            }
            switch field.role {
            case .headerLength?:
                let v = raw.reduce(0) { $0 << 8 | Int($1) }
                guard v == spec.length else { throw ISO8583Error(.badLength("header length \(v), expected \(spec.length)"), path: path, offset: start) }
            case .totalLength?:
                guard let v = Int(text), v == r.bytes.count else {
                    throw ISO8583Error(.badLength("total length '\(text)' but the message has \(r.bytes.count) bytes"), path: path, offset: start)
                }
            default:
                break
            }
            out[field.name] = text
        }
        return out
    }
}
