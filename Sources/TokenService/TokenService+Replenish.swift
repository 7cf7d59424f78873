import CloudWire
import Crypto
import Foundation
import PaymentCore
import PaymentCrypto
import SQLKit
import Storage

public enum ReplenishmentOutcome: Sendable, Hashable {
    /// The keys issued, and the ATCs of the phone's log the cloud holds no validated transaction
    /// for yet (a tap whose POS has not yet been answered): the phone sends those again next
    /// time, when the cloud can account for them.
    case issued([IssuedKey], unseen: [UInt16])
    case refused(ReplenishmentRefusal)
}

/// Why the cloud would not top a phone's key pool up.
public enum ReplenishmentRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    case stale
    case unknownToken
    case notThisDevice
    case notActive
    case badSignature
    case nonceReused
    /// The phone's log lacks a transaction the cloud validated.
    case logIncomplete(atc: UInt16)
    /// The phone's log names a different key or amount for a transaction.
    case logDisagrees(atc: UInt16)

    /// A stable code for APIs.
    public var code: String {
        switch self {
        case .stale: "request-stale"
        case .unknownToken: "unknown-token"
        case .notThisDevice: "token-not-on-device"
        case .notActive: "token-not-active"
        case .badSignature: "device-signature-invalid"
        case .nonceReused: "nonce-reused"
        case .logIncomplete: "log-incomplete"
        case .logDisagrees: "log-disagrees"
        }
    }

    public var description: String {
        switch self {
        case .stale: "request is not fresh"
        case .unknownToken: "unknown token"
        case .notThisDevice: "token is not on this device"
        case .notActive: "token is not active"
        case .badSignature: "signature does not verify with the device key"
        case .nonceReused: "nonce already used"
        case .logIncomplete(let atc): "the phone's log lacks ATC \(atc), which the cloud validated"
        case .logDisagrees(let atc): "the phone's log disagrees with the cloud about ATC \(atc)"
        }
    }
}

