import PaymentCore

/// ISO 9564-1 PIN block formats.
public enum PINBlockFormat: Int, Sendable, Hashable, CaseIterable, Codable, CustomStringConvertible {
    /// Format 0 (ANSI X9.8): PIN field XOR the 12 rightmost PAN digits before the check digit; fill F.
    case iso0 = 0
    /// Format 1: no PAN; random fill. For when the PAN is not available.
    case iso1 = 1
    /// Format 2: ICC offline PIN only; fill F.
    case iso2 = 2
    /// Format 3: as format 0 with random fill from A–F.
    case iso3 = 3
    /// Format 4: AES, 16 bytes, PIN field and PAN field enciphered in two passes.
    case iso4 = 4

    public var description: String { "ISO 9564 format \(rawValue)" }
    /// 8 bytes for formats 0–3, 16 for format 4.
    public var blockLength: Int { self == .iso4 ? 16 : 8 }
    /// Whether the PAN enters the block.
    public var usesPAN: Bool { self == .iso0 || self == .iso3 || self == .iso4 }
}

/// A clear PIN block and its format. It never prints its bytes.
///
/// Clear PIN blocks exist only inside the key-holding component and the PIN pad; everything
/// else handles ``EncryptedPINBlock``s.
public struct PINBlock: Sendable, Hashable, CustomStringConvertible {
    public let format: PINBlockFormat
    public let bytes: [UInt8]

    public var description: String { "PINBlock(\(format), \(bytes.count) bytes)" }

    /// Errors in PIN block handling; none carries the PIN.
    public enum Error: Swift.Error, Hashable, Sendable, CustomStringConvertible {
        case pinLength(Int)
        case pinNotDigits
        case panRequired
        case panTooShort
        case wrongBlockLength(expected: Int, actual: Int)
        case wrongControlField(expected: Int, found: Int)
        case malformed(String)

        public var description: String {
            switch self {
            case .pinLength(let n): return "PIN must be 4 to 12 digits, got \(n)"
            case .pinNotDigits: return "PIN must be decimal digits"
            case .panRequired: return "this PIN block format needs the PAN"
            case .panTooShort: return "PAN too short for the PIN block"
            case .wrongBlockLength(let e, let a): return "PIN block must be \(e) bytes, got \(a)"
            case .wrongControlField(let e, let f): return "PIN block control field is \(f), expected \(e) (wrong key or format?)"
            case .malformed(let why): return "PIN block is malformed: \(why)"
            }
        }
    }

    public init(format: PINBlockFormat, bytes: [UInt8]) {
        self.format = format
        self.bytes = bytes
    }

    /// Encodes a clear PIN (ISO 9564-1:2017 §9.3). Random fill comes from `rng`.
    /// Format 4 returns the plaintext PIN field; use ``ISO9564/encipherFormat4`` to encrypt.
    public static func encode<R: RandomNumberGenerator>(
        pin: String, format: PINBlockFormat, pan: PAN?, using rng: inout R
    ) throws(PINBlock.Error) -> PINBlock {
        guard (4...12).contains(pin.count) else { throw .pinLength(pin.count) }
        guard pin.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { throw .pinNotDigits }
        var nibbles: [UInt8] = [UInt8(format.rawValue), UInt8(pin.count)] + pin.utf8.map { $0 - 48 }
        let total = format == .iso4 ? 16 : 16
        while nibbles.count < total {
            switch format {
            case .iso0, .iso2: nibbles.append(0xF)
            case .iso1: nibbles.append(UInt8.random(in: 0...15, using: &rng))
            case .iso3: nibbles.append(UInt8.random(in: 10...15, using: &rng))
            case .iso4: nibbles.append(0xA)
            }
        }
        var field = pack(nibbles)
        switch format {
        case .iso0, .iso3:
            guard let pan else { throw .panRequired }
            field = xor(field, try panBlock(pan))
        case .iso4:
            field += (0..<8).map { _ in UInt8.random(in: 0...255, using: &rng) }
        case .iso1, .iso2:
            break
        }
        return PINBlock(format: format, bytes: field)
    }

