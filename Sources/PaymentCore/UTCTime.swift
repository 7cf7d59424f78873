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

    static func two(_ n: Int) -> String { n < 10 ? "0\(n)" : String(n % 100) }

    /// MMDDhhmmss (DE7).
    public var mmddhhmmss: String { mmdd + hhmmss }
    /// hhmmss (DE12).
    public var hhmmss: String { Self.two(hour) + Self.two(minute) + Self.two(second) }
    /// MMDD (DE13).
    public var mmdd: String { Self.two(month) + Self.two(day) }
    /// YYMM (expiry dates).
    public var yymm: String { Self.two(year % 100) + Self.two(month) }
    /// YYYY-MM-DD.
    public var isoDate: String { String(year) + "-" + Self.two(month) + "-" + Self.two(day) }
    /// YYYY-MM-DD hh:mm:ss.
    /// `YYYY-MM-DDTHH:MM:SSZ`, as Foundation's `Date.ISO8601Format()` writes it.
    public var iso8601: String { isoDate + "T" + Self.two(hour) + ":" + Self.two(minute) + ":" + Self.two(second) + "Z" }
    public var isoDateTime: String { isoDate + " " + Self.two(hour) + ":" + Self.two(minute) + ":" + Self.two(second) }
}