extension TokenService {
    /// New keys for a phone that is online again. The request must be signed by the key bound
    /// to this token (so device A cannot replenish device B's token), be fresh (five minutes,
    /// nonce never seen), and its transaction log must account for every transaction the cloud
    /// has validated for the token since the last replenishment, with the same key and amount — a phone that does not know
    /// of a payment made with its keys is not trusted with more. The pool is topped up to
    /// `poolSize` unspent keys.
    ///
    /// The answer also names the log's taps the cloud has no transaction for at all: a phone
    /// replenishing straight after a tap can get there before the POS's request does. The phone
    /// keeps those in its next log; had it dropped them, the transaction validated a moment
    /// later would be missing from every later log, and the phone refused keys for good.
    public func replenish(_ request: ReplenishmentRequest, poolSize: Int = 5, limits: LimitedUseKeyLimits = LimitedUseKeyLimits(),
                          now: Date = Date()) async throws -> ReplenishmentOutcome {
        guard abs(request.timestamp.timeIntervalSince(now)) <= 300 else { return .refused(.stale) }
        let stamp = UTCTime(now).iso8601
        let tokenRead: Statement = """
            SELECT t.device_id, t.state, d.public_key FROM tsp_tokens t JOIN tsp_device_keys d ON d.token_id = t.id WHERE t.id = \(bind: request.tokenID)
            """
        // The signature checked before the unit, against the device key as committed; the unit
        // checks it again only if the token's device key is another by then.
        let verifiedKey = try await db.sql.first(tokenRead).flatMap { row in
            try Self.signatureVerifies(request, publicKey: try row.decode(column: "public_key", as: Data.self))
        }
        let checked: Result<[UInt16], ReplenishmentRefusal> = try await db.transaction { tx in
            guard let token = try await tx.first(tokenRead) else { return .failure(.unknownToken) }
            guard try token.decode(column: "device_id", as: String.self) == request.deviceID else { return .failure(.notThisDevice) }
            guard try token.decode(column: "state", as: String.self) == TokenState.active.rawValue else { return .failure(.notActive) }
            let publicKey = try token.decode(column: "public_key", as: Data.self)
            guard try publicKey == verifiedKey || Self.signatureVerifies(request, publicKey: publicKey) != nil else { return .failure(.badSignature) }
            // No row back: the nonce was seen before.
            guard try await tx.raw("""
                INSERT INTO tsp_replenish_nonces (token_id, nonce, seen_at) VALUES (\(bind: request.tokenID), \(bind: request.nonce), \(bind: stamp))
                ON CONFLICT DO NOTHING RETURNING token_id
                """).first() != nil else {
                return .failure(.nonceReused)
            }
            let seen = try await tx.raw("SELECT atc, amount, key_sequence FROM tsp_atcs WHERE token_id = \(bind: request.tokenID) AND reconciled = 0").all()
            var log = Dictionary(request.log.map { ($0.atc, $0) }, uniquingKeysWith: { a, _ in a })
            for row in seen {
                let atc = UInt16(try row.decode(column: "atc", as: Int.self))
                guard let entry = log[atc] else { return .failure(.logIncomplete(atc: atc)) }
                guard entry.amount == (try row.decode(column: "amount", as: Int64.self)),
                      Int(entry.keySequence) == (try row.decode(column: "key_sequence", as: Int.self)) else {
                    return .failure(.logDisagrees(atc: atc))
                }
                log[atc] = nil
            }
            // What is left of the log the cloud has not validated — unless it did and reconciled
            // it before (a log sent again after an answer lost on the way).
            var unseen = Set(log.keys)
            if let lowest = unseen.min() {
                for row in try await tx.raw("""
                    SELECT atc FROM tsp_atcs WHERE token_id = \(bind: request.tokenID) AND atc >= \(bind: Int(lowest)) AND reconciled = 1
                    """).all() {
                    unseen.remove(UInt16(try row.decode(column: "atc", as: Int.self)))
                }
            }
            // Accounted for: the next request need only carry what the cloud validates from now on.
            try await tx.raw("UPDATE tsp_atcs SET reconciled = 1 WHERE token_id = \(bind: request.tokenID) AND reconciled = 0").run()
            if let through = request.receivedKeysThrough {
                // Issued above what the phone received: lost on the way, withdrawn, never valid.
                try await tx.raw("""
                    UPDATE tsp_luks SET state = 'withdrawn' WHERE token_id = \(bind: request.tokenID) AND state = 'issued' AND sequence > \(bind: Int(through))
                    """).run()
            }
            return .success(unseen.sorted())
        }
        let unseen: [UInt16]
        switch checked {
        case .success(let atcs): unseen = atcs
        case .failure(let refusal): return .refused(refusal)
        }
        // Keys still usable: issued, within their transaction count and their time to live.
        let secondsSinceEpoch = Int64(now.timeIntervalSince(LimitedUseKeyIndex.epoch))
        let unspent = try await db.sql.raw("""
            SELECT COUNT(*) AS n FROM tsp_luks WHERE token_id = \(bind: request.tokenID) AND state = 'issued' AND uses < max_transactions
              AND generation_hour * 3600 + ttl_seconds > \(bind: secondsSinceEpoch)
            """).first()!.decode(column: "n", as: Int.self)
        let needed = max(0, poolSize - unspent)
        guard needed > 0 else { return .issued([], unseen: unseen) }
        return .issued(try await issueKeys(tokenID: request.tokenID, count: needed, limits: limits, now: now), unseen: unseen)
    }

    /// The device key (X9.63) when the request's signature verifies under it, else nil.
    static func signatureVerifies(_ request: ReplenishmentRequest, publicKey: Data) throws -> Data? {
        let agreement = try P256.KeyAgreement.PublicKey(x963Representation: publicKey)
        let verifier = try P256.Signing.PublicKey(rawRepresentation: agreement.rawRepresentation)
        guard let signature = try? P256.Signing.ECDSASignature(derRepresentation: request.signature),
              verifier.isValidSignature(signature, for: request.signedBytes) else { return nil }
        return publicKey
    }
}
