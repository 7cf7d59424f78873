import EMV
import Foundation
import ISO8583
import PaymentCore
import PaymentCrypto
import Terminal
import Testing
import Wallet

/// An acquirer host that answers as told and records what it got.
actor ScriptedHost: AuthorizationHost {
    enum Behaviour { case approve, decline(String), silent, wrongSTAN }
    var behaviour: Behaviour
    var reversalsFail = false
    /// DE39 of the 0410 (a host that could not record the reversal answers 96).
    var reversalCode = "00"
    private(set) var received: [Message] = []

    init(_ behaviour: Behaviour) { self.behaviour = behaviour }
    func set(_ b: Behaviour) { behaviour = b }
    func failReversals(_ fail: Bool) { reversalsFail = fail }
    func answerReversals(_ code: String) { reversalCode = code }

    struct Timeout: Error {}

    func send(_ request: Message) async throws -> Message {
        received.append(request)
        if request.mti == "0400" || request.mti == "0401" {
            if reversalsFail { throw Timeout() }
            var answer = request
            answer.mti = "0410"
            answer[39] = reversalCode
            return answer
        }
        switch behaviour {
        case .silent: throw Timeout()
        case .approve:
            return try AuthorizationResponse(responding: request, responseCode: "00", authorizationCode: "A1B2C3",
                                             iccData: [TLV(0x91, [1, 2, 3, 4, 5, 6, 7, 8, 0x30, 0x30])]).message
        case .decline(let code): return try AuthorizationResponse(responding: request, responseCode: code).message
        case .wrongSTAN:
            var answer = try AuthorizationResponse(responding: request, responseCode: "00", authorizationCode: "A1B2C3").message
            answer[11] = "999999"
            return answer
        }
    }
}

@Suite("The POS: PIN, online authorization, answer checks, reversal, receipt", .serialized)
struct PointOfSaleTests {
    static let tpk = KeyTools.oddParity([UInt8](repeating: 0x7A, count: 16))
    static let shop = MerchantTerminal(terminalID: "TERM0001", merchantID: "MERCHANT0000001", acquirerID: "01020000",
                                       merchantNameLocation: "CLOUDTAP TEST SHOP       SHANGHAI     CN")

    func pos(_ host: ScriptedHost, pin: String? = "135790") -> PointOfSale {
        PointOfSale(configuration: TerminalConfiguration(), merchant: Self.shop,
                    pinPad: SoftwarePINPad(terminalPINKey: Self.tpk, keypad: { pin }), host: host)
    }

    @Test("38.50 approved without PIN; the receipt shows the token masked")
    func approved() async throws {
        let phone = try Phone()
        let host = ScriptedHost(.approve)
        let result = await pos(host).sale(amount: try Amount("38.50", currency: .cny), over: SharedCardApplet(phone.wallet.applet()).transport)
        #expect(result.outcome == .approved(authorizationCode: "A1B2C3"))
        #expect(result.request?.posEntryMode == "072")
        #expect(result.request?.pinBlock == nil)
        let receipt = try #require(result.receipt)
        #expect(receipt.contains("623456******0016"))
        #expect(!receipt.contains(Phone.token.digits))
        #expect(receipt.contains("38.50 CNY"))
        #expect(receipt.contains("NO SIGNATURE REQUIRED"))
    }

    @Test("1,288.00: the card asks for PIN; the PIN pad's block travels in DE52 under the terminal key")
    func pin() async throws {
        let phone = try Phone()
        let host = ScriptedHost(.approve)
        let result = await pos(host).sale(amount: try Amount("1288.00", currency: .cny), over: SharedCardApplet(phone.wallet.applet()).transport)
        #expect(result.outcome == .approved(authorizationCode: "A1B2C3"))
        let request = try #require(result.request)
        #expect(request.posEntryMode == "071")
        #expect(request.pinCaptureCode == "12")
        let block = try #require(request.pinBlock)
        #expect(try ISO9564.decipher(EncryptedPINBlock(format: .iso0, bytes: block), key: Self.tpk, pan: request.pan).decodePIN(pan: request.pan) == "135790")
        #expect(result.receipt?.contains("PIN VERIFIED ONLINE") == true)
        // Cancelling the PIN ends the sale before anything is sent.
        let cancelled = await pos(ScriptedHost(.approve), pin: nil).sale(amount: try Amount("1288.00", currency: .cny), over: SharedCardApplet(phone.wallet.applet()).transport)
        #expect(cancelled.outcome == .failed(reason: "PIN entry cancelled"))
        #expect(cancelled.request == nil)
    }

    @Test("a decline is a decline; silence and a wrong answer are reversed; an undelivered or refused reversal waits")
    func declineAndReversal() async throws {
        let phone = try Phone(keys: 5)
        let host = ScriptedHost(.decline("51"))
        let terminal = pos(host)
        let amount = try Amount("38.50", currency: .cny)
        #expect(await terminal.sale(amount: amount, over: SharedCardApplet(phone.wallet.applet()).transport).outcome == .declined(responseCode: "51"))

        await host.set(.silent)
        let silent = await terminal.sale(amount: amount, over: SharedCardApplet(phone.wallet.applet()).transport)
        guard case .noAnswer = silent.outcome else { Issue.record("\(silent.outcome)"); return }
        let reversal = try #require(silent.reversal)
        #expect(reversal.message.mti == "0400")
        #expect(reversal.message[90]?.hasPrefix("0200" + (silent.request?.stan ?? "")) == true)
        #expect(await host.received.last?.mti == "0400")

        await host.set(.wrongSTAN)
        let wrong = await terminal.sale(amount: amount, over: SharedCardApplet(phone.wallet.applet()).transport)
        #expect(wrong.outcome == .noAnswer(reason: "STAN 999999 does not match \(wrong.request?.stan ?? "")"))
        #expect(wrong.reversal != nil)

        await host.set(.silent)
        await host.failReversals(true)
        _ = await terminal.sale(amount: amount, over: SharedCardApplet(phone.wallet.applet()).transport)
        #expect(await terminal.pendingReversals.count == 1)
        await host.failReversals(false)
        // Answered, but not taken (96): kept; taken (00), or unknown to the host (25): done.
        await host.answerReversals("96")
        #expect(await terminal.retryReversals() == 1)
        await host.answerReversals("25")
        #expect(await terminal.retryReversals() == 0)
        await host.answerReversals("96")
        _ = await terminal.sale(amount: amount, over: SharedCardApplet(phone.wallet.applet()).transport)
        #expect(await terminal.pendingReversals.count == 1)
        await host.answerReversals("00")
        #expect(await terminal.retryReversals() == 0)
        #expect(await host.received.last?.mti == "0401")  // sent again as a repeat
    }
}
