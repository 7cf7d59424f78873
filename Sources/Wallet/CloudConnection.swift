import CloudWire
import Foundation
import QR
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import PaymentCrypto

/// The phone's way to the token service when it is online. The wallet needs three things from
/// the cloud: its token profile, new keys, and the history of its payments.
public protocol CloudConnection: Sendable {
    /// The token profile sealed to the device key.
    func provision(tokenID: Int64, wallet: Wallet) async throws -> [UInt8]
    /// New keys for a signed replenishment request.
    func replenish(_ request: ReplenishmentRequest) async throws -> Wallet.Replenishment
}

/// Why the cloud said no, as its problem details gave it.
public struct CloudRefusal: Error, Hashable, Sendable, CustomStringConvertible {
    public let status: Int
    /// The stable problem code, e.g. "log-incomplete", "device-signature-invalid".
    public let code: String
    public let detail: String
    public var description: String { "\(status) \(code): \(detail)" }

    public init(status: Int, code: String, detail: String) {
        self.status = status
        self.code = code
        self.detail = detail
    }
}

/// The token service's HTTP API (docs/token-service.md): the requestor's credentials on every
/// call, and the device's signature on device operations; through URLSession unless another
/// transport is given (``KeepAliveHTTPTransport``).
public struct HTTPCloudConnection: CloudConnection {
    public let baseURL: URL
    let requestorID: String
    let apiKey: String
    public let transport: any HTTPTransport

    public init(baseURL: URL, requestorID: String, apiKey: String, session: URLSession = HTTPCloudConnection.uncached) {
        self.init(baseURL: baseURL, requestorID: requestorID, apiKey: apiKey, transport: URLSessionTransport(session))
    }

    public init(baseURL: URL, requestorID: String, apiKey: String, transport: any HTTPTransport) {
        self.baseURL = baseURL
        self.requestorID = requestorID
        self.apiKey = apiKey
        self.transport = transport
    }

    /// The default session: nothing the cloud answers (card profiles, sealed keys, token state)
    /// is kept in a URL cache, in memory or on disk, and no cookie is stored.
    public static let uncached: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.urlCache = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.httpCookieStorage = nil
        configuration.httpShouldSetCookies = false
        return URLSession(configuration: configuration)
    }()

    public func provision(tokenID: Int64, wallet: Wallet) async throws -> [UInt8] {
        let path = "/v1/tokens/\(tokenID)/provision"
        let stamp = Int64(Date().timeIntervalSince1970)
        let signature = try wallet.sign(DeviceSignedRequest(method: "POST", path: path, timestamp: stamp))
        let object = try await call("POST", path, body: nil, headers: [
            "CloudTap-Device": wallet.deviceID, "CloudTap-Timestamp": String(stamp), "CloudTap-Signature": Data(signature).base64EncodedString(),
        ])
        guard let sealed = (object["sealedProfile"] as? String).flatMap({ Data(base64Encoded: $0) }) else {
            throw CloudRefusal(status: 200, code: "malformed-answer", detail: "no sealedProfile")
        }
        return Array(sealed)
    }

    public func replenish(_ request: ReplenishmentRequest) async throws -> Wallet.Replenishment {
        // Encoded and decoded as types (the log can hold dozens of entries; JSONSerialization's
        // dictionaries cost a phone more than the rest of the request).
        let data = try await send("POST", "/v1/tokens/\(request.tokenID)/replenish", rawBody: try JSONEncoder().encode(ReplenishmentBody(request)), headers: [:])
        guard let answer = try? JSONDecoder().decode(KeyBatch.self, from: data) else {
            throw CloudRefusal(status: 200, code: "malformed-answer", detail: "keys without their index, key or limits")
        }
        let keys = try answer.keys.map { k in
            guard let sealed = Data(base64Encoded: k.sealedKey) else { throw CloudRefusal(status: 200, code: "malformed-answer", detail: "a sealed key that is not base64") }
            return Wallet.SealedKey(index: LimitedUseKeyIndex(generationHour: k.generationHour, sequence: k.sequence), sealedKey: Array(sealed),
                                    limits: LimitedUseKeyLimits(maxTransactions: k.maxTransactions, timeToLive: TimeInterval(k.ttlSeconds), maxCumulativeAmount: k.maxAmount))
        }
        return Wallet.Replenishment(keys: keys, unseen: answer.unseenAtcs ?? [])
    }

    func call(_ method: String, _ path: String, body: [String: Any]?, headers: [String: String]) async throws -> [String: Any] {
        try await call(method, path, rawBody: try body.map { try JSONSerialization.data(withJSONObject: $0) }, headers: headers)
    }

    func call(_ method: String, _ path: String, rawBody: Data?, headers: [String: String]) async throws -> [String: Any] {
        let data = try await send(method, path, rawBody: rawBody, headers: headers)
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }

    /// The answer's body of a 2xx; anything else thrown as the cloud's refusal.
    func send(_ method: String, _ path: String, rawBody: Data?, headers: [String: String]) async throws -> Data {
        var request = URLRequest(url: baseURL.appendingPathComponent(String(path.dropFirst())))
        request.httpMethod = method
        request.setValue("Bearer \(apiKey)", forHTTPHeaderField: "Authorization")
        request.setValue(requestorID, forHTTPHeaderField: "CloudTap-Requestor")
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let rawBody { request.httpBody = rawBody }
        let (status, data) = try await transport.exchange(request)
        guard (200..<300).contains(status) else {
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            throw CloudRefusal(status: status, code: object["code"] as? String ?? "http-\(status)", detail: object["detail"] as? String ?? "")
        }
        return data
    }
}

