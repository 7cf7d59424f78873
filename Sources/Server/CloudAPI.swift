import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import PaymentCore
import TokenService

/// The bank/wallet HTTP API of the token service (first part: enrollment, OTP, tokens).
/// Token requestors authenticate with `CloudTap-Requestor: <id>` and `Authorization: Bearer <API key>`;
/// a requestor sees and manages only its own tokens. Card numbers appear in no response.
public struct CloudAPI: Sendable {
    let tsp: TokenService
    let eligibility: any EligibilityService
    let limiter: RateLimiter

    /// - Parameter enrollmentsPerHour: enrollment attempts allowed per requestor and device.
    public init(tokenService: TokenService, eligibility: any EligibilityService, enrollmentsPerHour: Int = 5) {
        self.tsp = tokenService
        self.eligibility = eligibility
        self.limiter = RateLimiter(limit: enrollmentsPerHour, window: 3600)
    }

    static var requestorHeader: HTTPField.Name { HTTPField.Name("CloudTap-Requestor")! }

    /// The OpenAPI 3.1 document this API conforms to (Sources/Server/Resources/openapi.json).
    public static let openAPIDocument: [UInt8] = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"), let data = try? Data(contentsOf: url) else { return Array("{}".utf8) }
        return Array(data)
    }()

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: RequestIDMiddleware())
        router.get("health") { _, _ in ["status": "ok"] }
        router.get("openapi.json") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: CloudAPI.openAPIDocument)))
        }
        router.post("v1/enrollments") { request, context -> EditedResponse<EnrollmentCreated> in
            let requestor = try await authenticate(request)
            let body = try await request.decode(as: EnrollmentBody.self, context: context)
            guard limiter.allow("\(requestor)/\(body.deviceId)") else {
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
            _ = try await authenticate(request)
            guard let id = context.parameters.get("id", as: Int64.self) else { throw APIProblem.notFound }
            let body = try await request.decode(as: OTPBody.self, context: context)
            switch try await tsp.verifyOTP(enrollmentID: id, code: body.code) {
            case .verified(let token): return EditedResponse(status: .created, response: TokenView(token))
            case .wrongCode(let left): throw APIProblem(.unprocessableContent, code: "otp-wrong", detail: "wrong code; \(left) tries left")
            case .expired: throw APIProblem(.gone, code: "otp-expired", detail: "the code has expired; enroll again")
            case .tooManyAttempts: throw APIProblem(.tooManyRequests, code: "otp-attempts-exceeded", detail: "too many wrong codes; enroll again")
            case .unknown: throw APIProblem.notFound
            }
        }
        router.get("v1/tokens/:id") { request, context -> TokenView in
            let requestor = try await authenticate(request)
            guard let id = context.parameters.get("id", as: Int64.self), let token = try? await tsp.token(id: id) else { throw APIProblem.notFound }
            guard token.requestorID == requestor else { throw APIProblem(.forbidden, code: "token-not-yours", detail: "the token belongs to another requestor") }
            return TokenView(token)
        }
        router.post("v1/tokens/:id/:action") { request, context -> TokenView in
            let requestor = try await authenticate(request)
            guard let id = context.parameters.get("id", as: Int64.self),
                  let action = context.parameters.get("action").flatMap(LifecycleAction.init(rawValue:)) else { throw APIProblem.notFound }
            let body = try await request.decode(as: LifecycleBody.self, context: context)
            guard let reason = TokenReason(rawValue: body.reason) else { throw APIProblem.badRequest("unknown reason '\(body.reason)'") }
            do {
                return TokenView(try await tsp.change(tokenID: id, action, actor: .requestor, reason: reason, requestor: requestor))
            } catch let e as LifecycleError {
                switch e {
                case .notYours: throw APIProblem(.forbidden, code: "token-not-yours", detail: e.description)
                case .unknownToken: throw APIProblem.notFound
                case .notAllowed, .reasonNotAllowed: throw APIProblem(.conflict, code: "lifecycle-refused", detail: e.description)
                }
            }
        }
        return router
    }

    /// The requestor id, after checking its API key.
    func authenticate(_ request: Request) async throws -> String {
        guard let id = request.headers[Self.requestorHeader], let auth = request.headers[.authorization], auth.hasPrefix("Bearer "),
              try await tsp.authenticateRequestor(id: id, apiKey: String(auth.dropFirst(7))) else { throw APIProblem.unauthorized }
        return id
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
struct LifecycleBody: Decodable, Sendable { let reason: String }

/// A token as the API shows it: masked number, never the card.
struct TokenView: ResponseCodable {
    let id: Int64
    let maskedToken: String
    let tokenExpiry: String
    let state: String
    let deviceId: String
    let par: String
    let assurance: String

    init(_ t: TokenRecord) {
        id = t.id
        maskedToken = t.maskedToken
        tokenExpiry = t.tokenExpiry
        state = t.state.rawValue
        deviceId = t.deviceID
        par = t.par
        assurance = t.assurance
    }
}
