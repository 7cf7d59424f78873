import EMV
import PaymentCore

extension MessageSpec {
    /// Packs a message into its wire bytes (header included, framing excluded). Refuses values
    /// that break the spec: wrong characters, over-long or wrong-length values, malformed
    /// composite fields, fields the dialect does not define.
    public func pack(_ message: Message) throws(ISO8583Error) -> [UInt8] {
        var w = Writer(capacity: 512)
        if let header { try packHeader(message.header, spec: header, into: &w) }
        try packMTI(message.mti, into: &w)

        // Bitmaps.
        var maps: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var highest = 0
        for n in 2...maxField where message.values[n] != nil {
            guard table[n] != nil else { throw ISO8583Error(.missingSpec, path: "DE\(n)", offset: w.out.count) }
            setBit(n, in: &maps)
            highest = n
        }
        if highest > 64 { setBit(1, in: &maps) }
        if highest > 128 { setBit(65, in: &maps) }
        writeBitmap(maps.0, into: &w)
        if highest > 64 { writeBitmap(maps.1, into: &w) }
        if highest > 128 { writeBitmap(maps.2, into: &w) }

        for n in 2...max(highest, 2) {
            guard let value = message.values[n], let spec = table[n] else { continue }
            if tertiaryBitmap && n == 65 { continue }
            try packField(n, value, spec: spec, into: &w)
        }

        if let header { fillComputedHeader(header, in: &w.out) }
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
        let bytes = map.bigEndianBytes()
        if bitmapEncoding == .hex { w.out.append(contentsOf: Array(bytes.hexString.utf8)) } else { w.out.append(contentsOf: bytes) }
    }

    private func packMTI(_ mti: String, into w: inout Writer) throws(ISO8583Error) {
        let chars = Array(mti.utf8)
        guard chars.count == 4, chars.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
            throw ISO8583Error(.invalidValue("MTI '\(mti)' is not four digits"), path: "MTI", offset: w.out.count)
        }
        try w.write(chars, encoding: mtiEncoding == .bcd ? .bcd : mtiEncoding, align: .right, padNibble: 0, path: "MTI")
    }

    /// Packs one field: checks the value against its type and length, writes the prefix and
    /// the value.
    func packField(_ n: Int, _ value: [UInt8], spec: FieldSpec, into w: inout Writer) throws(ISO8583Error) {
        let path = "DE\(n)"
        try validate(value, spec: spec, path: path, offset: w.out.count)
        var value = value
        if spec.prefix == .fixed {
            if value.count < spec.length, let pad = spec.pad, spec.encoding != .bcd || spec.type == .an || spec.type == .ans {
                let padByte = Array(pad.utf8).first ?? 32
                let fill = [UInt8](repeating: padByte, count: spec.length - value.count)
                value = spec.type == .n ? fill + value : value + fill
            }
            guard value.count == spec.length else {
                throw ISO8583Error(.wrongLength(length: value.count, expected: spec.length), path: path, offset: w.out.count)
            }
        } else {
            guard value.count <= spec.length else {
                throw ISO8583Error(.tooLong(length: value.count, maximum: spec.length), path: path, offset: w.out.count)
            }
            w.writePrefix(value.count, digits: spec.prefix.digits, encoding: spec.prefixEncoding)
        }
        try w.write(value, encoding: spec.encoding, align: spec.alignment, padNibble: spec.padNibble, path: path)
    }

    /// Character and composite checks for a value.
    func validate(_ value: [UInt8], spec: FieldSpec, path: String, offset: Int) throws(ISO8583Error) {
        switch spec.type {
        case .n:
            if let bad = value.firstIndex(where: { $0 < 48 || $0 > 57 }) {
                throw ISO8583Error(.badCharacter("character \(bad + 1) is not a digit"), path: path, offset: offset)
            }
        case .z:
            if let bad = value.firstIndex(where: { !($0 >= 48 && $0 <= 57) && $0 != UInt8(ascii: "=") && $0 != UInt8(ascii: "D") }) {
                throw ISO8583Error(.badCharacter("character \(bad + 1) is not a track 2 character"), path: path, offset: offset)
            }
        case .xn:
            guard let sign = value.first, sign == UInt8(ascii: "C") || sign == UInt8(ascii: "D"),
                  value.dropFirst().allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
                throw ISO8583Error(.badCharacter("amount must be C or D followed by digits"), path: path, offset: offset)
            }
        case .an, .ans:
            if spec.encoding == .ebcdic, let bad = value.firstIndex(where: { $0 < 0x20 || $0 > 0x7E }) {
                throw ISO8583Error(.badCharacter("character \(bad + 1) has no EBCDIC form"), path: path, offset: offset)
            }
        case .b:
            break
        }
        guard let composite = spec.composite else { return }
        do {
            switch composite.kind {
            case .tlv: _ = try TLV.decodeTree(value)
            case .positional: _ = try Positional.split(value, composite, path: path)
            case .tagged: _ = try Tagged.parse(value, composite, path: path)
            }
        } catch let e as ISO8583Error {
            throw ISO8583Error(e.kind, path: e.path, offset: offset)
        } catch {
            throw ISO8583Error(.invalidValue("not well-formed: \(error)"), path: path, offset: offset)
        }
    }

    private func packHeader(_ values: [String: String], spec: HeaderSpec, into w: inout Writer) throws(ISO8583Error) {
        for field in spec.fields {
            let path = "header.\(field.name)"
            if field.role == .headerLength || field.role == .totalLength {
                w.out.append(contentsOf: [UInt8](repeating: 0, count: field.length))  // filled in at the end
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
                var chars = Array(text.utf8)
                guard chars.count <= field.length else {
                    throw ISO8583Error(.tooLong(length: chars.count, maximum: field.length), path: path, offset: w.out.count)
                }
                chars += [UInt8](repeating: 32, count: field.length - chars.count)
                try w.write(chars, encoding: field.encoding, align: .left, padNibble: 0, path: path)
            }
        }
    }

    /// Writes the header's own length and the total length into their places.
    private func fillComputedHeader(_ spec: HeaderSpec, in out: inout [UInt8]) {
        var offset = 0
        for field in spec.fields {
            defer { offset += field.length }
            let value: Int
            switch field.role {
            case .headerLength?: value = spec.length
            case .totalLength?: value = out.count
            default: continue
            }
            var w = Writer(capacity: field.length)
            w.writePrefix(value, digits: field.encoding == .binary ? field.length * 2 : field.length,
                          encoding: field.encoding == .binary ? .binary : .ascii)
            out.replaceSubrange(offset..<offset + field.length, with: w.out.suffix(field.length))
        }
    }
}
