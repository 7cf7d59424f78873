import CloudWire
import Crypto
import EMV
import Foundation
import IssuerHost
import PaymentCore
import PaymentCrypto
import Server
import SQLKit
import Terminal
import Testing
import TokenService
import Wallet

/// A step of a flow test that did not go as it must.
struct CloudFlowError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

@Suite("A phone provisioned by the cloud taps a POS; the cloud checks", .serialized)
struct PhoneTapTests {
    static let shop = MerchantTerminal(terminalID: "TERM0001", merchantID: "MERCHANT0000001", acquirerID: "01020000",
                                       merchantNameLocation: "CLOUDTAP TEST SHOP       SHANGHAI     CN")

    /// A phone with the test card enrolled (OTP), its token profile and three keys.
    static func provisionedPhone(_ c: Cloud) async throws -> (Wallet, TokenRecord) {
        let wallet = try Wallet(store: MemorySecureStore(), deviceID: "phone-1")
        guard case .codeSent(let enrollment, _) = try await c.tsp.enroll(
            EnrollmentRequest(requestor: "BANKAPP0001", pan: c.card, expiry: "2912", cvn2: try c.cvn2, holderName: "ZHANG SAN", deviceID: "phone-1",
                              devicePublicKey: wallet.devicePublicKey), issuer: IssuerHostEligibility(host: c.issuer)),
            case .verified(let token) = try await c.tsp.verifyOTP(enrollmentID: enrollment, code: try await c.lastCode()) else {
            throw CloudFlowError("enrollment failed")
        }
        try wallet.addCloudCard(id: "bank-a", sealedProfile: try await c.tsp.sealedTokenProfile(tokenID: token.id))
        let keys = try await c.tsp.issueKeys(tokenID: token.id, count: 3)
        try wallet.addKeys(cardID: "bank-a", keys.map { Wallet.SealedKey(index: $0.index, sealedKey: $0.sealedKey, limits: $0.limits) })
        return (wallet, token)
    }

    @Test("provision, tap, the cryptogram checked and de-tokenized; the replayed answer caught by the ATC; keys replenished; keys of a lost answer withdrawn")
    func tapReplayReplenish() async throws {
        try await CloudFlowTests.each("phone-tap") { (c: Cloud) async throws -> Void in
            let (wallet, token) = try await Self.provisionedPhone(c)

            // The phone is offline; the cashier keys 38.50.
            var kernel = ContactlessKernel(configuration: TerminalConfiguration(), transaction: TransactionInput(amount: 3850))
            guard case .onlineRequest(let online) = await Reader.tap(&kernel, over: InProcessTransport { [card = SharedCardApplet(wallet.applet())] in card.process($0) }).0 else {
                Issue.record("no online request"); return
            }
            let auth = OnlineAuthorization.request(for: online, amount: try Amount("38.50", currency: .cny), stan: 1, at: Date(), terminal: Self.shop, pinBlock: nil)
            #expect(auth.posEntryMode == "072")
            #expect(auth.pan.digits.hasPrefix("623456"))
            #expect(auth.track2?.hasPrefix(auth.pan.digits + "=2") == true)

            // What the switch does with DE2 and DE55: the token service checks and de-tokenizes.
            var values: [UInt32: [UInt8]] = [:]
            for tlv in auth.iccData ?? [] { values[tlv.tag.rawValue] = tlv.value }
            let check = CryptogramCheck(token: auth.pan, data: try TransactionData(values: values), arqc: values[0x9F26] ?? [])
            guard case .valid(let pan, let tokenID, _) = try await c.tsp.validate(check) else { Issue.record("the cloud refused the tap"); return }
            #expect(pan == c.card)
            #expect(tokenID == token.id)
            // The same GPO answer replayed: the ATC was seen.
            guard case .declined = try await c.tsp.validate(check) else { Issue.record("replay accepted"); return }

            // Online again: the phone's signed request with its log tops the pool up to five.
            let request = try wallet.replenishmentRequest(cardID: "bank-a", tokenID: token.id)
            #expect(request.log.map(\.atc) == [1])
            guard case .issued(let fresh, _) = try await c.tsp.replenish(request) else { Issue.record("replenishment refused"); return }
            try wallet.replenished(cardID: "bank-a", request: request, keys: fresh.map { Wallet.SealedKey(index: $0.index, sealedKey: $0.sealedKey, limits: $0.limits) })
            #expect(wallet.keysLeft(cardID: "bank-a") == 5)
            // The next request carries only what came after: here, nothing — and the cloud agrees.
            let next = try wallet.replenishmentRequest(cardID: "bank-a", tokenID: token.id)
            #expect(next.log.isEmpty)
            guard case .issued(let none, _) = try await c.tsp.replenish(next) else { Issue.record("second replenishment refused"); return }
            #expect(none.isEmpty)

            // An answer lost on the way: the cloud issued three keys the phone never got. The
            // phone's next request says the last key it received; the three are withdrawn.
            let lost = try await c.tsp.issueKeys(tokenID: token.id, count: 3)
            let after = try wallet.replenishmentRequest(cardID: "bank-a", tokenID: token.id)
            #expect(after.receivedKeysThrough == fresh.map(\.index.sequence).max())
            guard case .issued = try await c.tsp.replenish(after) else { Issue.record("replenishment after a lost answer refused"); return }
            for key in lost {
                let state = try await c.db.sql.raw("""
                    SELECT state FROM tsp_luks WHERE token_id = \(bind: token.id) AND sequence = \(bind: Int(key.index.sequence))
                    """).first()?.decode(column: "state", as: String.self)
                #expect(state == "withdrawn")
            }
        }
    }

