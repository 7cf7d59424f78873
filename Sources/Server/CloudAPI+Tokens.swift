import CloudWire
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import PaymentCore
import TokenService

/// Enrollment, tokens and device operations: the bank/wallet API.
extension CloudAPI {
    func addEnrollmentRoutes(_ router: Router<CloudRequestContext>) {
        router.post("v1/enrollments") { request, context -> EditedResponse<EnrollmentCreated> in
            let requestor = try await requireRequestor(request, context)
            let body = try await request.decode(as: EnrollmentBody.self, context: context)
            guard enrollmentLimiter.allow("\(requestor)/\(body.deviceId)") else {
                throw APIProblem(.tooManyRequests, code: "enrollment-rate-limited", detail: "too many enrollment attempts from this device; try later")
            }
            let pan: PAN
            do { pan = try PAN(body.pan) } catch { throw APIProblem(.unprocessableContent, code: "card-number-invalid", detail: "\(error)") }
            guard let keyBytes = Data(base64Encoded: body.devicePublicKey),
                  let deviceKey = try? P256.KeyAgreement.PublicKey(x963Representation: keyBytes) else {
                throw APIProblem.badRequest("devicePublicKey must be a base64 P-256 public key (X9.63)")
            }
            let outcome = try await tsp.enroll(
                EnrollmentRequest(requestor: requestor, pan: pan, expiry: body.expiry, cvn2: body.cvn2, holderName: body.holderName,
                                  deviceID: body.deviceId, devicePublicKey: deviceKey), issuer: eligibility)
            switch outcome {
            case .codeSent(let id, let masked):
                return EditedResponse(status: .accepted, response: EnrollmentCreated(enrollmentId: id, maskedMobile: masked))
            case .refused(let why):
                throw APIProblem(.unprocessableContent, code: "enrollment-refused", detail: why)
            }
        }
        router.post("v1/enrollments/:id/otp") { request, context -> EditedResponse<TokenView> in
            let requestor = try await requireRequestor(request, context)
            guard let id = context.parameters.get("id", as: Int64.self) else { throw APIProblem.notFound }
            guard otpLimiter.allow("\(requestor)/\(id)") else {
                throw APIProblem(.tooManyRequests, code: "otp-rate-limited", detail: "too many code submissions; try later")
            }
            let body = try await request.decode(as: OTPBody.self, context: context)
            switch try await tsp.verifyOTP(enrollmentID: id, code: body.code) {
            case .verified(let token): return EditedResponse(status: .created, response: TokenView(token))
            case .wrongCode(let left): throw APIProblem(.unprocessableContent, code: "otp-wrong", detail: "wrong code; \(left) tries left")
            case .expired: throw APIProblem(.gone, code: "otp-expired", detail: "the code has expired; enroll again")
            case .tooManyAttempts: throw APIProblem(.tooManyRequests, code: "otp-attempts-exceeded", detail: "too many wrong codes; enroll again")
            case .unknown: throw APIProblem.notFound
            }
        }
    }

