/// Packed binary-coded decimal: two digits per byte, high nibble first.
///
/// EMV numeric data elements (format `n`) are right-aligned and padded on the left with zero
/// digits; compressed numerics (format `cn`, e.g. the PAN in tag 5A) are left-aligned and
/// padded on the right with `F` nibbles (EMV 4.4 Book 3 §4.3).
public enum BCD {
    /// Packs decimal digits. An odd number of digits is padded with `pad` on the given side.
    public static func pack(
        _ digits: some StringProtocol, padNibble pad: UInt8 = 0, leftAligned: Bool = false
    ) throws(EncodingError) -> [UInt8] {
        var nibbles: [UInt8] = []
        nibbles.reserveCapacity(digits.utf8.count + 1)
        for (offset, c) in digits.utf8.enumerated() {
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else {
                throw .invalidDigit(Character(Unicode.Scalar(c)), offset: offset)
            }
            nibbles.append(c - UInt8(ascii: "0"))
        }
        if nibbles.count % 2 == 1 {
            if leftAligned { nibbles.append(pad) } else { nibbles.insert(pad, at: 0) }
        }
        return stride(from: 0, to: nibbles.count, by: 2).map { nibbles[$0] << 4 | nibbles[$0 + 1] }
    }

    /// Packs `digits` right-aligned into exactly `byteCount` bytes, zero-filled on the left
    /// (EMV format `n`, e.g. 9F02 Amount, Authorised is `pack(amount, byteCount: 6)`).
    public static func pack(_ digits: some StringProtocol, byteCount: Int) throws(EncodingError) -> [UInt8] {
        guard digits.utf8.count <= byteCount * 2 else {
            throw .wrongLength(what: "numeric value", expected: "at most \(byteCount * 2) digits", actual: digits.utf8.count)
        }
        let padded = String(repeating: "0", count: byteCount * 2 - digits.utf8.count) + digits
        return try pack(padded)
    }

    /// Unpacks every nibble as a digit; a nibble above 9 is an error unless it is trailing `F`
    /// padding and `allowTrailingF` is set (format `cn`).
    public static func unpack(_ bytes: some Collection<UInt8>, allowTrailingF: Bool = false) throws(EncodingError) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        var seenF = false
        for (i, b) in bytes.enumerated() {
            for nibble in [b >> 4, b & 0x0F] {
                if allowTrailingF && nibble == 0x0F { seenF = true; continue }
                guard nibble <= 9, !seenF else { throw .invalidBCDNibble(nibble, offset: i) }
                out.append(UInt8(ascii: "0") + nibble)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
