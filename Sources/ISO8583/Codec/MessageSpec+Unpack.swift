import EMV
import PaymentCore

extension MessageSpec {
    /// Unpacks wire bytes (header included, framing excluded). Errors name the field path and
    /// the byte offset.
    public func unpack(_ bytes: [UInt8]) throws(ISO8583Error) -> Message {
        var r = Reader(bytes)
        var message = Message(mti: "")
        message.storage.reserveCapacity(bytes.count)
        if let header {
            let start = r.offset
            try checkHeader(header, from: &r)
            message.receivedHeader = Array(bytes[start..<r.offset])
        }
        message.mti = try unpackMTI(from: &r)
        let maps = try unpackBitmaps(from: &r)

        for n in 2...maxField where isSet(n, maps) {
            if tertiaryBitmap && n == 65 { continue }
            guard let codec = codecs[n] else { throw ISO8583Error(.missingSpec, path: "DE\(n)", offset: r.offset) }
            let start = message.storage.count
            try unpackField(n, codec: codec, from: &r, into: &message.storage)
            message.setSpan(n, start: start, count: message.storage.count - start)
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
        let value = try r.readValue(units: 4, codec: mtiCodec, path: "MTI")
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
    func unpackField(_ n: Int, codec: FieldCodec, from r: inout Reader) throws(ISO8583Error) -> [UInt8] {
        var out: [UInt8] = []
        try unpackField(n, codec: codec, from: &r, into: &out)
        return out
    }

    /// Reads one field and appends its value to `out`.
    func unpackField(_ n: Int, codec: FieldCodec, from r: inout Reader, into out: inout [UInt8]) throws(ISO8583Error) {
        let start = r.offset
        let units: Int
        if codec.isFixed {
            units = codec.length
        } else {
            units = try r.readPrefix(digits: codec.prefixDigits, encoding: codec.prefixEncoding, path: "DE\(n)")
            guard units <= codec.length else { throw ISO8583Error(.tooLong(length: units, maximum: codec.length), path: "DE\(n)", offset: start) }
        }
        let valueStart = out.count
        try r.readValue(units: units, codec: codec, into: &out, path: "DE\(n)")
        if codec.type != .b || codec.composite != nil {
            try validate(out[valueStart...], codec: codec, field: n, offset: start)
        }
    }


    /// Checks the header's computed fields and characters, without building its values.
    private func checkHeader(_ spec: HeaderSpec, from r: inout Reader) throws(ISO8583Error) {
        for (index, field) in headerLayout.enumerated() {
            var path: String { "header.\(spec.fields[index].name)" }
            let start = r.offset
            let raw = try r.take(field.length, path: path)
            if field.encoding == .ascii, !raw.allSatisfy({ $0 >= 0x20 && $0 <= 0x7E }) {
                throw ISO8583Error(.badCharacter("header field is not printable ASCII"), path: path, offset: start)
            }
            switch field.role {
            case .headerLength?:
                let v = raw.reduce(0) { $0 << 8 | Int($1) }
                guard v == spec.length else { throw ISO8583Error(.badLength("header length \(v), expected \(spec.length)"), path: path, offset: start) }
            case .totalLength?:
                var v = 0
                for c in raw {
                    guard c >= 48, c <= 57 else { throw ISO8583Error(.badLength("total length is not digits"), path: path, offset: start) }
                    v = v * 10 + Int(c - 48)
                }
                guard v == r.bytes.count else {
                    throw ISO8583Error(.badLength("total length \(v) but the message has \(r.bytes.count) bytes"), path: path, offset: start)
                }
            default:
                break
            }
        }
    }
}
