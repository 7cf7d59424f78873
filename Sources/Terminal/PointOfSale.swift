import EMV
import Foundation
import ISO8583
import ISO8583Link
import PaymentCore
import PaymentCrypto
import QR

/// Where the POS sends its authorizations: the acquirer's switch over an ISO 8583 link.
public protocol AuthorizationHost: Sendable {
    /// Sends a request and returns the matching response; throws when none comes in time.
    func send(_ request: Message) async throws -> Message
}

extension ISO8583Client: AuthorizationHost {}

/// How a sale ended.
public enum SaleOutcome: Sendable, Hashable {
    case approved(authorizationCode: String)
    /// The issuer or the network declined, with the ISO 8583 response code.
    case declined(responseCode: String)
    /// The kernel declined without going online (the card's AAC, an expired card).
    case declinedOffline(reason: String)
    case tryAnotherInterface(reason: String)
    /// No usable answer: the authorization was reversed (or queued for reversal).
    case noAnswer(reason: String)
    /// The tap did not complete, or the customer cancelled the PIN.
    case failed(reason: String)
}

/// Everything about one sale: what crossed the wire and the receipt.
public struct SaleResult: Sendable {
    public var outcome: SaleOutcome
    public var trace: [APDUExchange]
    public var request: AuthorizationRequest?
    public var response: AuthorizationResponse?
    public var reversal: ReversalRequest?
    /// What the receipt shows, kept for ``receipt``: it is printed when asked for, not on every
    /// sale.
    var printed: (merchant: MerchantTerminal, online: OnlineRequest, date: Date)?

    /// The receipt of a completed sale (approved or declined), or nil.
    public var receipt: String? {
        guard let printed, let request, let response else { return nil }
        return Receipt.text(merchant: printed.merchant, request: request, online: printed.online, response: response, date: printed.date)
    }
}

