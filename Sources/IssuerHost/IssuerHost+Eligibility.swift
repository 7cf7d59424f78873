import Foundation
import PaymentCore
import PaymentCrypto
import SQLKit
import Storage

/// What the issuer says when a token service asks whether a card may be tokenized.
public struct CardEligibility: Sendable, Hashable {
    public enum Verdict: Sendable, Hashable {
        case eligible
        case ineligible(String)
    }
    public var verdict: Verdict
    public var bank: String
    /// The mobile number on file, for the one-time code.
    public var mobile: String
    public var deviceLimit: Int
}

extension IssuerHost {
    /// Eligibility for tokenization: the card exists, is active, unexpired, its product allows
    /// HCE, the expiry matches, and the CVN2 is right (checked in the key component when the
    /// bank has a CVK named `<bank>/cvk`).
    public func eligibility(pan: PAN, expiry: String, cvn2: String?, now: Date = Date()) async throws -> CardEligibility {
        let hash = try lookupHash(pan)
        guard let card = try await db.sql.raw("""
            SELECT bank_id, status, expiry, mobile, hce_allowed, device_limit FROM issuer_cards WHERE pan_hash = \(bind: hash)
            """).first() else {
            return CardEligibility(verdict: .ineligible("no such card"), bank: "", mobile: "", deviceLimit: 0)
        }
        let bank = try card.decode(column: "bank_id", as: String.self)
        var result = CardEligibility(verdict: .eligible, bank: bank, mobile: try card.decode(column: "mobile", as: String.self),
                                     deviceLimit: try card.decode(column: "device_limit", as: Int.self))
        let cardExpiry = try card.decode(column: "expiry", as: String.self)
        let month = UTCTime(now).yymm
        if try card.decode(column: "status", as: String.self) != CardStatus.active.rawValue {
            result.verdict = .ineligible("card is not active")
        } else if cardExpiry != expiry {
            result.verdict = .ineligible("expiry does not match")
        } else if cardExpiry < month {
            result.verdict = .ineligible("card expired")
        } else if try card.decode(column: "hce_allowed", as: Int.self) == 0 {
            result.verdict = .ineligible("product not allowed on phones")
        } else if let cvn2, keys.keyNames().contains("\(bank)/cvk") {
            let ok = try keys.verifyCVV(cvk: "\(bank)/cvk", pan: pan, expiry: expiry, serviceCode: "000", cvv: cvn2)
            if !ok { result.verdict = .ineligible("CVN2 does not match") }
        }
        return result
    }
}
