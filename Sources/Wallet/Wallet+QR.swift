import EMV
import Foundation
import PaymentCore
import QR

extension Wallet {
    /// A consumer-presented code (EMV CPM, `CPV01`) for a cloud card, for a POS to scan: the
    /// application template carries the AID, label, the token's track 2 equivalent and PSN, and
    /// in its transparent template (63) an ARQC from a limited-use key with the data it covers —
    /// amount zero (the code is made before the amount is known; the cloud counts the amount
    /// the POS asks for against the key's limit), an unpredictable number made here, today's
    /// date and the time (9F21), by which a POS refuses a stale code. The tap's ATC, key use and
    /// log entry are stored before the code is returned, so a code used twice meets the
    /// cloud's ATC check.
    public func consumerPresentedCode(cardID: String, now: Date = Date()) throws -> ConsumerPresentedCode {
        try credential(cardID: cardID, amount: 0, now: now)
    }

    /// What the phone sends the cloud to pay a merchant-presented code it scanned: the same
    /// data a consumer-presented code carries, with the amount inside the cryptogram (the
    /// phone knows it: from the code, or keyed by the payer). Stored like a tap before it is
    /// returned.
    public func merchantPaymentCredential(cardID: String, amount: Amount, now: Date = Date()) throws -> ConsumerPresentedCode {
        // Zero is a consumer-presented code's "amount not known yet", which the cloud lets the
        // merchant fill in: a payment credential always names its amount.
        guard amount.minorUnits > 0 else { throw WalletError.invalidAmount("a payment's amount must be above zero") }
        return try credential(cardID: cardID, amount: amount.minorUnits, now: now)
    }

    func credential(cardID: String, amount: Int64, now: Date) throws -> ConsumerPresentedCode {
        guard let card = card(cardID) else { throw WalletError.unknownCard(cardID) }
        // 9F02 is n12: an amount that does not fit is refused, not written as zero (which
        // would read as an amount left to the merchant).
        guard amount >= 0, let amountBCD = try? BCD.pack(String(amount), byteCount: 6) else {
            throw WalletError.invalidAmount("\(amount) does not fit Amount, Authorised (9F02, 12 digits)")
        }
        let utc = UTCTime(now)
        func bcd(_ n: Int) -> UInt8 { UInt8((n / 10) << 4 | n % 10) }
        var unpredictable = [UInt8](repeating: 0, count: 4)
        var rng = SystemRandomNumberGenerator()
        for i in 0..<4 { unpredictable[i] = UInt8.random(in: 0...255, using: &rng) }
        let terminal: [UInt32: [UInt8]] = [
            0x9F66: [0x20, 0x80, 0x00, 0x00], 0x9F02: amountBCD, 0x9F03: [0, 0, 0, 0, 0, 0], 0x9F1A: [0x01, 0x56],
            0x95: [0, 0, 0, 0, 0], 0x5F2A: [0x01, 0x56], 0x9A: [bcd(utc.year % 100), bcd(utc.month), bcd(utc.day)], 0x9C: [0x00],
            0x9F37: unpredictable,
        ]
        let answer = try self.answer(cardID: cardID, terminal: terminal, now: now)
        guard answer.cid == 0x80 else { throw WalletError.invalidProfile("no usable limited-use key: replenish before showing a code") }
        let transparent: [TLV] = [
            TLV(0x9F26, answer.cryptogram), TLV(0x9F27, [answer.cid]), TLV(0x9F10, answer.iad),
            TLV(0x9F36, [UInt8(answer.atc >> 8), UInt8(answer.atc & 0xFF)]), TLV(0x82, Self.aip), TLV(0x9F37, unpredictable),
            TLV(0x9F02, terminal[0x9F02]!), TLV(0x9F03, terminal[0x9F03]!), TLV(0x9F1A, terminal[0x9F1A]!), TLV(0x95, terminal[0x95]!),
            TLV(0x5F2A, terminal[0x5F2A]!), TLV(0x9A, terminal[0x9A]!), TLV(0x9C, terminal[0x9C]!),
            TLV(0x9F21, [bcd(utc.hour), bcd(utc.minute), bcd(utc.second)]),
        ]
        let application: [TLV] = [
            TLV(0x4F, card.profile.aid), TLV(0x50, Array(card.profile.label.utf8)), TLV(0x57, CardApplet.track2(card.profile)),
            TLV(0x5F34, (try? BCD.pack(card.profile.psn, byteCount: 1)) ?? [0x01]),
            TLV(ConsumerPresentedCode.applicationTransparentTemplate, children: transparent),
        ]
        return ConsumerPresentedCode(applications: [application])
    }
}
