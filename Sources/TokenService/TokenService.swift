import Crypto
import Foundation
import PaymentCore
import PaymentCrypto
import SQLKit
import Storage

/// A token as the service describes it: never the card number; the token number only masked.
public struct TokenRecord: Sendable, Hashable, CustomStringConvertible {
    public let id: Int64
    public let maskedToken: String
    public let tokenLastFour: String
    public let tokenExpiry: String
    public let state: TokenState
    public let requestorID: String
    public let deviceID: String
    public let bankID: String
    public let par: String
    public let assurance: String
    public var description: String { "Token(\(id), \(maskedToken), \(state.rawValue))" }
}

/// The token service: token requestors, the vault, token issue and lifecycle with an audit trail.
public final class TokenService: Sendable {
    public struct Configuration: Sendable {
        /// Months a token lives from issue.
        public var tokenLifetimeMonths = 36
        /// Digits in a token number.
        public var tokenLength = 16
        public init() {}
    }

    let db: Database
    let keys: any KeyHolding
    public let vault: Vault
    let configuration: Configuration

    public init(database: Database, keys: any KeyHolding, vault: Vault, configuration: Configuration = Configuration()) {
        self.db = database
        self.keys = keys
        self.vault = vault
        self.configuration = configuration
    }

    // MARK: Token requestors

