import EMV
import PaymentCore

extension MessageSpec {
    /// Packs a message into its wire bytes (header included, framing excluded). Refuses values
    /// that break the spec: wrong characters, over-long or wrong-length values, malformed
    /// composite fields, fields the dialect does not define.
    public func pack(_ message: Message) throws(ISO8583Error) -> [UInt8] {
        var w = Writer(capacity: 512)
        if let header {
            if message.header.isEmpty {
                if let received = message.receivedHeader, received.count == header.length {
                    w.out.append(contentsOf: received)
                } else {
                    w.out.append(contentsOf: defaultHeader)
                }
            } else {
                try MessageSpec.writeHeader(message.header, spec: header, into: &w)
            }
        }
        try packMTI(message.mti, into: &w)

        // Bitmaps.
        var maps: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var highest = 0
        try message.spans.withUnsafeBufferPointer { spans throws(ISO8583Error) in
            for n in 2...maxField where spans[n].isPresent {
                guard codecs[n] != nil else { throw ISO8583Error(.missingSpec, path: "DE\(n)", offset: w.out.count) }
                setBit(n, in: &maps)
                highest = n
            }
        }
        if highest > 64 { setBit(1, in: &maps) }
        if highest > 128 { setBit(65, in: &maps) }
        writeBitmap(maps.0, into: &w)
        if highest > 64 { writeBitmap(maps.1, into: &w) }
        if highest > 128 { writeBitmap(maps.2, into: &w) }

        if highest >= 2 {
            for n in 2...highest {
                guard let value = message.value(n), let codec = codecs[n] else { continue }
                if tertiaryBitmap && n == 65 { continue }
                try packField(n, value, codec: codec, into: &w)
            }
        }

        if let header { MessageSpec.fillComputedHeader(header, in: &w.out) }
        return w.out
    }

    private func setBit(_ n: Int, in maps: inout (UInt64, UInt64, UInt64)) {
        let bit = UInt64(1) << UInt64(63 - (n - 1) % 64)
        switch (n - 1) / 64 {
        case 0: maps.0 |= bit
        case 1: maps.1 |= bit
        default: maps.2 |= bit
        }
    }

    private func writeBitmap(_ map: UInt64, into w: inout Writer) {
        let hex: [UInt8] = Array("0123456789ABCDEF".utf8)
        for i in stride(from: 56, through: 0, by: -8) {
            let b = UInt8(truncatingIfNeeded: map >> UInt64(i))
            if bitmapEncoding == .hex {
                w.out.append(hex[Int(b >> 4)])
                w.out.append(hex[Int(b & 0x0F)])
            } else {
                w.out.append(b)
            }
        }
    }

