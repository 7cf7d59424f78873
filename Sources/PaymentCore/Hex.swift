/// Errors raised when text that should be hexadecimal or decimal digits is not.
public enum EncodingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A hex string with an odd number of digits.
    case oddHexLength(Int)
    /// A character that is not a hex digit, and where it was.
    case invalidHexCharacter(Character, offset: Int)
    /// A character that is not a decimal digit, and where it was.
    case invalidDigit(Character, offset: Int)
    /// A BCD nibble above 9 where a digit was expected.
    case invalidBCDNibble(UInt8, offset: Int)
    /// A value with the wrong length.
    case wrongLength(what: String, expected: String, actual: Int)

    public var description: String {
        switch self {
        case .oddHexLength(let n): return "hex string has an odd number of digits (\(n))"
        case .invalidHexCharacter(let c, let o): return "'\(c)' at offset \(o) is not a hex digit"
        case .invalidDigit(let c, let o): return "'\(c)' at offset \(o) is not a decimal digit"
        case .invalidBCDNibble(let n, let o):
            return "nibble \(String(n, radix: 16, uppercase: true)) in byte \(o) is not a BCD digit"
        case .wrongLength(let what, let expected, let actual):
            return "\(what) must be \(expected), got \(actual)"
        }
    }
}

@inline(__always)
private func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c &- UInt8(ascii: "0")
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return c &- UInt8(ascii: "A") &+ 10
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c &- UInt8(ascii: "a") &+ 10
    default: return nil
    }
}

private let hexDigitsUpper: [UInt8] = Array("0123456789ABCDEF".utf8)

extension Array where Element == UInt8 {
    /// Parses hexadecimal text. Spaces are allowed between digits (as printed by HSMs and traces);
    /// anything else that is not a hex digit is an error naming the character and its offset.
    public init(hex: some StringProtocol) throws(EncodingError) {
        var out: [UInt8] = []
        out.reserveCapacity(hex.utf8.count / 2)
        var high: UInt8? = nil
        var digits = 0
        for (offset, c) in hex.utf8.enumerated() {
            if c == UInt8(ascii: " ") || c == UInt8(ascii: "\n") || c == UInt8(ascii: "\t") { continue }
            guard let v = hexValue(c) else {
                let scalar = String(decoding: [c], as: UTF8.self).first ?? "?"
                throw .invalidHexCharacter(scalar, offset: offset)
            }
            digits += 1
            if let h = high {
                out.append(h << 4 | v)
                high = nil
            } else {
                high = v
            }
        }
        if high != nil { throw .oddHexLength(digits) }
        self = out
    }

    /// Upper-case hexadecimal, no separators.
    public var hexString: String {
        var chars = [UInt8](repeating: 0, count: count * 2)
        for (i, b) in enumerated() {
            chars[2 * i] = hexDigitsUpper[Int(b >> 4)]
            chars[2 * i + 1] = hexDigitsUpper[Int(b & 0x0F)]
        }
        return String(decoding: chars, as: UTF8.self)
    }
}

extension ArraySlice where Element == UInt8 {
    /// Upper-case hexadecimal, no separators.
    public var hexString: String { Array(self).hexString }
}

extension FixedWidthInteger {
    /// Big-endian bytes of the integer, `byteCount` long (the low-order bytes are kept).
    public func bigEndianBytes(count byteCount: Int = MemoryLayout<Self>.size) -> [UInt8] {
        (0..<byteCount).map { i in UInt8(truncatingIfNeeded: self >> (8 * (byteCount - 1 - i))) }
    }
}

extension Array where Element == UInt8 {
    /// Reads an unsigned big-endian integer from all the bytes (at most 8).
    public var bigEndianUInt64: UInt64 {
        reduce(0) { $0 << 8 | UInt64($1) }
    }
}

/// XOR of two equal-length byte arrays.
@inlinable
public func xor(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
    precondition(a.count == b.count, "xor of \(a.count) and \(b.count) bytes")
    var out = a
    for i in 0..<out.count { out[i] ^= b[i] }
    return out
}
