import CloudWire
import Crypto
import Foundation
import PaymentCore
import PaymentCrypto
import SQLKit
import Storage

/// A transaction the cloud validated for a token, as its history shows it.
public struct ValidatedTransaction: Sendable, Hashable, Codable {
    public let atc: UInt16
    public let keySequence: UInt16
    /// Amount authorised, in minor units.
    public let amount: Int64
    public let validatedAt: String
}

extension TokenService {
    // MARK: Bank credentials

    /// Issues (or replaces) a bank's API key and returns it, shown once; only its SHA-256 is kept.
    public func issueBankAPIKey(bank: String) async throws -> String {
        var rng = SystemRandomNumberGenerator()
        let apiKey = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }.hexString
        let hash = Data(SHA256.hash(data: Array(apiKey.utf8)))
        let now = Date().ISO8601Format()
        try await db.transaction { tx in
            try await tx.raw("DELETE FROM tsp_bank_credentials WHERE bank_id = \(bind: bank)").run()
            try await tx.raw("INSERT INTO tsp_bank_credentials (bank_id, api_key_hash, created_at) VALUES (\(bind: bank), \(bind: hash), \(bind: now))").run()
        }
        return apiKey
    }

    /// Whether `apiKey` is the bank's (compared in constant time).
    public func authenticateBank(id: String, apiKey: String) async throws -> Bool {
        guard let row = try await db.sql.raw("SELECT api_key_hash FROM tsp_bank_credentials WHERE bank_id = \(bind: id)").first() else { return false }
        return constantTimeEqual(Array(try row.decode(column: "api_key_hash", as: Data.self)), Array(SHA256.hash(data: Array(apiKey.utf8))))
    }

    /// Pins the bank's TLS client certificate (by the SHA-256 of its DER encoding): with mutual
    /// TLS, the bank's API key is accepted only over a connection that presented this certificate.
    public func pinBankClientCertificate(bank: String, sha256: [UInt8]) async throws {
        try await db.transaction { tx in
            try await tx.raw("UPDATE tsp_bank_credentials SET client_cert_sha256 = \(bind: Data(sha256)) WHERE bank_id = \(bind: bank)").run()
        }
    }

    /// The pinned client certificate's SHA-256, if any.
    public func bankClientCertificate(bank: String) async throws -> [UInt8]? {
        guard let row = try await db.sql.raw("SELECT client_cert_sha256 FROM tsp_bank_credentials WHERE bank_id = \(bind: bank)").first() else { return nil }
        return try row.decode(column: "client_cert_sha256", as: Data?.self).map(Array.init)
    }

    // MARK: Listings

    /// Tokens of one requestor (optionally one device) or of one bank, newest first.
    public func tokens(requestor: String? = nil, bank: String? = nil, deviceID: String? = nil, state: TokenState? = nil, limit: Int = 100) async throws -> [TokenRecord] {
        var query = db.sql.select().column("id").from("tsp_tokens")
        if let state { query = query.where("state", .equal, state.rawValue) }
        if let requestor { query = query.where("requestor_id", .equal, requestor) }
        if let bank { query = query.where("bank_id", .equal, bank) }
        if let deviceID { query = query.where("device_id", .equal, deviceID) }
        let ids = try await query.orderBy("id", .descending).limit(limit).all().map { try $0.decode(column: "id", as: Int64.self) }
        return try await db.transaction { tx in
            var records: [TokenRecord] = []
            for id in ids { records.append(try await TokenService.record(tx, id: id)) }
            return records
        }
    }

    /// How many tokens are in each state.
    public func tokenCounts() async throws -> [TokenState: Int] {
        var counts: [TokenState: Int] = [:]
        for row in try await db.sql.raw("SELECT state, COUNT(*) AS n FROM tsp_tokens GROUP BY state").all() {
            if let state = TokenState(rawValue: try row.decode(column: "state", as: String.self)) { counts[state] = try row.decode(column: "n", as: Int.self) }
        }
        return counts
    }

    /// Registered token requestors: (id, name).
    public func requestors() async throws -> [(id: String, name: String)] {
        try await db.sql.raw("SELECT id, name FROM tsp_requestors ORDER BY id").all().map {
            (try $0.decode(column: "id", as: String.self), try $0.decode(column: "name", as: String.self))
        }
    }

    /// A bank's token BIN ranges: (low, high).
    public func tokenRanges(bank: String) async throws -> [(low: String, high: String)] {
        try await db.sql.raw("SELECT low, high FROM tsp_token_ranges WHERE bank_id = \(bind: bank) ORDER BY low").all().map {
            (try $0.decode(column: "low", as: String.self), try $0.decode(column: "high", as: String.self))
        }
    }

    /// The transactions the cloud validated for a token, newest first.
    public func transactions(tokenID: Int64) async throws -> [ValidatedTransaction] {
        try await db.sql.raw("SELECT atc, key_sequence, amount, seen_at FROM tsp_atcs WHERE token_id = \(bind: tokenID) ORDER BY atc DESC").all().map {
            ValidatedTransaction(atc: UInt16(try $0.decode(column: "atc", as: Int.self)), keySequence: UInt16(try $0.decode(column: "key_sequence", as: Int.self)),
                                 amount: try $0.decode(column: "amount", as: Int64.self), validatedAt: try $0.decode(column: "seen_at", as: String.self))
        }
    }

    // MARK: Device signatures

    /// Whether a request was signed by the key of the device that holds the token, within
    /// five minutes of `now`.
    public func verifyDevice(tokenID: Int64, deviceID: String, request: DeviceSignedRequest, signature: [UInt8], now: Date = Date()) async throws -> Bool {
        guard abs(Double(request.timestamp) - now.timeIntervalSince1970) <= 300 else { return false }
        guard let row = try await db.sql.raw("""
            SELECT t.device_id, d.public_key FROM tsp_tokens t JOIN tsp_device_keys d ON d.token_id = t.id WHERE t.id = \(bind: tokenID)
            """).first(), try row.decode(column: "device_id", as: String.self) == deviceID else { return false }
        let agreement = try P256.KeyAgreement.PublicKey(x963Representation: try row.decode(column: "public_key", as: Data.self))
        let verifier = try P256.Signing.PublicKey(rawRepresentation: agreement.rawRepresentation)
        guard let parsed = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
        return verifier.isValidSignature(parsed, for: request.signedBytes)
    }
}

extension TokenService {
    /// The token's profile, encrypted to the key of the device that holds it (ECIES P-256).
    public func sealedTokenProfile(tokenID: Int64) async throws -> [UInt8] {
        let vault = self.vault
        return try await db.transaction { tx in
            guard let row = try await tx.raw("""
                SELECT t.token_sealed, t.data_key_id, t.token_last4, t.token_expiry, d.public_key, k.profile
                FROM tsp_tokens t JOIN tsp_device_keys d ON d.token_id = t.id JOIN tsp_bank_keys k ON k.bank_id = t.bank_id WHERE t.id = \(bind: tokenID)
                """).first() else { throw LifecycleError.unknownToken }
            let token = try await vault.openToken(row, tx)
            let profile = TokenProfile(token: token.digits, expiry: try row.decode(column: "token_expiry", as: String.self), psn: "01",
                                       cryptogramProfile: try row.decode(column: "profile", as: String.self))
            let device = try P256.KeyAgreement.PublicKey(x963Representation: try row.decode(column: "public_key", as: Data.self))
            return try DeviceKeyWrap.seal(Array(try JSONEncoder().encode(profile)), to: device, context: TokenProfile.sealContext)
        }
    }
}
