import EMV
import Foundation
import ISO8583
import PaymentCore
import PaymentCrypto

/// Who the terminal is, as the authorization names it.
public struct MerchantTerminal: Sendable, Hashable {
    /// DE41, 8 characters.
    public var terminalID: String
    /// DE42, 15 characters.
    public var merchantID: String
    /// DE32, the acquiring institution.
    public var acquirerID: String
    /// DE43, 40 characters: name, city, country.
    public var merchantNameLocation: String
    /// DE18, the merchant category code.
    public var merchantType: String

    /// `merchantNameLocation` is cut or space-padded to DE43's 40 characters.
    public init(terminalID: String, merchantID: String, acquirerID: String, merchantNameLocation: String, merchantType: String = "5411") {
        self.terminalID = terminalID
        self.merchantID = merchantID
        self.acquirerID = acquirerID
        let name = String(merchantNameLocation.prefix(40))
        self.merchantNameLocation = name + String(repeating: " ", count: 40 - name.count)
        self.merchantType = merchantType
    }
}

/// Builds the online authorization (0200) for a tap: the token in DE2 and DE35, DE22 071 with
/// PIN or 072 without, the PIN block in DE52, and DE55 with the tags DESIGN §3 lists, in that
/// order, taken from the card and the terminal.
public enum OnlineAuthorization {
    /// DE55 tags, in order.
    public static let iccTags: [UInt32] = [
        0x9F26, 0x9F27, 0x9F10, 0x9F37, 0x9F36, 0x95, 0x9A, 0x9C, 0x9F02, 0x5F2A, 0x82, 0x9F1A, 0x9F03, 0x9F33, 0x9F34, 0x9F35,
        0x9F1E, 0x84, 0x9F09, 0x9F41,
    ]

    public static func request(
        for online: OnlineRequest, amount: Amount, stan: UInt32, at date: Date, terminal: MerchantTerminal, pinBlock: EncryptedPINBlock?
    ) -> AuthorizationRequest {
        var data = online.data
        // CVM results: enciphered PIN online, or no CVM (the card's CDCVM shows in its IAD), condition 03.
        data[0x9F34] = pinBlock != nil ? [0x02, 0x03, 0x00] : [0x1F, 0x03, 0x02]
        data[0x9F41] = ContactlessKernel.bcd(Int64(stan), bytes: 4)
        let icc = iccTags.compactMap { tag in data[tag].map { TLV(Tag(tag), $0) } }
        let stanDigits = String(stan % 1_000_000)
        let stanText = String(repeating: "0", count: 6 - stanDigits.count) + stanDigits
        let clock = Self.clock(date)
        return AuthorizationRequest(
            pan: online.pan, amount: amount, transmissionDateTime: clock.mmddhhmmss, stan: stanText, localTime: clock.hhmmss, localDate: clock.mmdd,
            expiry: online.expiry, posEntryMode: pinBlock != nil ? "071" : "072", cardSequenceNumber: "0" + online.psn.suffix(2),
            posConditionCode: "00", pinCaptureCode: pinBlock != nil ? "12" : nil, acquirerID: terminal.acquirerID, track2: track2(online.track2),
            retrievalReference: clock.mmdd + clock.hhmmss + String(stanText.suffix(2)), terminalID: terminal.terminalID, merchantID: terminal.merchantID,
            merchantNameLocation: terminal.merchantNameLocation, merchantType: terminal.merchantType, pinBlock: pinBlock?.bytes,
            securityControl: pinBlock != nil ? "2600000000000000" : nil, iccData: icc)
    }

    /// Track 2 equivalent data as DE35 characters: the separator D becomes '=', padding F goes.
    static func track2(_ bytes: [UInt8]) -> String {
        // Nibble by nibble: digits as they are, the separator D as "=", the F padding dropped.
        let digits: [UInt8] = Array("0123456789ABC=EF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        while out.last == UInt8(ascii: "F") { out.removeLast() }
        return String(decoding: out, as: UTF8.self)
    }

    static func clock(_ date: Date) -> (mmddhhmmss: String, hhmmss: String, mmdd: String) {
        let utc = UTCTime(date)
        return (utc.mmddhhmmss, utc.hhmmss, utc.mmdd)
    }
}