    @Test("a tap the cloud validates only after the phone replenished is sent again next time, not held against the phone")
    func tapSeenAfterReplenishment() async throws {
        try await CloudFlowTests.each("phone-race") { (c: Cloud) async throws -> Void in
            let (wallet, token) = try await Self.provisionedPhone(c)
            func tap(_ amount: Int64) async throws -> CryptogramCheck {
                var kernel = ContactlessKernel(configuration: TerminalConfiguration(), transaction: TransactionInput(amount: amount))
                guard case .onlineRequest(let online) = await Reader.tap(&kernel, over: InProcessTransport { [card = SharedCardApplet(wallet.applet())] in card.process($0) }).0 else {
                    throw CloudFlowError("no online request")
                }
                let auth = OnlineAuthorization.request(for: online, amount: Amount(minorUnits: amount, currency: .cny), stan: 1, at: Date(), terminal: Self.shop, pinBlock: nil)
                var values: [UInt32: [UInt8]] = [:]
                for tlv in auth.iccData ?? [] { values[tlv.tag.rawValue] = tlv.value }
                return CryptogramCheck(token: auth.pan, data: try TransactionData(values: values), arqc: values[0x9F26] ?? [])
            }
            func replenish() async throws -> [UInt16] {
                let request = try wallet.replenishmentRequest(cardID: "bank-a", tokenID: token.id)
                guard case .issued(let fresh, let unseen) = try await c.tsp.replenish(request) else { throw CloudFlowError("replenishment refused") }
                try wallet.replenished(cardID: "bank-a", request: request,
                                       keys: fresh.map { Wallet.SealedKey(index: $0.index, sealedKey: $0.sealedKey, limits: $0.limits) }, unseen: unseen)
                return request.log.map(\.atc).sorted()
            }

            // ATC 1 reaches the cloud at once; ATC 2's POS is still sending when the phone,
            // online again, replenishes with both in its log.
            guard case .valid = try await c.tsp.validate(try await tap(3850)) else { Issue.record("the cloud refused tap 1"); return }
            let late = try await tap(1200)
            #expect(try await replenish() == [1, 2])
            // The POS's request arrives: the cloud validates ATC 2 after the replenishment.
            guard case .valid = try await c.tsp.validate(late) else { Issue.record("the cloud refused tap 2"); return }
            // The phone's next log carries ATC 2 again (the cloud had said it had not seen it),
            // so the cloud can account for it; then neither side owes the other anything.
            #expect(try await replenish() == [2])
            #expect(try await replenish() == [])
            // A tap the cloud never sees (its POS never sent it) is carried for a day, then dropped.
            _ = try await tap(500)
            #expect(try await replenish() == [3])
            #expect(try wallet.replenishmentRequest(cardID: "bank-a", tokenID: token.id).log.map(\.atc) == [3])
            #expect(try wallet.replenishmentRequest(cardID: "bank-a", tokenID: token.id, now: Date() + Wallet.unseenTapLifetime + 60).log.isEmpty)
        }
    }
}