    func addTokenRoutes(_ router: Router<CloudRequestContext>) {
        router.get("v1/tokens") { request, context -> TokenList in
            let limit = min(max(request.uri.queryParameters.get("limit", as: Int.self) ?? 100, 1), 500)
            let device = request.uri.queryParameters.get("deviceId")
            switch try await authenticate(request, context) {
            case .requestor(let id): return TokenList(tokens: try await tsp.tokens(requestor: id, deviceID: device, limit: limit).map(TokenView.init))
            case .bank(let id): return TokenList(tokens: try await tsp.tokens(bank: id, deviceID: device, limit: limit).map(TokenView.init))
            }
        }
        router.get("v1/tokens/:id") { request, context -> TokenView in
            let principal = try await authenticate(request, context)
            return TokenView(try await visibleToken(context.parameters.get("id", as: Int64.self), to: principal))
        }
        router.get("v1/tokens/:id/events") { request, context -> EventList in
            let principal = try await authenticate(request, context)
            let token = try await visibleToken(context.parameters.get("id", as: Int64.self), to: principal)
            return EventList(events: try await tsp.history(tokenID: token.id).map {
                EventList.Item(from: $0.0?.rawValue, to: $0.1.rawValue, actor: $0.2.rawValue, reason: $0.3.rawValue)
            })
        }
        router.post("v1/tokens/:id/:action") { request, context -> TokenView in
            let principal = try await authenticate(request, context)
            guard let id = context.parameters.get("id", as: Int64.self),
                  let action = context.parameters.get("action").flatMap(LifecycleAction.init(rawValue:)) else { throw APIProblem.notFound }
            let body = try await request.decode(as: LifecycleBody.self, context: context)
            guard let reason = TokenReason(rawValue: body.reason) else { throw APIProblem.badRequest("unknown reason '\(body.reason)'") }
            do {
                switch principal {
                case .requestor(let r):
                    // The requestor acts for itself or for the cardholder using its app.
                    let actor: TokenActor = body.onBehalfOf == "cardholder" ? .cardholder : .requestor
                    return TokenView(try await tsp.change(tokenID: id, action, actor: actor, reason: reason, requestor: r))
                case .bank(let b):
                    return TokenView(try await tsp.change(tokenID: id, action, actor: .issuer, reason: reason, bank: b))
                }
            } catch let e as LifecycleError {
                switch e {
                case .notYours: throw APIProblem(.forbidden, code: "token-not-yours", detail: e.description)
                case .unknownToken: throw APIProblem.notFound
                case .notAllowed, .reasonNotAllowed: throw APIProblem(.conflict, code: "lifecycle-refused", detail: e.description)
                }
            }
        }
        // Device operations: the requestor's key and the device's signature.
        router.post("v1/tokens/:id/provision") { request, context -> ProvisioningProfile in
            let principal = try await authenticate(request, context)
            guard case .requestor = principal else { throw APIProblem(.forbidden, code: "requestor-only", detail: "only the token's requestor may provision") }
            let token = try await visibleToken(context.parameters.get("id", as: Int64.self), to: principal)
            try await requireDevice(request, token: token)
            guard token.state == .active else { throw APIProblem(.conflict, code: "token-not-active", detail: "the token is \(token.state.rawValue)") }
            return ProvisioningProfile(tokenId: token.id, sealedProfile: Data(try await tsp.sealedTokenProfile(tokenID: token.id)).base64EncodedString())
        }
        router.post("v1/tokens/:id/replenish") { request, context -> KeyBatch in
            let principal = try await authenticate(request, context)
            guard case .requestor = principal else { throw APIProblem(.forbidden, code: "requestor-only", detail: "only the token's requestor may replenish") }
            let token = try await visibleToken(context.parameters.get("id", as: Int64.self), to: principal)
            let body = try await request.decode(as: ReplenishmentBody.self, context: context)
            guard let replenishment = body.request(tokenID: token.id) else { throw APIProblem.badRequest("signature must be base64 DER") }
            switch try await tsp.replenish(replenishment) {
            case .issued(let keys, let unseen): return KeyBatch(keys, unseen: unseen)
            case .refused(let why):
                let status: HTTPResponse.Status = switch why {
                case .badSignature, .notThisDevice, .stale: .forbidden
                case .unknownToken: .notFound
                case .nonceReused, .notActive, .logIncomplete, .logDisagrees: .conflict
                }
                throw APIProblem(status, code: why.code, detail: why.description)
            }
        }
        router.get("v1/tokens/:id/transactions") { request, context -> TransactionList in
            let principal = try await authenticate(request, context)
            let token = try await visibleToken(context.parameters.get("id", as: Int64.self), to: principal)
            if case .requestor = principal { try await requireDevice(request, token: token) }
            return TransactionList(tokenID: token.id, try await tsp.transactions(tokenID: token.id))
        }
        router.get("v1/notifications") { request, context -> NotificationList in
            let requestor = try await requireRequestor(request, context)
            return NotificationList(notifications: try await tsp.pendingNotifications(requestor: requestor).map { NotificationList.Item(tokenId: $0.0, event: $0.1) })
        }
    }
}

struct EnrollmentBody: Decodable, Sendable {
    let pan: String
    let expiry: String
    let cvn2: String?
    let holderName: String
    let deviceId: String
    let devicePublicKey: String
}

struct EnrollmentCreated: ResponseCodable {
    let enrollmentId: Int64
    let maskedMobile: String
}

struct OTPBody: Decodable, Sendable { let code: String }

struct LifecycleBody: Decodable, Sendable {
    let reason: String
    /// "cardholder" when a requestor acts at the cardholder's request.
    let onBehalfOf: String?
}

struct ProvisioningProfile: ResponseCodable {
    let tokenId: Int64
    /// The ``TokenProfile`` as JSON, sealed to the device key (base64).
    let sealedProfile: String
}

struct EventList: ResponseCodable {
    struct Item: Codable { let from: String?; let to: String; let actor: String; let reason: String }
    let events: [Item]
}
