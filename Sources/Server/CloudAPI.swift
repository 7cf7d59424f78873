import CloudWire
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import IssuerHost
import PaymentCore
import PaymentCrypto
import Switch
import TokenService

/// The cloud's HTTP API: the bank/wallet API of the token service and the operator API.
///
/// Who is calling is told by one header and an API key (`Authorization: Bearer <key>`):
/// - `CloudTap-Requestor: <11-character id>` — a token requestor (bank app, wallet); sees and
///   manages only its own tokens. Device operations also carry the device's signature.
/// - `CloudTap-Bank: <bank id>` — an issuer bank; sees only its own cards and tokens. When the
///   bank has a pinned client certificate, the key counts only over mutual TLS with it.
/// - the operator — the `/v1/operator/…` routes, with the operator key of the configuration.
///
/// Card numbers appear in no response, only masked.
public struct CloudAPI: Sendable {
    public struct Configuration: Sendable {
        /// Enrollment attempts allowed per requestor and device in an hour.
        public var enrollmentsPerHour = 5
        /// OTP submissions allowed per enrollment in an hour (the service also locks after three wrong codes).
        public var otpAttemptsPerHour = 10
        /// The operator API key; nil turns the operator API off.
        public var operatorAPIKey: String?
        /// Which routes this process serves (a deployment may split them across processes).
        public var parts: Parts = .all
        /// The metrics in Prometheus's text format, served at /metrics (counters and timings only).
        public var metrics: (@Sendable () -> [UInt8])?
        /// Static merchant-presented codes: the most a token may pay by them in a day, per bank
        /// (minor units), and the cap for banks not named (nil: none).
        public var staticQRDailyLimits: [String: Int64] = [:]
        public var staticQRDailyLimit: Int64? = 50_000
        public init(operatorAPIKey: String? = nil) { self.operatorAPIKey = operatorAPIKey }
    }