    public static func encode(pin: String, format: PINBlockFormat, pan: PAN?) throws(PINBlock.Error) -> PINBlock {
        var rng = SystemRandomNumberGenerator()
        return try encode(pin: pin, format: format, pan: pan, using: &rng)
    }

    /// Decodes the clear PIN, checking control field, length, digits and fill.
    public func decodePIN(pan: PAN?) throws(PINBlock.Error) -> String {
        guard bytes.count == format.blockLength else { throw .wrongBlockLength(expected: format.blockLength, actual: bytes.count) }
        var field = Array(bytes.prefix(8))
        if format == .iso0 || format == .iso3 {
            guard let pan else { throw .panRequired }
            field = xor(field, try PINBlock.panBlock(pan))
        }
        let nibbles = field.flatMap { [$0 >> 4, $0 & 0x0F] }
        guard Int(nibbles[0]) == format.rawValue else { throw .wrongControlField(expected: format.rawValue, found: Int(nibbles[0])) }
        let n = Int(nibbles[1])
        guard (4...12).contains(n) else { throw .malformed("PIN length nibble \(n)") }
        let digits = nibbles[2..<2 + n]
        guard digits.allSatisfy({ $0 <= 9 }) else { throw .malformed("non-digit in PIN field") }
        let fill = nibbles[(2 + n)...]
        switch format {
        case .iso0, .iso2: guard fill.allSatisfy({ $0 == 0xF }) else { throw .malformed("fill is not F") }
        case .iso3: guard fill.allSatisfy({ $0 >= 0xA }) else { throw .malformed("fill is not A–F") }
        case .iso4: guard fill.allSatisfy({ $0 == 0xA }) else { throw .malformed("fill is not A") }
        case .iso1: break
        }
        return String(digits.map { Character(String($0)) })
    }

    /// The format 0/3 PAN block: 0000 ‖ the 12 rightmost PAN digits excluding the check digit.
    static func panBlock(_ pan: PAN) throws(PINBlock.Error) -> [UInt8] {
        try panBlockWord(pan).bigEndianBytes()
    }

    /// The format 0/3 PAN block as a 64-bit word.
    static func panBlockWord(_ pan: PAN) throws(PINBlock.Error) -> UInt64 {
        let utf8 = pan.digits.utf8
        guard utf8.count >= 13 else { throw .panTooShort }
        var word: UInt64 = 0
        for c in utf8.dropLast().suffix(12) { word = word << 4 | UInt64(c &- 48) }
        return word
    }

    /// The format 4 PAN field (ISO 9564-1:2017 §9.4.2): M (PAN length − 12) ‖ PAN ‖ 0 fill,
    /// 16 bytes; PANs shorter than 12 digits are left-filled with zeros and M = 0.
    static func format4PANField(_ pan: PAN) -> [UInt8] {
        let digits = pan.digits.count < 12
            ? String(repeating: "0", count: 12 - pan.digits.count) + pan.digits : pan.digits
        var nibbles: [UInt8] = [UInt8(digits.count - 12)] + digits.utf8.map { $0 - 48 }
        nibbles += [UInt8](repeating: 0, count: 32 - nibbles.count)
        return pack(nibbles)
    }

    static func pack(_ nibbles: [UInt8]) -> [UInt8] {
        stride(from: 0, to: nibbles.count, by: 2).map { nibbles[$0] << 4 | nibbles[$0 + 1] }
    }
}

/// An enciphered PIN block as it travels (ISO 8583 DE52). Prints neither bytes nor PIN.
public struct EncryptedPINBlock: Sendable, Hashable, CustomStringConvertible {
    public let format: PINBlockFormat
    public let bytes: [UInt8]
    public init(format: PINBlockFormat, bytes: [UInt8]) {
        self.format = format
        self.bytes = bytes
    }
    public var description: String { "EncryptedPINBlock(\(format), ****)" }
}
