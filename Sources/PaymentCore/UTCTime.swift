import Foundation

/// A moment as the UTC calendar date and time payment messages carry (DE7 MMDDhhmmss, DE12/13,
/// tag 9A YYMMDD, expiry YYMM), computed arithmetically: no `Calendar` or `DateFormatter` per
/// message, which on a busy switch or POS costs more than the message itself.
public struct UTCTime: Sendable, Hashable {
    public let year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int

    public init(_ date: Date) {
        let seconds = Int(floor(date.timeIntervalSince1970))
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        (hour, minute, second) = (secondOfDay / 3600, secondOfDay % 3600 / 60, secondOfDay % 60)
        // Days since 1970-01-01 to the proleptic Gregorian civil date (H. Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        day = dayOfYear - (153 * mp + 2) / 5 + 1
        month = mp < 10 ? mp + 3 : mp - 9
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    }

    /// MMDDhhmmss (DE7).
    public var mmddhhmmss: String { Digits.text { $0.two(month, day, hour, minute, second) } }
    /// hhmmss (DE12).
    public var hhmmss: String { Digits.text { $0.two(hour, minute, second) } }
    /// MMDD (DE13).
    public var mmdd: String { Digits.text { $0.two(month, day) } }
    /// YYMM (expiry dates).
    public var yymm: String { Digits.text { $0.two(year, month) } }
    /// YYYY-MM-DD.
    public var isoDate: String { Digits.text { $0.date(self) } }
    /// `YYYY-MM-DDTHH:MM:SSZ`, as Foundation's `Date.ISO8601Format()` writes it.
    public var iso8601: String { Digits.text { $0.date(self); $0.put("T"); $0.time(self); $0.put("Z") } }
    /// YYYY-MM-DD hh:mm:ss.
    public var isoDateTime: String { Digits.text { $0.date(self); $0.put(" "); $0.time(self) } }
}

/// Date and time text written digit by digit into one buffer (it had been a `+` of two-digit
/// strings, an allocation each, several times a sale).
private struct Digits {
    private var bytes: [UInt8] = []

    static func text(_ write: (inout Digits) -> Void) -> String {
        var d = Digits()
        d.bytes.reserveCapacity(20)
        write(&d)
        return String(decoding: d.bytes, as: UTF8.self)
    }

    /// Each number's last two digits.
    mutating func two(_ numbers: Int...) {
        for n in numbers {
            bytes.append(0x30 + UInt8(n % 100 / 10))
            bytes.append(0x30 + UInt8(n % 10))
        }
    }

    mutating func put(_ c: Unicode.Scalar) { bytes.append(UInt8(ascii: c)) }

    /// YYYY-MM-DD (a year outside 1000–9999 with the digits it has).
    mutating func date(_ t: UTCTime) {
        if (1000...9999).contains(t.year) { two(t.year / 100, t.year) } else { bytes += Array(String(t.year).utf8) }
        put("-"); two(t.month); put("-"); two(t.day)
    }

    /// hh:mm:ss.
    mutating func time(_ t: UTCTime) {
        two(t.hour); put(":"); two(t.minute); put(":"); two(t.second)
    }
}