    /// Groups of routes.
    public struct Parts: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// Wallets and banks: enrollment, tokens, lifecycle, provisioning, replenishment.
        public static let tokenService = Parts(rawValue: 1)
        /// The operator API.
        public static let operatorAPI = Parts(rawValue: 2)
        /// The operator's web console.
        public static let console = Parts(rawValue: 4)
        public static let all: Parts = [.tokenService, .operatorAPI, .console]
    }

    let tsp: TokenService
    let issuer: IssuerHost
    let keys: any KeyHolding
    let eligibility: any EligibilityService
    let enrollmentLimiter: RateLimiter
    let otpLimiter: RateLimiter
    let operatorKeyHash: [UInt8]?
    /// The operator's web console, when this process serves it.
    public let console: Console?
    /// Clearing and settlement for the operator API, when this process has the switch's data.
    let settlement: Settlement?
    /// The switch, for payments by merchant-presented QR code.
    let network: NetworkSwitch?
    let configuration: Configuration

    public init(tokenService: TokenService, issuer: IssuerHost, keys: any KeyHolding, configuration: Configuration = Configuration(), console: Console? = nil,
                settlement: Settlement? = nil, network: NetworkSwitch? = nil) {
        self.console = console
        self.network = network ?? console?.network
        self.configuration = configuration
        self.settlement = settlement ?? console?.settlement
        self.tsp = tokenService
        self.issuer = issuer
        self.keys = keys
        self.eligibility = IssuerHostEligibility(host: issuer)
        self.enrollmentLimiter = RateLimiter(limit: configuration.enrollmentsPerHour, window: 3600)
        self.otpLimiter = RateLimiter(limit: configuration.otpAttemptsPerHour, window: 3600)
        self.operatorKeyHash = configuration.operatorAPIKey.map { Array(SHA256.hash(data: Array($0.utf8))) }
    }

    static let requestorHeader = HTTPField.Name("CloudTap-Requestor")!
    static let bankHeader = HTTPField.Name("CloudTap-Bank")!
    static let deviceHeader = HTTPField.Name("CloudTap-Device")!
    static let timestampHeader = HTTPField.Name("CloudTap-Timestamp")!
    static let signatureHeader = HTTPField.Name("CloudTap-Signature")!

    /// The OpenAPI 3.1 document this API conforms to (Sources/Server/Resources/openapi.json).
    public static let openAPIDocument: [UInt8] = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"), let data = try? Data(contentsOf: url) else { return Array("{}".utf8) }
        return Array(data)
    }()

    public func router() -> Router<CloudRequestContext> {
        let router = Router(context: CloudRequestContext.self)
        router.add(middleware: RequestIDMiddleware())
        router.add(middleware: MetricsMiddleware())
        router.get("health") { _, _ in ["status": "ok"] }
        let parts = configuration.parts
        if let metrics = configuration.metrics {
            router.get("metrics") { _, _ -> Response in
                Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: metrics())))
            }
        }
        if !parts.isDisjoint(with: [.tokenService, .operatorAPI]) {
            router.get("openapi.json") { _, _ -> Response in
                Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: CloudAPI.openAPIDocument)))
            }
        }
        if parts.contains(.tokenService) {
            addEnrollmentRoutes(router)
            addTokenRoutes(router)
            addBankRoutes(router)
            addQRRoutes(router)
        }
        if parts.contains(.operatorAPI) { addOperatorRoutes(router) }
        if parts.contains(.console), let console { addConsoleRoutes(router, console: console) }
        return router
    }

    // MARK: Who is calling

    enum Principal: Sendable, Equatable {
        case requestor(String)
        case bank(String)
    }

    func bearer(_ request: Request) -> String? {
        guard let auth = request.headers[.authorization], auth.hasPrefix("Bearer ") else { return nil }
        return String(auth.dropFirst(7))
    }

    /// The requestor or bank calling, after checking its API key (and, for a bank with a pinned
    /// certificate, the connection's client certificate).
    func authenticate(_ request: Request, _ context: CloudRequestContext) async throws -> Principal {
        guard let key = bearer(request) else { throw APIProblem.unauthorized }
        if let id = request.headers[Self.requestorHeader] {
            guard try await tsp.authenticateRequestor(id: id, apiKey: key) else { throw APIProblem.unauthorized }
            return .requestor(id)
        }
        if let id = request.headers[Self.bankHeader] {
            guard try await tsp.authenticateBank(id: id, apiKey: key) else { throw APIProblem.unauthorized }
            if let pinned = try await tsp.bankClientCertificate(bank: id) {
                guard let presented = await context.clientCertificateSHA256(), constantTimeEqual(presented, pinned) else {
                    throw APIProblem(.unauthorized, code: "client-certificate-required",
                                     detail: "this bank's key is accepted only over mutual TLS with its registered client certificate")
                }
            }
            return .bank(id)
        }
        throw APIProblem.unauthorized
    }

    func requireRequestor(_ request: Request, _ context: CloudRequestContext) async throws -> String {
        guard case .requestor(let id) = try await authenticate(request, context) else {
            throw APIProblem(.forbidden, code: "requestor-only", detail: "only a token requestor may do this")
        }
        return id
    }

    func requireBank(_ request: Request, _ context: CloudRequestContext) async throws -> String {
        guard case .bank(let id) = try await authenticate(request, context) else {
            throw APIProblem(.forbidden, code: "bank-only", detail: "only an issuer bank may do this")
        }
        return id
    }

    func requireOperator(_ request: Request) throws {
        guard let expected = operatorKeyHash else {
            throw APIProblem(.notFound, code: "operator-api-disabled", detail: "the operator API is not enabled on this server")
        }
        guard let key = bearer(request), constantTimeEqual(Array(SHA256.hash(data: Array(key.utf8))), expected) else { throw APIProblem.unauthorized }
    }

    /// The token, if the caller may see it: a requestor its own, a bank the tokens of its cards.
    func visibleToken(_ id: Int64?, to principal: Principal) async throws -> TokenRecord {
        guard let id else { throw APIProblem.notFound }
        let token: TokenRecord
        do { token = try await tsp.token(id: id) } catch LifecycleError.unknownToken { throw APIProblem.notFound }
        switch principal {
        case .requestor(let r) where token.requestorID == r: return token
        case .bank(let b) where token.bankID == b: return token
        default: throw APIProblem(.forbidden, code: "token-not-yours", detail: "the token belongs to another requestor or bank")
        }
    }

    /// Checks the device signature headers of a device operation on `token`.
    func requireDevice(_ request: Request, token: TokenRecord, body: [UInt8] = []) async throws {
        guard let device = request.headers[Self.deviceHeader], let stamp = request.headers[Self.timestampHeader].flatMap(Int64.init),
              let signature = request.headers[Self.signatureHeader].flatMap({ Data(base64Encoded: $0) }) else {
            throw APIProblem(.unauthorized, code: "device-signature-required",
                             detail: "device operations carry CloudTap-Device, CloudTap-Timestamp and CloudTap-Signature")
        }
        guard device == token.deviceID else { throw APIProblem(.forbidden, code: "token-not-on-device", detail: "the token is not on this device") }
        let signed = DeviceSignedRequest(method: request.method.rawValue, path: request.uri.path, timestamp: stamp, body: body)
        guard try await tsp.verifyDevice(tokenID: token.id, deviceID: device, request: signed, signature: Array(signature)) else {
            throw APIProblem(.forbidden, code: "device-signature-invalid", detail: "the signature does not verify with the device key, or is not fresh")
        }
    }
}