extension HTTPCloudConnection {
    /// The answer to `request`. Where URLSession is swift-corelibs-foundation's (Linux), starting
    /// a task waits on the session's own queue (`DispatchQueue.sync`), which would hold one of
    /// the few threads Swift concurrency runs every task on; there the task is started from a
    /// queue of its own and its answer handed back. Elsewhere, the async call as it is.
    static func exchange(_ request: URLRequest, on session: URLSession) async throws -> (Data, URLResponse) {
        #if canImport(FoundationNetworking)
        let started = StartedTask()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                starter.async {
                    let task = session.dataTask(with: request) { data, response, error in
                        if let error {
                            continuation.resume(throwing: error)
                        } else if let response {
                            continuation.resume(returning: (data ?? Data(), response))
                        } else {
                            continuation.resume(throwing: URLError(.badServerResponse))
                        }
                    }
                    started.set(task)
                    task.resume()
                }
            }
        } onCancel: {
            started.cancel()
        }
        #else
        return try await session.data(for: request)
        #endif
    }

    /// The queue URLSession tasks are started from (see ``exchange(_:on:)``).
    static let starter = DispatchQueue(label: "cloudtap-wallet-http")

    /// A started task, for cancelling it from another thread (cancelled before it started: it
    /// is cancelled as it starts).
    final class StartedTask: @unchecked Sendable {  // state behind the lock
        private let lock = NSLock()
        private var task: URLSessionDataTask?
        private var cancelled = false

        func set(_ task: URLSessionDataTask) {
            let cancel = lock.withLock {
                self.task = task
                return cancelled
            }
            if cancel { task.cancel() }
        }

        func cancel() {
            let task = lock.withLock {
                cancelled = true
                return self.task
            }
            task?.cancel()
        }
    }
}

extension HTTPCloudConnection {
    /// Pays a merchant-presented code: the payload as scanned, the amount when the code has
    /// none, and the credential the wallet made — the body signed with the device key.
    public func payMerchant(tokenID: Int64, payload: String, amount: String?, credential: ConsumerPresentedCode, wallet: Wallet) async throws -> MerchantPaymentAnswer {
        let path = "/v1/tokens/\(tokenID)/qr-payments"
        var body: [String: Any] = ["payload": payload, "credential": credential.base64]
        if let amount { body["amount"] = amount }
        let bytes = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        let stamp = Int64(Date().timeIntervalSince1970)
        let signature = try wallet.sign(DeviceSignedRequest(method: "POST", path: path, timestamp: stamp, body: Array(bytes)))
        let data = try await send("POST", path, rawBody: bytes, headers: [
            "CloudTap-Device": wallet.deviceID, "CloudTap-Timestamp": String(stamp), "CloudTap-Signature": Data(signature).base64EncodedString(),
        ])
        guard let answer = try? JSONDecoder().decode(MerchantPaymentAnswer.self, from: data) else {
            throw CloudRefusal(status: 200, code: "malformed-answer", detail: "a payment answer without its outcome, codes, reference, merchant or amount")
        }
        return answer
    }
}

extension Wallet {
    /// Fetches the token profile from the cloud and adds the card.
    @discardableResult
    public func provision(cardID: String, tokenID: Int64, from cloud: any CloudConnection, aid: [UInt8] = CardProfile.debitAID) async throws -> CardProfile {
        var card = try addCloudCard(id: cardID, sealedProfile: try await cloud.provision(tokenID: tokenID, wallet: self), aid: aid)
        card.tokenID = tokenID
        let stored = card
        try mutate { state in
            if let i = state.cards.firstIndex(where: { $0.profile.id == cardID }) { state.cards[i].profile = stored }
        }
        return card
    }

    /// When the card runs low on keys (or `force`), sends a signed request with the log and adds
    /// what comes back. Returns the number of keys received.
    @discardableResult
    public func replenishIfNeeded(cardID: String, tokenID: Int64? = nil, from cloud: any CloudConnection, force: Bool = false) async throws -> Int {
        guard force || needsReplenishment(cardID: cardID) else { return 0 }
        guard let tokenID = tokenID ?? card(cardID)?.profile.tokenID else { throw WalletError.invalidProfile("card \(cardID) has no token id; provision it from the cloud") }
        let request = try replenishmentRequest(cardID: cardID, tokenID: tokenID)
        let answer = try await cloud.replenish(request)
        try replenished(cardID: cardID, request: request, keys: answer.keys, unseen: answer.unseen)
        return answer.keys.count
    }
}
