import EMV
import Foundation
import PaymentCore

extension ContactlessKernel {
    /// The terminal's data elements for this tap, by tag.
    static func terminalData(_ c: TerminalConfiguration, _ t: TransactionInput) -> [UInt32: [UInt8]] {
        // TTQ: byte 1 — b7 contactless PBOC, b6 qPBOC, b3 online PIN supported; byte 2 — b8 online
        // cryptogram required, b7 CVM required.
        var ttq: [UInt8] = [0x40, 0x00, 0x00, 0x00]
        if c.supportsQPBOC { ttq[0] |= 0x20 }
        if c.supportsOnlinePIN { ttq[0] |= 0x04 }
        if t.amount > c.floorLimit || c.floorLimit == 0 { ttq[1] |= 0x80 }
        if t.amount >= c.cvmLimit { ttq[1] |= 0x40 }
        return [
            0x9F66: ttq,
            0x9F02: bcd(t.amount, bytes: 6), 0x9F03: bcd(t.otherAmount, bytes: 6),
            0x9F1A: bcd(Int64(c.country), bytes: 2), 0x95: [0, 0, 0, 0, 0],
            0x5F2A: bcd(Int64(c.currency.numericCode), bytes: 2), 0x9A: date(t.date), 0x9C: [t.type],
            0x9F37: t.unpredictableNumber,
            0x9F33: c.capabilities, 0x9F35: [c.terminalType], 0x9F1E: Array(c.interfaceDeviceSerial.utf8.prefix(8)),
            0x9F09: c.applicationVersion,
        ]
    }

    /// `value` as `bytes` bytes of BCD, right-aligned (zeros when it is negative or does not fit).
    static func bcd(_ value: Int64, bytes: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: bytes)
        guard value >= 0 else { return out }
        var rest = value
        for i in stride(from: bytes - 1, through: 0, by: -1) where rest > 0 {
            let low = UInt8(rest % 10)
            rest /= 10
            out[i] = UInt8(rest % 10) << 4 | low
            rest /= 10
        }
        return rest == 0 ? out : [UInt8](repeating: 0, count: bytes)
    }

    static func date(_ d: Date) -> [UInt8] {
        let p = UTCTime(d)
        return [bcd(Int64(p.year % 100), bytes: 1)[0], bcd(Int64(p.month), bytes: 1)[0], bcd(Int64(p.day), bytes: 1)[0]]
    }

    static func yymm(_ d: Date) -> String {
        date(d).prefix(2).hexString
    }

    /// The primitive fields of a template (77, 70), by tag; nil when the bytes are not that
    /// template or do not decode.
    static func template(_ bytes: [UInt8], _ tag: Tag) -> [UInt32: [UInt8]]? {
        guard let top = try? TLV.decodeTree(bytes).first, top.tag == tag, let children = try? top.children() else { return nil }
        var out: [UInt32: [UInt8]] = [:]
        for child in children where !child.tag.isConstructed { out[child.tag.rawValue] = child.value }
        return out
    }

    /// PAN and YYMM from track 2 equivalent data.
    static func parseTrack2(_ bytes: [UInt8]) -> (pan: PAN, expiry: String)? {
        let nibbles = bytes.hexString
        guard let separator = nibbles.firstIndex(of: "D") else { return nil }
        let panDigits = String(nibbles[..<separator])
        let rest = nibbles[nibbles.index(after: separator)...]
        guard rest.count >= 7, let pan = try? PAN(panDigits) else { return nil }
        return (pan, String(rest.prefix(4)))
    }

    static func digits(_ bytes: [UInt8]) -> String {
        var s = bytes.hexString
        while s.hasSuffix("F") { s.removeLast() }
        return s
    }
}
