import Foundation
import TestSupport
import Testing
@testable import PaymentCore

@Suite("PaymentCore")
struct PaymentCoreTests {
    @Test("hex parses upper, lower and spaced text, and names bad characters")
    func hex() throws {
        #expect(try [UInt8](hex: "0a Ff 10") == [0x0A, 0xFF, 0x10])
        #expect([UInt8]([0xDE, 0xAD]).hexString == "DEAD")
        #expect(throws: EncodingError.oddHexLength(3)) { try [UInt8](hex: "ABC") }
        #expect(throws: EncodingError.invalidHexCharacter("G", offset: 2)) { try [UInt8](hex: "ABGD") }
    }

    @Test("BCD packs n and cn formats and rejects non-digits")
    func bcd() throws {
        #expect(try BCD.pack("3850", byteCount: 6).hexString == "000000003850")
        #expect(try BCD.pack("123", padNibble: 0xF, leftAligned: true).hexString == "123F")
        #expect(try BCD.unpack([0x62, 0x10, 0x3F], allowTrailingF: true) == "62103")
        #expect(throws: EncodingError.self) { try BCD.pack("12a4") }
        #expect(throws: EncodingError.self) { try BCD.unpack([0x1A]) }
        #expect(throws: EncodingError.self) { try BCD.pack("1234567", byteCount: 3) }
    }

    @Test("Luhn check digits", arguments: [("79927398713", true), ("79927398710", false), ("6210220110002707354", true), ("4761739001010010", true)])
    func luhn(number: String, valid: Bool) {
        #expect(Luhn.isValid(number) == valid)
    }

    @Test("a PAN is Luhn-checked and never prints in full")
    func pan() throws {
        let pan = try PAN("6210 2201 1000 2707 354")
        #expect(pan.digits == "6210220110002707354")
        #expect(pan.masked == "621022*********7354")
        #expect("\(pan)" == "621022*********7354")
        #expect(String(reflecting: pan) == "PAN(621022*********7354)")
        #expect(pan.lastFour == "7354")
        #expect(throws: PAN.Error.badCheckDigit(expected: "4")) { try PAN("6210220110002707355") }
        #expect(throws: PAN.Error.badLength(5)) { try PAN("12345") }
        #expect(throws: PAN.Error.notDigits(offset: 3)) { try PAN("621x220110002707354") }
        #expect(maskCardNumbers(in: "card 6210220110002707354 at 12:00") == "card 621022*********7354 at 12:00")
        // Runs of 12 and 19 digits are masked, 11 and 20 are not; text around them and
        // non-ASCII text are kept; a run at either end is found.
        #expect(maskCardNumbers(in: "123456789012") == "123456**9012")
        #expect(maskCardNumbers(in: "12345678901") == "12345678901")
        #expect(maskCardNumbers(in: "1234567890123456789=2612") == "123456*********6789=2612")
        #expect(maskCardNumbers(in: "12345678901234567890") == "12345678901234567890")
        #expect(maskCardNumbers(in: "卡号6210220110002707354。") == "卡号621022*********7354。")
        #expect(maskCardNumbers(in: "") == "")
    }

    @Test("amounts are exact minor units with their currency")
    func amount() throws {
        let a = try Amount("1,288.00", currency: .cny)
        #expect(a.minorUnits == 128_800)
        #expect(a.description == "1288.00 CNY")
        #expect(a.n12 == "000000128800")
        #expect(try Amount("38.5", currency: .cny).minorUnits == 3850)
        #expect(try Amount("500", currency: .jpy).description == "500 JPY")
        #expect(throws: Amount.Error.tooManyDecimals("1.234", allowed: 2)) { try Amount("1.234", currency: .cny) }
        #expect(throws: Amount.Error.self) { try Amount("12a", currency: .cny) }
        #expect(throws: Amount.Error.self) { try Amount(".5", currency: .cny) }
        #expect(throws: Amount.Error.self) { try a.adding(Amount(minorUnits: 1, currency: .usd)) }
        #expect(Currency(code: "156") == .cny)
        #expect(Currency(code: "cny")?.numericString == "156")
        #expect(Amount(minorUnits: -5, currency: .cny).description == "-0.05 CNY")
    }
}

@Suite("Checksums")
struct ChecksumTests {
    @Test("CRC-16/CCITT-FALSE check value and the Pix MPM example")
    func crc() {
        #expect(CRC16.ccittFalse(Array("123456789".utf8)) == 0x29B1)
        let pix = "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***6304"
        #expect(CRC16.ccittFalse(Array(pix.utf8)) == 0x1D3D)
    }
}

@Suite("UTC calendar time")
struct UTCTimeTests {
    @Test("agrees with Foundation's Gregorian calendar and ISO 8601 text for 20,000 moments from 1901 to 2199, leap days and the epoch included")
    func agreesWithCalendar() async {
        await onOwnThread {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            var rng = SeededRandomNumberGenerator(seed: 7)
            let fixed: [TimeInterval] = [0, -1, 86_399, 86_400, 951_782_400 /* 2000-02-29 */, 4_107_542_399 /* 2100-02-28 23:59:59 */, -2_177_452_800]
            for t in fixed + (0..<20_000).map({ _ in TimeInterval(Int64.random(in: -2_147_483_648...7_258_118_399, using: &rng)) }) {
                let date = Date(timeIntervalSince1970: t)
                let p = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
                let u = UTCTime(date)
                let ours: [Int] = [u.year, u.month, u.day, u.hour, u.minute, u.second]
                let foundation: [Int] = [p.year!, p.month!, p.day!, p.hour!, p.minute!, p.second!]
                #expect(ours == foundation, "\(t)")
                #expect(u.iso8601 == date.ISO8601Format(), "\(t)")
            }
            let moment = UTCTime(Date(timeIntervalSince1970: 1_795_651_200 + 3_723))  // 2026-11-26 01:02:03
            #expect(moment.mmddhhmmss == "1126010203")
            #expect(moment.yymm == "2611")
            #expect(moment.isoDateTime == "2026-11-26 01:02:03")
            #expect(moment.isoDate == "2026-11-26")
            #expect(moment.hhmmss == "010203")
            #expect(moment.mmdd == "1126")
            #expect(moment.iso8601 == "2026-11-26T01:02:03Z")
            #expect(UTCTime(Date(timeIntervalSince1970: -62_135_596_800)).isoDate == "1-01-01")  // year 1: its digits
        }
    }
}
