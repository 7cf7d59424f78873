import PaymentCore

/// An ISO/IEC 7816-4 command APDU: header `CLA INS P1 P2`, optional command data, optional
/// expected response length (Le). Short (Lc ≤ 255, Le ≤ 256) and extended (Lc ≤ 65,535,
/// Le ≤ 65,536) length forms, as in ISO/IEC 7816-4:2013 §5.1.
public struct CommandAPDU: Sendable, Hashable, CustomStringConvertible {
    public var cla: UInt8
    public var ins: UInt8
    public var p1: UInt8
    public var p2: UInt8
    public var data: [UInt8]
    /// Expected response length: nil for none; 256 (short) or 65,536 (extended) for "as much as available".
    public var le: Int?

    public init(cla: UInt8, ins: UInt8, p1: UInt8, p2: UInt8, data: [UInt8] = [], le: Int? = nil) {
        self.cla = cla
        self.ins = ins
        self.p1 = p1
        self.p2 = p2
        self.data = data
        self.le = le
    }

    /// Whether the extended length form is needed to encode this command.
    public var needsExtendedLength: Bool { data.count > 255 || (le ?? 0) > 256 }

    /// The encoded bytes, in the short form when it can carry the command.
    public var encoded: [UInt8] {
        var out: [UInt8] = [cla, ins, p1, p2]
        if needsExtendedLength {
            if !data.isEmpty {
                out += [0x00, UInt8(data.count >> 8), UInt8(data.count & 0xFF)]
                out += data
            }
            if let le {
                let v = le == 65_536 ? 0 : le
                if data.isEmpty { out.append(0x00) }
                out += [UInt8(v >> 8), UInt8(v & 0xFF)]
            }
        } else {
            if !data.isEmpty {
                out.append(UInt8(data.count))
                out += data
            }
            if let le { out.append(le == 256 ? 0 : UInt8(le)) }
        }
        return out
    }

    /// Parses the four ISO/IEC 7816-3 §12.1.3 cases in short and extended form.
    public init(bytes: [UInt8]) throws(APDUError) {
        guard bytes.count >= 4 else { throw .tooShort(bytes.count) }
        cla = bytes[0]; ins = bytes[1]; p1 = bytes[2]; p2 = bytes[3]
        data = []
        le = nil
        let body = bytes[4...]
        let n = body.count
        if n == 0 { return }                                             // case 1
        let b0 = Int(body[body.startIndex])
        if n == 1 { le = b0 == 0 ? 256 : b0; return }                    // case 2S
        if b0 != 0 {                                                     // short Lc
            let lc = b0
            if n == 1 + lc { data = Array(body.dropFirst()); return }     // case 3S
            if n == 2 + lc {                                             // case 4S
                data = Array(body.dropFirst().prefix(lc))
                let l = Int(body.last!)
                le = l == 0 ? 256 : l
                return
            }
            throw .lengthMismatch(lc: lc, bodyLength: n)
        }
        // b0 == 0 with more bytes: extended form.
        if n == 3 {                                                      // case 2E
            let l = Int(body[body.startIndex + 1]) << 8 | Int(body[body.startIndex + 2])
            le = l == 0 ? 65_536 : l
            return
        }
        guard n >= 3 else { throw .lengthMismatch(lc: 0, bodyLength: n) }
        let lc = Int(body[body.startIndex + 1]) << 8 | Int(body[body.startIndex + 2])
        guard lc > 0 else { throw .lengthMismatch(lc: 0, bodyLength: n) }
        if n == 3 + lc { data = Array(body.dropFirst(3)); return }        // case 3E
        if n == 5 + lc {                                                 // case 4E
            data = Array(body.dropFirst(3).prefix(lc))
            let l = Int(body[body.endIndex - 2]) << 8 | Int(body[body.endIndex - 1])
            le = l == 0 ? 65_536 : l
            return
        }
        throw .lengthMismatch(lc: lc, bodyLength: n)
    }

    public var description: String {
        var s = "C-APDU \([cla, ins, p1, p2].hexString)"
        if !data.isEmpty { s += " Lc=\(data.count)" }
        if let le { s += " Le=\(le)" }
        return s
    }
}

/// Why bytes are not a command APDU. The card answers each with a status word.
public enum APDUError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Fewer than the four header bytes.
    case tooShort(Int)
    /// Lc does not agree with the number of bytes that follow the header.
    case lengthMismatch(lc: Int, bodyLength: Int)
    /// A response shorter than its two status bytes.
    case responseTooShort(Int)

    public var description: String {
        switch self {
        case .tooShort(let n): return "command APDU of \(n) bytes is shorter than its 4-byte header"
        case .lengthMismatch(let lc, let n): return "Lc \(lc) does not match the \(n) bytes after the header"
        case .responseTooShort(let n): return "response APDU of \(n) bytes has no status word"
        }
    }

    /// The status word a card answers this error with (ISO/IEC 7816-4 §5.6).
    public var statusWord: StatusWord { .wrongLength }
}

extension CommandAPDU {
    /// SELECT by DF name (ISO/IEC 7816-4 §11.2.2), first or only occurrence, FCI returned.
    public static func select(aid: [UInt8]) -> CommandAPDU {
        CommandAPDU(cla: 0x00, ins: 0xA4, p1: 0x04, p2: 0x00, data: aid, le: 256)
    }

    /// SELECT of the proximity payment system environment, `2PAY.SYS.DDF01`.
    public static let selectPPSE = select(aid: Array("2PAY.SYS.DDF01".utf8))

    /// GET PROCESSING OPTIONS with the PDOL data wrapped in tag 83 (EMV 4.4 Book 3 §6.5.8).
    public static func getProcessingOptions(pdolData: [UInt8]) -> CommandAPDU {
        CommandAPDU(cla: 0x80, ins: 0xA8, p1: 0x00, p2: 0x00, data: TLV(0x83, pdolData).encoded, le: 256)
    }

    /// READ RECORD `record` of short file `sfi` (EMV 4.4 Book 3 §6.5.11).
    public static func readRecord(sfi: UInt8, record: UInt8) -> CommandAPDU {
        CommandAPDU(cla: 0x00, ins: 0xB2, p1: record, p2: sfi << 3 | 0x04, le: 256)
    }

    /// GET DATA for a primitive tag such as `9F36` ATC or `9F17` PIN try counter (Book 3 §6.5.7).
    public static func getData(_ tag: Tag) -> CommandAPDU {
        let b = tag.bytes
        return CommandAPDU(cla: 0x80, ins: 0xCA, p1: b.count > 1 ? b[0] : 0, p2: b.last!, le: 256)
    }

    /// GENERATE APPLICATION CRYPTOGRAM (Book 3 §6.5.5); `referenceControl` is `40` TC, `80` ARQC, `00` AAC.
    public static func generateAC(referenceControl: UInt8, cdolData: [UInt8]) -> CommandAPDU {
        CommandAPDU(cla: 0x80, ins: 0xAE, p1: referenceControl, p2: 0x00, data: cdolData, le: 256)
    }
}