/// A contactless POS: the kernel for the tap, the PIN pad when the card asks for online PIN,
/// the online authorization, checks of the answer, a reversal when the answer is missing or
/// unusable, and the receipt.
public actor PointOfSale {
    public let configuration: TerminalConfiguration
    public let merchant: MerchantTerminal
    let pinPad: (any PINPad)?
    let host: any AuthorizationHost
    var stan: UInt32
    /// Reversals that could not be delivered yet; sent again by ``retryReversals()``.
    public private(set) var pendingReversals: [ReversalRequest] = []

    public init(configuration: TerminalConfiguration, merchant: MerchantTerminal, pinPad: (any PINPad)?, host: any AuthorizationHost, firstSTAN: UInt32 = 1) {
        self.configuration = configuration
        self.merchant = merchant
        self.pinPad = pinPad
        self.host = host
        self.stan = firstSTAN
    }

    func nextSTAN() -> UInt32 {
        defer { stan = stan % 999_999 + 1 }
        return stan
    }

    /// One sale: tap, PIN if asked, authorize, check, receipt.
    public func sale(amount: Amount, over transport: any CardTransport, date: Date = Date()) async -> SaleResult {
        var kernel = ContactlessKernel(configuration: configuration, transaction: TransactionInput(amount: amount.minorUnits, date: date))
        let (outcome, trace) = await Reader.tap(&kernel, over: transport)
        var result = SaleResult(outcome: .failed(reason: ""), trace: trace)
        let online: OnlineRequest
        switch outcome {
        case .onlineRequest(let r): online = r
        case .declined(let reason): result.outcome = .declinedOffline(reason: reason); return result
        case .tryAnotherInterface(let reason): result.outcome = .tryAnotherInterface(reason: reason); return result
        case .endApplication(let reason): result.outcome = .failed(reason: reason); return result
        }
        var pinBlock: EncryptedPINBlock?
        if online.onlinePINRequired {
            guard let pinPad else { result.outcome = .failed(reason: "the card asks for online PIN and there is no PIN pad"); return result }
            do {
                guard let block = try await pinPad.capturePIN(for: online.pan) else { result.outcome = .failed(reason: "PIN entry cancelled"); return result }
                pinBlock = block
            } catch {
                result.outcome = .failed(reason: "PIN pad: \(error)")
                return result
            }
        }
        return await authorize(online, amount: amount, date: date, pinBlock: pinBlock, entryMode: nil, result: result)
    }

    /// A sale paid with a consumer-presented QR code the POS scanned: its card data and
    /// cryptogram go online as a tap's would, with DE22 `032` (bar code / QR, no PIN). A code
    /// older than `maximumAge` by its own clock (9A, 9F21) is refused without going online; the
    /// cloud refuses a code used before by its ATC.
    public func sale(amount: Amount, presented code: ConsumerPresentedCode, date: Date = Date(), maximumAge: TimeInterval = 120) async -> SaleResult {
        var result = SaleResult(outcome: .failed(reason: ""), trace: [])
        let online: OnlineRequest
        do { online = try OnlineRequest(consumerPresented: code) } catch {
            result.outcome = .failed(reason: "not a usable code: \(error)")
            return result
        }
        if let made = Self.madeAt(online.data), abs(date.timeIntervalSince(made)) > maximumAge {
            result.outcome = .declinedOffline(reason: "the code is more than \(Int(maximumAge)) s old")
            return result
        }
        return await authorize(online, amount: amount, date: date, pinBlock: nil, entryMode: "032", result: result)
    }

    /// When a consumer-presented code says it was made (9A YYMMDD and 9F21 hhmmss, UTC).
    static func madeAt(_ data: [UInt32: [UInt8]]) -> Date? {
        guard let d = data[0x9A], d.count == 3, let t = data[0x9F21], t.count == 3 else { return nil }
        func n(_ b: UInt8) -> Int { Int(b >> 4) * 10 + Int(b & 0x0F) }
        var c = DateComponents()
        (c.year, c.month, c.day, c.hour, c.minute, c.second) = (2000 + n(d[0]), n(d[1]), n(d[2]), n(t[0]), n(t[1]), n(t[2]))
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.date(from: c)
    }

    /// Online authorization of what the kernel (or a scanned code) produced: send, check the
    /// answer, reverse when it is missing or unusable, print the receipt.
    func authorize(_ online: OnlineRequest, amount: Amount, date: Date, pinBlock: EncryptedPINBlock?, entryMode: String?, result: SaleResult) async -> SaleResult {
        var result = result
        var request = OnlineAuthorization.request(for: online, amount: amount, stan: nextSTAN(), at: date, terminal: merchant, pinBlock: pinBlock)
        if let entryMode { request.posEntryMode = entryMode }
        result.request = request
        let answer: Message
        do {
            answer = try await host.send(request.message)
        } catch {
            result.reversal = await reverse(request, reason: "98")
            result.outcome = .noAnswer(reason: "no answer from the host: \(error)")
            return result
        }
        guard let response = try? AuthorizationResponse(message: answer) else {
            result.reversal = await reverse(request, reason: "22")
            result.outcome = .noAnswer(reason: "the answer could not be read")
            return result
        }
        result.response = response
        if let problem = Self.check(response, against: request) {
            // An approval the POS cannot trust is undone (EMV Book 4 §6.3.8 in spirit: the sale did not complete).
            if response.isApproved { result.reversal = await reverse(request, reason: "22") }
            result.outcome = .noAnswer(reason: problem)
            return result
        }
        result.outcome = response.isApproved ? .approved(authorizationCode: response.authorizationCode ?? "") : .declined(responseCode: response.responseCode)
        result.printed = (merchant, online, date)
        return result
    }

    /// What is wrong with a response to `request`, or nil.
    static func check(_ response: AuthorizationResponse, against request: AuthorizationRequest) -> String? {
        guard response.mti == .financialResponse || response.mti == .authorizationResponse else { return "unexpected MTI \(response.mti.rawValue)" }
        let echoed = response.echoed
        if echoed[11] != request.stan { return "STAN \(echoed[11] ?? "none") does not match \(request.stan)" }
        if echoed[41] != request.terminalID { return "terminal id does not match" }
        if let amount = echoed[4], amount != request.amount.n12 { return "amount \(amount) does not match" }
        if response.isApproved {
            guard let code = response.authorizationCode, !code.isEmpty else { return "approval without an authorization code" }
            // Tag 91: ARPC (8 bytes) with method 1's ARC or method 2's CSU — 10 to 16 bytes.
            if let iad = response.issuerAuthenticationData, !(8...16).contains(iad.count) { return "issuer authentication data (91) of \(iad.count) bytes" }
        }
        return nil
    }

    /// Sends a reversal for `request`; if it is not taken, keeps it for ``retryReversals()``.
    func reverse(_ request: AuthorizationRequest, reason: String) async -> ReversalRequest {
        let clock = OnlineAuthorization.clock(Date())
        let reversal = ReversalRequest(original: request.message, stan: String(format: "%06d", nextSTAN()), transmissionDateTime: clock.mmddhhmmss, reasonCode: reason)
        if await !deliver(reversal) { pendingReversals.append(reversal) }
        return reversal
    }

    /// Whether the host took the reversal: answered 00, or 25 (it never had the original). No
    /// answer, or any other code (a host that could not record it), and it is sent again later.
    func deliver(_ reversal: ReversalRequest) async -> Bool {
        guard let answer = try? await host.send(Self.terminalForm(reversal)) else { return false }
        return answer[39] == "00" || answer[39] == "25"
    }

    /// The reversal as the terminal dialect carries it: no DE90 (the dialect has only a primary
    /// bitmap); DE61 names the original instead — batch (6, zeros), STAN (6), transmission
    /// date and time (10).
    public static func terminalForm(_ reversal: ReversalRequest) -> Message {
        var m = reversal.message
        m[90] = nil
        m[61] = "000000" + (reversal.original[11] ?? "000000") + (reversal.original[7] ?? "0000000000")
        return m
    }

    /// Sends the reversals still pending; returns how many are left.
    @discardableResult
    public func retryReversals() async -> Int {
        var left: [ReversalRequest] = []
        for reversal in pendingReversals {
            // Sent again: a repeat (0401, 0421), which the host answers as the first.
            var again = reversal
            again.mti = reversal.mti == .reversalAdvice ? .reversalAdviceRepeat : .reversalRequestRepeat
            if await !deliver(again) { left.append(reversal) }
        }
        pendingReversals = left
        return left.count
    }
}
