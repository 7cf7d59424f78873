import PaymentCore

/// Writes field values into their wire form.
struct Writer {
    var out: [UInt8]

    init(capacity: Int) {
        out = []
        out.reserveCapacity(capacity)
    }

    /// Appends a field's value in its encoding.
    @inline(__always)
    mutating func write(_ value: ArraySlice<UInt8>, codec: FieldCodec, field n: Int) throws(ISO8583Error) {
        try write(value, encoding: codec.encoding, align: codec.align, padNibble: codec.padNibble, path: "DE\(n)")
    }

    /// Appends `value` in `encoding`.
    mutating func write(_ value: ArraySlice<UInt8>, encoding: FieldEncoding, align: Alignment, padNibble: UInt8, path: @autoclosure () -> String) throws(ISO8583Error) {
        switch encoding {
        case .ascii, .binary:
            out.append(contentsOf: value)
        case .ebcdic:
            for c in value {
                guard c >= 0x20, c <= 0x7E else {
                    throw ISO8583Error(.badCharacter("byte \([c].hexString) has no EBCDIC form"), path: path(), offset: out.count)
                }
                out.append(EBCDIC.fromASCII[Int(c)])
            }
        case .hex:
            out.append(contentsOf: Array(value.hexString.utf8))  // rare: hex-coded binary fields
        case .bcd:
            let odd = value.count % 2 == 1
            var high: UInt8? = nil
            if odd && align == .right { high = padNibble }
            for c in value {
                let nibble: UInt8
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = c - 48
                case UInt8(ascii: "="), UInt8(ascii: "D"), UInt8(ascii: "d"): nibble = 0x0D
                default:
                    throw ISO8583Error(.badCharacter("'\(Character(Unicode.Scalar(c)))' cannot be written in BCD"), path: path(), offset: out.count)
                }
                if let h = high {
                    out.append(h << 4 | nibble)
                    high = nil
                } else {
                    high = nibble
                }
            }
            if let h = high { out.append(h << 4 | padNibble) }
        }
    }

    /// Appends a length prefix of `digits` decimal digits.
    mutating func writePrefix(_ length: Int, digits: Int, encoding: FieldEncoding) {
        switch encoding {
        case .ascii, .hex:
            appendDigits(length, digits)
        case .ebcdic:
            let start = out.count
            appendDigits(length, digits)
            for i in start..<out.count { out[i] = EBCDIC.fromASCII[Int(out[i])] }
        case .bcd:
            let byteCount = (digits + 1) / 2
            var divisor = 1
            for _ in 1..<byteCount { divisor *= 100 }
            for _ in 0..<byteCount {
                let pair = (length / divisor) % 100
                out.append(UInt8(pair % 10) | UInt8(pair / 10) << 4)
                divisor = max(divisor / 100, 1)
            }
        case .binary:
            let byteCount = (digits + 1) / 2
            for i in stride(from: byteCount - 1, through: 0, by: -1) { out.append(UInt8(truncatingIfNeeded: length >> (8 * i))) }
        }
    }

    private mutating func appendDigits(_ value: Int, _ digits: Int) {
        var divisor = 1
        for _ in 1..<max(digits, 1) { divisor *= 10 }
        var v = value
        for _ in 0..<digits {
            out.append(UInt8(48 + (v / divisor) % 10))
            v %= divisor
            divisor = max(divisor / 10, 1)
        }
    }
}

extension FieldEncoding {
    /// Bytes on the wire for `units` of value.
    @inline(__always)
    func byteCount(units: Int) -> Int {
        switch self {
        case .ascii, .ebcdic, .binary: return units
        case .bcd: return (units + 1) / 2
        case .hex: return units * 2
        }
    }
}