    private func packMTI(_ mti: String, into w: inout Writer) throws(ISO8583Error) {
        var chars: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0)
        var count = 0
        for c in mti.utf8 {
            guard c >= 48, c <= 57, count < 4 else { count = 5; break }
            switch count {
            case 0: chars.0 = c
            case 1: chars.1 = c
            case 2: chars.2 = c
            default: chars.3 = c
            }
            count += 1
        }
        guard count == 4 else { throw ISO8583Error(.invalidValue("MTI '\(mti)' is not four digits"), path: "MTI", offset: w.out.count) }
        switch mtiEncoding {
        case .bcd:
            w.out.append((chars.0 - 48) << 4 | (chars.1 - 48))
            w.out.append((chars.2 - 48) << 4 | (chars.3 - 48))
        case .ebcdic:
            for c in [chars.0, chars.1, chars.2, chars.3] { w.out.append(EBCDIC.fromASCII[Int(c)]) }
        default:
            w.out.append(chars.0); w.out.append(chars.1); w.out.append(chars.2); w.out.append(chars.3)
        }
    }

    /// Packs one field: checks the value against its type and length, writes the prefix and
    /// the value.
    func packField(_ n: Int, _ value: ArraySlice<UInt8>, codec: FieldCodec, into w: inout Writer) throws(ISO8583Error) {
        try validate(value, codec: codec, field: n, offset: w.out.count)
        if codec.isFixed {
            guard value.count == codec.length else {
                if value.count < codec.length, let pad = codec.padCharacter {
                    let fill = [UInt8](repeating: pad, count: codec.length - value.count)
                    try w.write(codec.type == .n ? fill[...] + value : value + fill, codec: codec, field: n)
                    return
                }
                throw ISO8583Error(.wrongLength(length: value.count, expected: codec.length), path: "DE\(n)", offset: w.out.count)
            }
        } else {
            guard value.count <= codec.length else {
                throw ISO8583Error(.tooLong(length: value.count, maximum: codec.length), path: "DE\(n)", offset: w.out.count)
            }
            w.writePrefix(value.count, digits: codec.prefixDigits, encoding: codec.prefixEncoding)
        }
        try w.write(value, codec: codec, field: n)
    }

    /// Character and composite checks for a value.
    func validate(_ value: ArraySlice<UInt8>, codec: FieldCodec, field n: Int, offset: Int) throws(ISO8583Error) {
        var path: String { "DE\(n)" }
        switch codec.type {
        case .n:
            if let bad = value.firstIndex(where: { $0 &- 48 > 9 }) {
                throw ISO8583Error(.badCharacter("character \(bad - value.startIndex + 1) is not a digit"), path: path, offset: offset)
            }
        case .z:
            if let bad = value.firstIndex(where: { $0 &- 48 > 9 && $0 != UInt8(ascii: "=") && $0 != UInt8(ascii: "D") }) {
                throw ISO8583Error(.badCharacter("character \(bad - value.startIndex + 1) is not a track 2 character"), path: path, offset: offset)
            }
        case .xn:
            guard let sign = value.first, sign == UInt8(ascii: "C") || sign == UInt8(ascii: "D"),
                  value.dropFirst().allSatisfy({ $0 &- 48 <= 9 }) else {
                throw ISO8583Error(.badCharacter("amount must be C or D followed by digits"), path: path, offset: offset)
            }
        case .an, .ans:
            if codec.encoding == .ebcdic, let bad = value.firstIndex(where: { $0 < 0x20 || $0 > 0x7E }) {
                throw ISO8583Error(.badCharacter("character \(bad - value.startIndex + 1) has no EBCDIC form"), path: path, offset: offset)
            }
        case .b:
            break
        }
        guard let kind = codec.composite else { return }
        switch kind {
        case .tlv:
            do { try TLV.validate(Array(value)) } catch { throw ISO8583Error(.invalidValue("not well-formed BER-TLV: \(error)"), path: path, offset: offset) }
        case .positional:
            do { _ = try Positional.split(Array(value), table[n]!.composite!, path: path) } catch { throw ISO8583Error(error.kind, path: error.path, offset: offset) }
        case .tagged:
            do { _ = try Tagged.parse(Array(value), table[n]!.composite!, path: path) } catch { throw ISO8583Error(error.kind, path: error.path, offset: offset) }
        }
    }

    /// Writes a header from values by name (computed fields as zeros, filled in later).
    static func writeHeader(_ values: [String: String], spec: HeaderSpec, into w: inout Writer) throws(ISO8583Error) {
        for field in spec.fields {
            var path: String { "header.\(field.name)" }
            if field.role == .headerLength || field.role == .totalLength {
                w.out.append(contentsOf: [UInt8](repeating: 0, count: field.length))
                continue
            }
            let text = values[field.name] ?? field.defaultValue ?? ""
            switch field.encoding {
            case .binary, .hex, .bcd:
                let bytes: [UInt8]
                do { bytes = try [UInt8](hex: text) } catch {
                    throw ISO8583Error(.invalidValue("'\(text)' is not hex: \(error)"), path: path, offset: w.out.count)
                }
                guard bytes.count == field.length else {
                    throw ISO8583Error(.wrongLength(length: bytes.count, expected: field.length), path: path, offset: w.out.count)
                }
                w.out.append(contentsOf: bytes)
            case .ascii, .ebcdic:
                let chars = Array(text.utf8)
                guard chars.count <= field.length, chars.allSatisfy({ $0 >= 0x20 && $0 <= 0x7E }) else {
                    throw ISO8583Error(.invalidValue("'\(text)' is not at most \(field.length) printable characters"), path: path, offset: w.out.count)
                }
                for c in chars + [UInt8](repeating: 32, count: field.length - chars.count) {
                    w.out.append(field.encoding == .ebcdic ? EBCDIC.fromASCII[Int(c)] : c)
                }
            }
        }
    }

    /// Writes the header's own length and the total length into their places.
    static func fillComputedHeader(_ spec: HeaderSpec, in out: inout [UInt8]) {
        var offset = 0
        for field in spec.fields {
            defer { offset += field.length }
            let value: Int
            switch field.role {
            case .headerLength?: value = spec.length
            case .totalLength?: value = out.count
            default: continue
            }
            var v = value
            for i in stride(from: offset + field.length - 1, through: offset, by: -1) {
                if field.encoding == .binary {
                    out[i] = UInt8(truncatingIfNeeded: v)
                    v >>= 8
                } else {
                    out[i] = UInt8(48 + v % 10)
                    v /= 10
                }
            }
        }
    }
}
