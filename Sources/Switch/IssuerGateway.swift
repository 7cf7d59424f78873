import Foundation
import ISO8583
import IssuerHost
import Metrics
import PaymentCore
import PaymentCrypto
import SQLKit

/// The ISO 8583 front of an issuer host: network-dialect 0200 and 0400 in, 0210 and 0410 out.
/// A request the host cannot read gets a format error (30).
public struct IssuerGateway: Sendable {
    let host: IssuerHost

    public init(host: IssuerHost) { self.host = host }

    /// The key an authorization is known by at the issuer: acquirer, STAN and transmission time
    /// of the switch's request (DE32, DE11, DE7). A reversal names them in DE90.
    static func key(acquirer: String, stan: String, transmission: String) -> String { "\(acquirer)/\(stan)/\(transmission)" }

    public func handle(_ message: Message) async -> Message {
        do {
            switch MessageType.original(of: message.mti) {
            case MessageType.financialRequest.rawValue, MessageType.authorizationRequest.rawValue:
                return try await authorize(message)
            case MessageType.reversalRequest.rawValue, MessageType.reversalAdvice.rawValue:
                return try await reverse(message)
            case MessageType.authorizationAdvice.rawValue:
                let request = try AuthorizationRequest(message: message)
                let input = AuthorizationInput(idempotencyKey: Self.key(acquirer: request.acquirerID, stan: request.stan, transmission: request.transmissionDateTime),
                                               pan: request.pan, amount: request.amount, pinBlock: nil)
                let booked = try await host.advise(input, authorizationCode: message[38] ?? "")
                return Self.answer(message, code: booked ? "00" : "14")
            case MessageType.networkManagementRequest.rawValue:
                // Sign-on, echo, sign-off from the switch's link.
                return Self.answer(message, code: "00")
            default:
                return Self.formatError(message)
            }
        } catch {
            return Self.answer(message, code: error is ISO8583Error ? "30" : "96")
        }
    }

    func authorize(_ message: Message) async throws -> Message {
        let (input, lookup) = try prepare(message)
        return try await decide(message, input: input, lookup: lookup).answer
    }

    /// An issuer's decision on a request, with the answer to send back.
    struct Decision {
        let answer: Message
        let code: String
        let authorizationCode: String?
    }

    /// What a decision needs that no database does: the request read, the card number's keyed
    /// hash computed — done before a caller's transaction, to keep it short.
    func prepare(_ message: Message) throws -> (input: AuthorizationInput, lookup: Data) {
        try prepare(try AuthorizationRequest(message: message))
    }

    /// As ``prepare(_:)-(Message)`` from the request the message was built from (the switch's
    /// own, for an issuer in its process: not read back from the message it just built).
    func prepare(_ request: AuthorizationRequest) throws -> (input: AuthorizationInput, lookup: Data) {
        let input = AuthorizationInput(
            idempotencyKey: Self.key(acquirer: request.acquirerID, stan: request.stan, transmission: request.transmissionDateTime),
            pan: request.pan, amount: request.amount, pinBlock: request.pinBlock.map { EncryptedPINBlock(format: .iso0, bytes: $0) })
        return (input, try host.lookupHash(input.pan))
    }

    /// Decides; with `tx`, books the decision inside the caller's transaction on the host's
    /// database (and throws any error, so that transaction rolls back whole).
    func decide(_ message: Message, input: AuthorizationInput, lookup: Data, in tx: (any SQLDatabase)? = nil) async throws -> Decision {
        let outcome = if let tx { try await host.authorize(input, lookup: lookup, in: tx) } else { try await host.authorize(input) }
        let decided = try decision(message, outcome.decision)
        count(decided)
        return decided
    }

    /// The answer to `message` for a decision.
    func decision(_ message: Message, _ decision: AuthorizationDecision) throws -> Decision {
        let code = decision.responseCode.rawValue
        let authorizationCode: String? = if case .approved(let c) = decision { c } else { nil }
        return Decision(answer: try AuthorizationResponse(responding: message, responseCode: code, authorizationCode: authorizationCode).message,
                        code: code, authorizationCode: authorizationCode)
    }

    /// Counts a decision that was answered.
    func count(_ decided: Decision) {
        Counter(label: "cloudtap_issuer_decisions_total", dimensions: [("code", decided.code)]).increment()
    }

    func reverse(_ message: Message) async throws -> Message {
        // DE90: original MTI (4), STAN (6), transmission date-time (10), acquirer (11), forwarder (11).
        guard let original = message[90], original.count >= 20, let acquirer = message[32] else {
            throw ISO8583Error(.invalidValue("a reversal needs DE90 and DE32"), path: "DE90", offset: 0)
        }
        let chars = Array(original)
        let stan = String(chars[4..<10]), transmission = String(chars[10..<20])
        let code = try await host.reverse(idempotencyKey: Self.key(acquirer: acquirer, stan: stan, transmission: transmission))
        return Self.answer(message, code: code.rawValue)
    }

    /// The response MTI, the request's echoed fields, and DE39.
    static func answer(_ request: Message, code: String) -> Message {
        var m = Message(mti: MessageType.responseMTI(for: request.mti) ?? "0810")
        for field in AuthorizationResponse.echoedFields + [61, 90] { m[field] = request[field] }
        m[39] = code
        return m
    }

    static func formatError(_ request: Message) -> Message { answer(request, code: "30") }
}
