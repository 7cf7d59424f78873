import PaymentCore

/// A response APDU: data followed by the two status bytes SW1 SW2.
public struct ResponseAPDU: Sendable, Hashable, CustomStringConvertible {
    public var data: [UInt8]
    public var statusWord: StatusWord

    public init(data: [UInt8] = [], statusWord: StatusWord = .success) {
        self.data = data
        self.statusWord = statusWord
    }

    public init(bytes: [UInt8]) throws(APDUError) {
        guard bytes.count >= 2 else { throw .responseTooShort(bytes.count) }
        data = Array(bytes.dropLast(2))
        statusWord = StatusWord(sw1: bytes[bytes.count - 2], sw2: bytes[bytes.count - 1])
    }

    public var encoded: [UInt8] { data + [statusWord.sw1, statusWord.sw2] }

    public var description: String { "R-APDU \(data.count) bytes SW=\(statusWord)" }
}

/// An ISO/IEC 7816-4 status word, with the meanings EMV and ISO give it.
public struct StatusWord: Sendable, Hashable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public let rawValue: UInt16

    public init(_ rawValue: UInt16) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt16) { self.rawValue = value }
    public init(sw1: UInt8, sw2: UInt8) { self.rawValue = UInt16(sw1) << 8 | UInt16(sw2) }

    public var sw1: UInt8 { UInt8(rawValue >> 8) }
    public var sw2: UInt8 { UInt8(rawValue & 0xFF) }

    /// `9000`, or `61xx` (more data available).
    public var isSuccess: Bool { rawValue == 0x9000 || sw1 == 0x61 }

    public static let success: StatusWord = 0x9000
    public static let selectedFileInvalidated: StatusWord = 0x6283
    public static let wrongLength: StatusWord = 0x6700
    public static let securityStatusNotSatisfied: StatusWord = 0x6982
    public static let authenticationMethodBlocked: StatusWord = 0x6983
    public static let referencedDataInvalidated: StatusWord = 0x6984
    public static let conditionsOfUseNotSatisfied: StatusWord = 0x6985
    public static let commandNotAllowed: StatusWord = 0x6986
    public static let wrongData: StatusWord = 0x6A80
    public static let functionNotSupported: StatusWord = 0x6A81
    public static let fileNotFound: StatusWord = 0x6A82
    public static let recordNotFound: StatusWord = 0x6A83
    public static let incorrectP1P2: StatusWord = 0x6A86
    public static let referencedDataNotFound: StatusWord = 0x6A88
    public static let wrongP1P2: StatusWord = 0x6B00
    public static let instructionNotSupported: StatusWord = 0x6D00
    public static let classNotSupported: StatusWord = 0x6E00
    public static let noPreciseDiagnosis: StatusWord = 0x6F00

    /// What the status word means (ISO/IEC 7816-4 §5.6, EMV 4.4 Book 1 §11 and Book 3 §6.3.5).
    public var meaning: String {
        switch sw1 {
        case 0x61: return "\(sw2) more bytes available (GET RESPONSE)"
        case 0x6C: return "wrong Le; exact length is \(sw2)"
        case 0x63 where sw2 & 0xF0 == 0xC0: return "verification failed, \(sw2 & 0x0F) tries left"
        default: break
        }
        return StatusWord.meanings[rawValue] ?? "unknown status"
    }

    private static let meanings: [UInt16: String] = [
        0x9000: "success",
        0x6200: "warning: state of non-volatile memory unchanged",
        0x6281: "warning: part of returned data may be corrupted",
        0x6282: "warning: end of file or record reached before Le bytes",
        0x6283: "warning: selected file invalidated (application blocked)",
        0x6300: "warning: verification failed",
        0x6400: "error: state of non-volatile memory unchanged",
        0x6581: "error: memory failure",
        0x6700: "wrong length",
        0x6800: "functions in CLA not supported",
        0x6881: "logical channel not supported",
        0x6882: "secure messaging not supported",
        0x6900: "command not allowed",
        0x6981: "command incompatible with file structure",
        0x6982: "security status not satisfied",
        0x6983: "authentication method blocked",
        0x6984: "referenced data invalidated",
        0x6985: "conditions of use not satisfied",
        0x6986: "command not allowed (no current EF)",
        0x6A80: "incorrect parameters in the data field",
        0x6A81: "function not supported (card or application blocked)",
        0x6A82: "file or application not found",
        0x6A83: "record not found",
        0x6A84: "not enough memory space in the file",
        0x6A86: "incorrect parameters P1-P2",
        0x6A88: "referenced data not found",
        0x6B00: "wrong parameters P1-P2",
        0x6D00: "instruction code not supported or invalid",
        0x6E00: "class not supported",
        0x6F00: "no precise diagnosis",
    ]

    public var description: String { String(format4: rawValue) }
}

extension String {
    init(format4 v: UInt16) {
        self = [UInt8(v >> 8), UInt8(v & 0xFF)].hexString
    }
}