    /// Registers a token requestor (an 11-character id) and returns its API key, shown once;
    /// only its SHA-256 is stored.
    public func registerRequestor(id: String, name: String) async throws -> String {
        guard id.count == 11, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
            throw StorageError("token requestor id must be 11 letters or digits")
        }
        var rng = SystemRandomNumberGenerator()
        let apiKey = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }.hexString
        let hash = Data(SHA256.hash(data: Array(apiKey.utf8)))
        let now = Date().ISO8601Format()
        try await db.transaction { tx in
            try await tx.raw("INSERT INTO tsp_requestors (id, name, api_key_hash, created_at) VALUES (\(bind: id), \(bind: name), \(bind: hash), \(bind: now))").run()
        }
        return apiKey
    }

    /// Whether `apiKey` is the requestor's (compared in constant time).
    public func authenticateRequestor(id: String, apiKey: String) async throws -> Bool {
        guard let row = try await db.sql.raw("SELECT api_key_hash FROM tsp_requestors WHERE id = \(bind: id)").first() else { return false }
        let stored = Array(try row.decode(column: "api_key_hash", as: Data.self))
        return constantTimeEqual(stored, Array(SHA256.hash(data: Array(apiKey.utf8))))
    }

    public func addTokenRange(bank: String, low: String, high: String) async throws {
        try await db.transaction { tx in
            try await tx.raw("INSERT INTO tsp_token_ranges (bank_id, low, high) VALUES (\(bind: bank), \(bind: low), \(bind: high))").run()
        }
    }

    // MARK: Vault

    /// Stores a card number (once: a second store of the same number finds the first) and
    /// returns its vault id and payment account reference.
    public func storeCard(_ pan: PAN, expiry: String, bank: String) async throws -> (vaultID: Int64, par: String) {
        let hash = try vault.lookupHash(pan.digits)
        let now = Date().ISO8601Format()
        let vault = self.vault
        return try await db.transaction { tx in
            if let row = try await tx.raw("SELECT id, par FROM tsp_vault WHERE pan_hash = \(bind: hash)").first() {
                return (try row.decode(column: "id", as: Int64.self), try row.decode(column: "par", as: String.self))
            }
            let keyID = try await vault.activeDataKey(tx)
            let par = TokenService.makePAR()
            let sealed = try await vault.seal(pan.digits, dataKey: keyID, context: "card:\(par)", tx)
            let id = try await tx.raw("""
                INSERT INTO tsp_vault (pan_hash, pan_sealed, data_key_id, pan_last4, expiry, par, bank_id, created_at)
                VALUES (\(bind: hash), \(bind: sealed), \(bind: keyID), \(bind: pan.lastFour), \(bind: expiry), \(bind: par), \(bind: bank), \(bind: now)) RETURNING id
                """).first()!.decode(column: "id", as: Int64.self)
            return (id, par)
        }
    }

    /// A payment account reference: 29 characters, "Q" (this service's BIN controller prefix is
    /// a stand-in) followed by 28 random upper-case letters and digits.
    static func makePAR() -> String {
        let alphabet = Array("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ")
        var rng = SystemRandomNumberGenerator()
        return "Q" + String((0..<28).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] })
    }

    // MARK: Tokens

    /// Issues an inactive token for a stored card on a device: a number in one of the bank's
    /// token ranges, Luhn-valid, unique, never equal to a stored card number. One token per
    /// device per card; the same card may have tokens on several devices.
    public func issueToken(vaultID: Int64, requestor: String, device: String, assurance: String = "00", now: Date = Date()) async throws -> (TokenRecord, PAN) {
        let vault = self.vault, configuration = self.configuration
        let stamp = now.ISO8601Format()
        let expiry: String = {
            var c = Calendar(identifier: .gregorian)
            c.timeZone = TimeZone(identifier: "UTC")!
            let d = c.date(byAdding: .month, value: configuration.tokenLifetimeMonths, to: now)!
            let p = c.dateComponents([.year, .month], from: d)
            return String(format: "%02d%02d", p.year! % 100, p.month!)
        }()
        return try await db.transaction { tx in
            guard let card = try await tx.raw("SELECT bank_id, par FROM tsp_vault WHERE id = \(bind: vaultID)").first() else {
                throw StorageError("no card \(vaultID) in the vault")
            }
            let bank = try card.decode(column: "bank_id", as: String.self)
            if try await tx.raw("SELECT id FROM tsp_tokens WHERE vault_id = \(bind: vaultID) AND device_id = \(bind: device) AND state <> 'deleted'").first() != nil {
                throw StorageError("this card already has a token on this device")
            }
            let ranges = try await tx.raw("SELECT low, high FROM tsp_token_ranges WHERE bank_id = \(bind: bank)").all()
            guard let range = ranges.first else { throw StorageError("bank \(bank) has no token BIN range") }
            let low = try range.decode(column: "low", as: String.self)
            let keyID = try await vault.activeDataKey(tx)
            for _ in 0..<20 {
                let token = try TokenService.candidate(prefix: low, length: configuration.tokenLength)
                let hash = try vault.lookupHash(token.digits)
                let clash = try await tx.raw("SELECT 1 AS x FROM tsp_tokens WHERE token_hash = \(bind: hash) UNION ALL SELECT 1 AS x FROM tsp_vault WHERE pan_hash = \(bind: hash)").first()
                guard clash == nil else { continue }
                let sealed = try await vault.seal(token.digits, dataKey: keyID, context: "token:\(token.lastFour)", tx)
                let id = try await tx.raw("""
                    INSERT INTO tsp_tokens (token_hash, token_sealed, data_key_id, token_last4, token_bin, token_expiry, vault_id, requestor_id, device_id, bank_id, state, assurance, created_at)
                    VALUES (\(bind: hash), \(bind: sealed), \(bind: keyID), \(bind: token.lastFour), \(bind: token.bin), \(bind: expiry), \(bind: vaultID),
                            \(bind: requestor), \(bind: device), \(bind: bank), 'inactive', \(bind: assurance), \(bind: stamp)) RETURNING id
                    """).first()!.decode(column: "id", as: Int64.self)
                try await tx.raw("""
                    INSERT INTO tsp_token_events (token_id, from_state, to_state, actor, reason, created_at)
                    VALUES (\(bind: id), 'none', 'inactive', 'system', 'enrolled', \(bind: stamp))
                    """).run()
                let record = try await TokenService.record(tx, id: id)
                return (record, token)
            }
            throw StorageError("no free token number in range \(low)")
        }
    }

    /// A random number after `prefix` with the Luhn check digit.
    static func candidate(prefix: String, length: Int) throws -> PAN {
        var rng = SystemRandomNumberGenerator()
        var body = prefix
        while body.count < length - 1 { body.append(Character(String(Int.random(in: 0...9, using: &rng)))) }
        return try PAN(body + String(Luhn.checkDigit(for: body)))
    }

    /// Changes a token's state, records who and why, and tells the token requestor when the
    /// change was not its own.
    @discardableResult
    public func change(tokenID: Int64, _ action: LifecycleAction, actor: TokenActor, reason: TokenReason,
                       requestor: String? = nil, bank: String? = nil) async throws -> TokenRecord {
        guard action.allowedReasons.contains(reason) else { throw LifecycleError.reasonNotAllowed(action: action, reason: reason) }
        let now = Date().ISO8601Format()
        return try await db.transaction { tx in
            guard let row = try await tx.raw("SELECT state, requestor_id, bank_id FROM tsp_tokens WHERE id = \(bind: tokenID)").first() else {
                throw LifecycleError.unknownToken
            }
            let owner = try row.decode(column: "requestor_id", as: String.self)
            let tokenBank = try row.decode(column: "bank_id", as: String.self)
            if let requestor, requestor != owner { throw LifecycleError.notYours }
            if let bank, bank != tokenBank { throw LifecycleError.notYours }
            let state = TokenState(rawValue: try row.decode(column: "state", as: String.self))!
            guard let target = action.target(from: state) else { throw LifecycleError.notAllowed(action: action, from: state) }
            try await tx.raw("UPDATE tsp_tokens SET state = \(bind: target.rawValue) WHERE id = \(bind: tokenID)").run()
            try await tx.raw("""
                INSERT INTO tsp_token_events (token_id, from_state, to_state, actor, reason, created_at)
                VALUES (\(bind: tokenID), \(bind: state.rawValue), \(bind: target.rawValue), \(bind: actor.rawValue), \(bind: reason.rawValue), \(bind: now))
                """).run()
            if actor != .requestor {
                try await tx.raw("""
                    INSERT INTO tsp_notifications (requestor_id, token_id, event, delivered, created_at)
                    VALUES (\(bind: owner), \(bind: tokenID), \(bind: "\(action.rawValue):\(reason.rawValue)"), 0, \(bind: now))
                    """).run()
            }
            return try await TokenService.record(tx, id: tokenID)
        }
    }

    public func token(id: Int64) async throws -> TokenRecord {
        try await db.transaction { tx in try await TokenService.record(tx, id: id) }
    }

    /// The audit trail of a token: (from, to, actor, reason), oldest first.
    public func history(tokenID: Int64) async throws -> [(TokenState?, TokenState, TokenActor, TokenReason)] {
        try await db.sql.raw("SELECT from_state, to_state, actor, reason FROM tsp_token_events WHERE token_id = \(bind: tokenID) ORDER BY id").all().map { row in
            (TokenState(rawValue: try row.decode(column: "from_state", as: String.self)), TokenState(rawValue: try row.decode(column: "to_state", as: String.self))!,
             TokenActor(rawValue: try row.decode(column: "actor", as: String.self))!, TokenReason(rawValue: try row.decode(column: "reason", as: String.self))!)
        }
    }

    /// Notifications waiting for a requestor: (token id, event).
    public func pendingNotifications(requestor: String) async throws -> [(Int64, String)] {
        try await db.sql.raw("SELECT token_id, event FROM tsp_notifications WHERE requestor_id = \(bind: requestor) AND delivered = 0 ORDER BY id").all().map {
            (try $0.decode(column: "token_id", as: Int64.self), try $0.decode(column: "event", as: String.self))
        }
    }

    /// The real card number behind a token number — for the switch only — with the token's state.
    public func detokenize(_ token: PAN) async throws -> (pan: PAN, state: TokenState, tokenID: Int64)? {
        let hash = try vault.lookupHash(token.digits)
        let vault = self.vault
        return try await db.transaction { tx in
            guard let row = try await tx.raw("""
                SELECT t.id, t.state, v.pan_sealed, v.data_key_id, v.par FROM tsp_tokens t JOIN tsp_vault v ON v.id = t.vault_id WHERE t.token_hash = \(bind: hash)
                """).first() else { return nil }
            return (try await vault.openCard(row, tx), TokenState(rawValue: try row.decode(column: "state", as: String.self))!, try row.decode(column: "id", as: Int64.self))
        }
    }

    static func record(_ tx: any SQLDatabase, id: Int64) async throws -> TokenRecord {
        guard let row = try await tx.raw("""
            SELECT t.id, t.token_bin, t.token_last4, t.token_expiry, t.state, t.requestor_id, t.device_id, t.bank_id, t.assurance, v.par
            FROM tsp_tokens t JOIN tsp_vault v ON v.id = t.vault_id WHERE t.id = \(bind: id)
            """).first() else { throw LifecycleError.unknownToken }
        let bin = try row.decode(column: "token_bin", as: String.self), last4 = try row.decode(column: "token_last4", as: String.self)
        return TokenRecord(
            id: id, maskedToken: bin + "******" + last4, tokenLastFour: last4, tokenExpiry: try row.decode(column: "token_expiry", as: String.self),
            state: TokenState(rawValue: try row.decode(column: "state", as: String.self))!, requestorID: try row.decode(column: "requestor_id", as: String.self),
            deviceID: try row.decode(column: "device_id", as: String.self), bankID: try row.decode(column: "bank_id", as: String.self),
            par: try row.decode(column: "par", as: String.self), assurance: try row.decode(column: "assurance", as: String.self))
    }
}

extension TokenService {
    /// The token number of a token — for the wallet's provisioning profile and the switch only.
    public func tokenNumber(tokenID: Int64) async throws -> PAN {
        let vault = self.vault
        return try await db.transaction { tx in
            guard let row = try await tx.raw("SELECT token_sealed, data_key_id, token_last4 FROM tsp_tokens WHERE id = \(bind: tokenID)").first() else {
                throw LifecycleError.unknownToken
            }
            return try await vault.openToken(row, tx)
        }
    }
}
