import PaymentCore

/// Reads wire bytes back into values, tracking the offset for errors.
struct Reader {
    let bytes: [UInt8]
    var offset: Int

    init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }

    @inline(__always)
    mutating func take(_ n: Int, path: @autoclosure () -> String) throws(ISO8583Error) -> ArraySlice<UInt8> {
        guard n >= 0, n <= remaining else { throw ISO8583Error(.truncated(needed: n, available: remaining), path: path(), offset: offset) }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }

    /// Reads a length prefix of `digits` digits.
    mutating func readPrefix(digits: Int, encoding: FieldEncoding, path: @autoclosure () -> String) throws(ISO8583Error) -> Int {
        let start = offset
        switch encoding {
        case .ascii, .hex, .ebcdic:
            let raw = try take(digits, path: path())
            var v = 0
            for b in raw {
                let c = encoding == .ebcdic ? (EBCDIC.toASCII[Int(b)] ?? 0) : b
                guard c >= 48, c <= 57 else { throw ISO8583Error(.badLength("\(Array(raw).hexString) is not \(digits) digits"), path: path(), offset: start) }
                v = v * 10 + Int(c - 48)
            }
            return v
        case .bcd:
            let raw = try take((digits + 1) / 2, path: path())
            var v = 0
            for b in raw {
                let hi = b >> 4, lo = b & 0x0F
                guard hi <= 9, lo <= 9 else { throw ISO8583Error(.badLength("\(Array(raw).hexString) is not BCD"), path: path(), offset: start) }
                v = v * 100 + Int(hi) * 10 + Int(lo)
            }
            return v
        case .binary:
            let raw = try take((digits + 1) / 2, path: path())
            return raw.reduce(0) { $0 << 8 | Int($1) }
        }
    }

    /// Reads `units` of value and appends the decoded value to `out`.
    mutating func readValue(units: Int, codec spec: FieldCodec, into out: inout [UInt8], path: @autoclosure () -> String) throws(ISO8583Error) {
        let start = offset
        let raw = try take(spec.encoding.byteCount(units: units), path: path())
        switch spec.encoding {
        case .ascii, .binary:
            out.append(contentsOf: raw)
        case .ebcdic:
            for b in raw {
                guard let a = EBCDIC.toASCII[Int(b)] else {
                    throw ISO8583Error(.badCharacter("byte \([b].hexString) is not printable EBCDIC"), path: path(), offset: start)
                }
                out.append(a)
            }
        case .hex:
            do { out.append(contentsOf: try [UInt8](hex: String(decoding: raw, as: UTF8.self))) } catch {
                throw ISO8583Error(.badCharacter("\(error)"), path: path(), offset: start)
            }
        case .bcd:
            let skipFirst = units % 2 == 1 && spec.align == .right
            let first = raw.startIndex
            var written = 0
            for i in 0..<(raw.count * 2) {
                if i == 0 && skipFirst { continue }
                if written == units { break }  // the trailing pad nibble
                let b = raw[first + i / 2]
                let nibble = i % 2 == 0 ? b >> 4 : b & 0x0F
                switch nibble {
                case 0...9: out.append(48 + nibble)
                case 0x0D where spec.type == .z: out.append(UInt8(ascii: "="))
                default:
                    throw ISO8583Error(.badCharacter("nibble \(String(nibble, radix: 16, uppercase: true)) is not a digit"), path: path(), offset: start + i / 2)
                }
                written += 1
            }
        }
    }

    /// Reads `units` of value into a new array.
    mutating func readValue(units: Int, codec: FieldCodec, path: @autoclosure () -> String) throws(ISO8583Error) -> [UInt8] {
        var out: [UInt8] = []
        try readValue(units: units, codec: codec, into: &out, path: path())
        return out
    }
}
