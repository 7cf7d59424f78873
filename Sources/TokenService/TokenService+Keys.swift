import Crypto
import Foundation
import PaymentCore
import PaymentCrypto
import SQLKit
import Storage

/// A limited-use key on its way to a phone: its index and the key encrypted to the device key.
public struct IssuedKey: Sendable, Hashable {
    public let index: LimitedUseKeyIndex
    public let sealedKey: [UInt8]
    public let limits: LimitedUseKeyLimits
}

/// What the switch sends to have a cloud cryptogram checked.
public struct CryptogramCheck: Sendable {
    public var token: PAN
    public var psn: String
    public var data: TransactionData
    public var arqc: [UInt8]
    public var now: Date
    /// The amount the terminal asks for (DE4), when it may exceed the one in the cryptogram
    /// (9F02): a consumer-presented QR code is made before the amount is known. The key's
    /// amount limit counts the larger of the two.
    public var transactionAmount: Int64?

    public init(token: PAN, psn: String = "01", data: TransactionData, arqc: [UInt8], now: Date = Date(), transactionAmount: Int64? = nil) {
        self.token = token
        self.psn = psn
        self.data = data
        self.arqc = arqc
        self.now = now
        self.transactionAmount = transactionAmount
    }
}

/// The token service's answer: the real card number for the switch, or why not.
public enum CryptogramVerdict: Sendable, Hashable {
    case valid(pan: PAN, tokenID: Int64, keyIndex: LimitedUseKeyIndex)
    /// `responseCode` is what the switch answers the POS with.
    case declined(responseCode: String, reason: String)
}

extension TokenService {
    /// Which IMK (by name in the key component) and cloud profile a bank's tokens use.
    public func setBankKeys(bank: String, imkName: String, profile: String = "cloud") async throws {
        try await db.transaction { tx in
            try await tx.raw("INSERT INTO tsp_bank_keys (bank_id, imk_name, profile) VALUES (\(bind: bank), \(bind: imkName), \(bind: profile))").run()
        }
    }

    /// Binds a device public key (P-256) to a token; keys are encrypted to it.
    public func bindDevice(tokenID: Int64, publicKey: P256.KeyAgreement.PublicKey) async throws {
        let raw = Data(publicKey.x963Representation)
        try await db.transaction { tx in
            try await tx.raw("INSERT INTO tsp_device_keys (token_id, public_key) VALUES (\(bind: tokenID), \(bind: raw))").run()
        }
    }

    /// Issues `count` new limited-use keys for an active token, each encrypted to its device.
    /// The keys are derived and sealed before the unit, from what is committed (a key agreement
    /// and a derivation a key: on SQLite's only writer they had been most of a replenishment's
    /// time); the unit reads the token again and writes them only if what they were made from
    /// still holds — the token active, its device key, its bank's key and the last sequence
    /// issued — and otherwise makes them again inside it.
    public func issueKeys(tokenID: Int64, count: Int, limits: LimitedUseKeyLimits = LimitedUseKeyLimits(), now: Date = Date()) async throws -> [IssuedKey] {
        let stamp = UTCTime(now).iso8601
        let early = try await keyIssue(tokenID: tokenID, count: count, now: now, on: db.sql)
        let engine = db.engine
        return try await db.transaction { tx in
            if engine == .postgres {
                // The token locked first, so that two issues for it take turns: a statement that
                // waits for a lock sees the other tables as they were when it started, so the
                // basis (the last sequence among it) is read after, by a statement of its own.
                _ = try await tx.first("SELECT id FROM tsp_tokens WHERE id = \(bind: tokenID) FOR UPDATE")
            }
            guard let row = try await tx.first(Self.issueRead(tokenID)) else { throw LifecycleError.unknownToken }
            let batch = if let early, try Self.issueBasis(row) == early.basis { early }
                else { try await self.keyIssue(row, count: count, now: now, on: tx) }
            // The batch in one statement.
            var statement: Statement =
                "INSERT INTO tsp_luks (token_id, generation_hour, sequence, max_transactions, ttl_seconds, max_amount, uses, cumulative, state, issued_at) VALUES "
            for (i, index) in batch.indices.enumerated() {
                statement = statement + (i == 0 ? "" : ", ") + """
                    (\(bind: tokenID), \(bind: Int64(index.generationHour)), \(bind: Int(index.sequence)), \(bind: limits.maxTransactions),
                     \(bind: Int64(limits.timeToLive)), \(bind: limits.maxCumulativeAmount), 0, 0, 'issued', \(bind: stamp))
                    """
            }
            try await tx.run(statement)
            return zip(batch.indices, batch.sealed).map { IssuedKey(index: $0, sealedKey: $1, limits: limits) }
        }
    }

    /// What a batch of keys is made from; the unit that writes them compares it.
    struct IssueBasis: Equatable {
        let devicePublicKey: Data
        let imkName: String
        let profile: String
        let lastSequence: Int
    }

    /// Keys made for a token and what they were made from.
    struct KeyIssue {
        let basis: IssueBasis
        let indices: [LimitedUseKeyIndex]
        let sealed: [[UInt8]]
    }

    static func issueRead(_ tokenID: Int64) -> Statement {
        """
        SELECT t.state, t.token_sealed, t.data_key_id, t.token_last4, d.public_key, k.imk_name, k.profile,
               (SELECT CAST(COALESCE(MAX(sequence), 0) AS BIGINT) FROM tsp_luks WHERE token_id = t.id) AS last_sequence
        FROM tsp_tokens t JOIN tsp_device_keys d ON d.token_id = t.id JOIN tsp_bank_keys k ON k.bank_id = t.bank_id
        WHERE t.id = \(bind: tokenID)
        """
    }

    static func issueBasis(_ row: any SQLRow) throws -> IssueBasis {
        guard try row.decode(column: "state", as: String.self) == TokenState.active.rawValue else {
            throw StorageError("keys are issued only to active tokens")
        }
        return IssueBasis(devicePublicKey: try row.decode(column: "public_key", as: Data.self), imkName: try row.decode(column: "imk_name", as: String.self),
                          profile: try row.decode(column: "profile", as: String.self), lastSequence: try row.decode(column: "last_sequence", as: Int.self))
    }

    /// Derives and seals the keys to the token's device, from what `db` reads; nil when there
    /// is no such token, or no device or bank key for it.
    func keyIssue(tokenID: Int64, count: Int, now: Date, on db: any SQLDatabase) async throws -> KeyIssue? {
        guard let row = try await db.first(Self.issueRead(tokenID)) else { return nil }
        return try await keyIssue(row, count: count, now: now, on: db)
    }

    /// Derives and seals the keys from the token's row of ``issueRead(_:)`` (`db` opens its
    /// vault entry).
    func keyIssue(_ row: any SQLRow, count: Int, now: Date, on db: any SQLDatabase) async throws -> KeyIssue {
        let basis = try Self.issueBasis(row)
        guard let profile = CryptogramProfile.named(basis.profile) else { throw StorageError("unknown profile") }
        let device = try P256.KeyAgreement.PublicKey(x963Representation: basis.devicePublicKey)
        let token = try await vault.openToken(row, db)
        let indices = (1...count).map { LimitedUseKeyIndex(generatedAt: now, sequence: UInt16(truncatingIfNeeded: basis.lastSequence + $0)) }
        let sealed = try keys.issueLimitedUseKeys(imk: basis.imkName, profile: profile, pan: token, psn: "01", indices: indices, device: device)
        return KeyIssue(basis: basis, indices: indices, sealed: sealed)
    }

    /// Checks a cloud cryptogram for the switch: the token is known and active, the key index
    /// in the IAD was issued to this token (and so this device), the key's limits hold with this
    /// transaction, the ATC was never seen for this token, and the ARQC verifies in the key
    /// component. Only then does the real card number come back. The key's use is recorded in
    /// the same transaction, so a replay finds it.
    public func validate(_ check: CryptogramCheck) async throws -> CryptogramVerdict {
        let hash = try lookupHash(check)
        return try await db.transaction { tx in try await self.validate(check, hash: hash, in: tx) }
    }

    /// As ``validate(_:)``, inside a transaction the caller holds on this service's database —
    /// the switch folds the check into the unit that records the request when both share one.
    public func validate(_ check: CryptogramCheck, in tx: any SQLDatabase) async throws -> CryptogramVerdict {
        try await validate(check, hash: try lookupHash(check), in: tx)
    }

    /// As ``validate(_:in:)`` with the token's keyed hash (``lookupHash(_:)``) computed before
    /// the caller's transaction, to keep the transaction short.
    public func validate(_ check: CryptogramCheck, lookup: Data, in tx: any SQLDatabase) async throws -> CryptogramVerdict {
        try await validate(check, hash: lookup, in: tx)
    }

    /// The keyed hash the check's token is found by.
    public func lookupHash(_ check: CryptogramCheck) throws -> Data { try vault.lookupHash(check.token.digits) }

    /// Whether this service keeps its data in `database` (so a caller may share its transactions).
    public func uses(_ database: Database) -> Bool { db === database }

    func validate(_ check: CryptogramCheck, hash: Data, in tx: any SQLDatabase) async throws -> CryptogramVerdict {
        switch try await read(check, hash: hash, on: tx) {
        case .declined(let code, let reason): return .declined(responseCode: code, reason: reason)
        case .verified(let verified): return try await record(verified, in: tx)
        }
    }

    /// Reads and verifies a cryptogram from what is committed, recording nothing: the switch
    /// does this before its unit and records the use inside it (``record(_:in:)``), so the
    /// database's one writer (SQLite) or the unit's round trips (PostgreSQL) carry only the
    /// writes. What could change in between — the ATC seen, the key used up, the token
    /// suspended — is checked again by the writes themselves.
    public func read(_ check: CryptogramCheck, lookup: Data) async throws -> CryptogramReading {
        try await read(check, hash: lookup, on: db.sql)
    }

    func read(_ check: CryptogramCheck, hash: Data, on db: any SQLDatabase) async throws -> CryptogramReading {
        let keys = Self.cryptogramKeys(check)
        // The token with its vault entry and bank key, the key it names and whether its ATC was
        // seen before, in one statement.
        let row = try await db.first("""
            SELECT \(Self.cryptogramColumns)
            FROM (SELECT \(bind: hash) AS hash, \(bind: keys.atc) AS atc, \(bind: keys.hour) AS hour, \(bind: keys.sequence) AS sequence) q
            \(Self.cryptogramJoins)
            """)
        return try await reading(check, row: row, on: db)
    }

    /// What ``reading(_:row:on:)`` reads, as the columns of a SELECT from `q`
    /// (``cryptogramJoins``). Whether the ATC was seen is a probe of the ATCs' key with LIMIT:
    /// PostgreSQL may turn an EXISTS into a hash of the whole table, built again for every
    /// statement, when its statistics say the table is small (with many rows of `q`, it did:
    /// 7,576 ATCs read for 3 cryptograms).
    public static let cryptogramColumns: Statement = """
        t.id, t.state, t.token_expiry, v.pan_sealed, v.data_key_id, v.par, k.imk_name, k.profile,
        l.id AS luk_id, l.max_transactions, l.ttl_seconds, l.max_amount, l.uses, l.cumulative, l.state AS luk_state,
        COALESCE((SELECT 1 FROM tsp_atcs a WHERE a.token_id = t.id AND a.atc = q.atc LIMIT 1), 0) AS atc_seen
        """

    /// The count of changes to what a reading decides from the token and no write of a sale
    /// changes — its expiry and bank, its vault entry, its bank's key names (kept by triggers,
    /// migration 2007) — as text. A caller that verifies from a row it read before selects it
    /// with the row, in the same statement, and in its write compares it with the count then.
    /// The rest its writes check themselves: the token's state, the ATC unseen, the key's state,
    /// count and amount against its limits (which, with its time to live, are never changed
    /// once it is issued).
    public static let readingVersion: Statement = "(SELECT n FROM tsp_changes WHERE id = 1)::text"

    /// The token's issued keys after the one `q` names (`q.hour`, `q.sequence`), up to eight in
    /// the order a phone uses them, as text: `id:hour:sequence:max_transactions:ttl_seconds:
    /// max_amount:uses:cumulative`, comma-separated (NULL for none) — for a caller that keeps a
    /// token's row to verify its next cryptograms from (``LimitedUseKeyRow``). A range of the
    /// keys' unique index, whatever the token's history.
    public static let nextKeysColumn: SQLQueryString = """
        (SELECT string_agg(concat_ws(':', n.id, n.generation_hour, n.sequence, n.max_transactions, n.ttl_seconds, n.max_amount, n.uses, n.cumulative), ',')
         FROM (SELECT * FROM tsp_luks n WHERE n.token_id = t.id AND (n.generation_hour, n.sequence) > (q.hour, q.sequence) AND n.state = 'issued'
               ORDER BY n.generation_hour, n.sequence LIMIT 8) n)
        """

    /// The columns of ``cryptogramColumns`` that ``reading(_:row:on:)`` reads of the token,
    /// its vault entry and its bank's keys (the rest are its limited-use key's,
    /// ``LimitedUseKeyRow/columns``).
    public static let tokenColumnNames: Set<String> = ["id", "state", "token_expiry", "pan_sealed", "data_key_id", "par", "imk_name", "profile"]

    /// The joins after a source `q` with columns `hash` (``lookupHash(_:)``), `atc`, `hour` and
    /// `sequence` (the IAD's key index; 0 and -1 when it does not parse, which finds no key):
    /// a row for every `q`, the token's columns NULL when no token has the hash. A caller
    /// reading many cryptograms at once (the switch, on PostgreSQL) makes `q` of arrays.
    public static let cryptogramJoins: Statement = """
        LEFT JOIN tsp_tokens t ON t.token_hash = q.hash LEFT JOIN tsp_vault v ON v.id = t.vault_id
        LEFT JOIN tsp_bank_keys k ON k.bank_id = t.bank_id
        LEFT JOIN tsp_luks l ON l.token_id = t.id AND l.generation_hour = q.hour AND l.sequence = q.sequence
        """

    /// The `atc`, `hour` and `sequence` of ``cryptogramJoins`` for a check.
    public static func cryptogramKeys(_ check: CryptogramCheck) -> (atc: Int64, hour: Int64, sequence: Int64) {
        let index = (try? CloudIAD(bytes: check.data.iad))?.keyIndex
        return (Int64(check.data.atc[0]) << 8 | Int64(check.data.atc[1]), Int64(index?.generationHour ?? 0), index.map { Int64($0.sequence) } ?? -1)
    }

    /// Checks a cryptogram against its token's row of ``cryptogramColumns`` (nil or a NULL
    /// token: no such token), recording nothing: the token's state and expiry, the key the IAD
    /// names and its limits, the ATC unseen, the ARQC. `db` opens the vault entry (its data
    /// key, when not cached).
    public func reading(_ check: CryptogramCheck, row: (any SQLRow)?, on db: any SQLDatabase) async throws -> CryptogramReading {
        let keys = self.keys, vault = self.vault
        // The IAD names the limited-use key; one that does not parse is refused after the
        // token's own checks, as before, and finds no key.
        let iad: CloudIAD?, iadError: (any Error)?
        do { (iad, iadError) = (try CloudIAD(bytes: check.data.iad), nil) } catch { (iad, iadError) = (nil, error) }
        let index = iad?.keyIndex
        let atc = Int(check.data.atc[0]) << 8 | Int(check.data.atc[1])
        guard let token = row, let tokenID = try token.decode(column: "id", as: Int64?.self) else {
            return .declined(responseCode: "14", reason: "unknown token")
        }
        let state = try token.decode(column: "state", as: String.self)
        guard state == TokenState.active.rawValue else { return Self.inactive(state) }
        // Good through the last day of its month (YYMM), as a card's expiry is.
        let expiry = try token.decode(column: "token_expiry", as: String.self)
        guard expiry >= UTCTime(check.now).yymm else { return .declined(responseCode: "54", reason: "token expired \(expiry)") }
        // (A bank without keys leaves the profile NULL.)
        guard let name = try token.decode(column: "profile", as: String?.self), let profile = CryptogramProfile.named(name) else {
            return .declined(responseCode: "96", reason: "no profile")
        }
        guard let iad, let index else { return .declined(responseCode: "05", reason: "IAD is not a cloud IAD: \(iadError.map { "\($0)" } ?? "")") }
        guard let lukID = try token.decode(column: "luk_id", as: Int64?.self), try token.decode(column: "luk_state", as: String?.self) == "issued" else {
            return .declined(responseCode: "05", reason: "key \(index) was not issued to this token")
        }
        let limits = LimitedUseKeyLimits(maxTransactions: try token.decode(column: "max_transactions", as: Int.self),
                                         timeToLive: TimeInterval(try token.decode(column: "ttl_seconds", as: Int64.self)),
                                         maxCumulativeAmount: try token.decode(column: "max_amount", as: Int64.self))
        let uses = try token.decode(column: "uses", as: Int.self) + 1
        let spend = max(check.data.amountAuthorised, check.transactionAmount ?? 0)
        let cumulative = try token.decode(column: "cumulative", as: Int64.self) + spend
        let violations = limits.violations(index: index, useCount: max(uses, Int(iad.useCount)), cumulativeAmount: cumulative, now: check.now)
        if let first = violations.first { return .declined(responseCode: "05", reason: "limited-use key: \(first)") }
        if try token.decode(column: "atc_seen", as: Int.self) != 0 {
            return .declined(responseCode: "05", reason: "ATC \(atc) already used")
        }
        let pan = try await vault.openCard(token, db)
        let ok = try keys.verifyARQC(imk: try token.decode(column: "imk_name", as: String.self), profile: profile, pan: check.token, psn: check.psn,
                                     data: check.data, arqc: check.arqc)
        guard ok else { return .declined(responseCode: "05", reason: "cryptogram does not verify") }
        return .verified(VerifiedCryptogram(pan: pan, tokenID: tokenID, keyIndex: index, keyID: lukID, atc: atc,
                                            amountAuthorised: check.data.amountAuthorised, spend: spend, stamp: UTCTime(check.now).iso8601))
    }

    /// Records a verified cryptogram's ATC and its key's use inside the caller's unit on this
    /// service's database. Each write checks again what the reading saw: the ATC is recorded only
    /// for a token still active and only once (a replay in between finds it); the key's use is
    /// counted only while the key's count and amount still allow it.
    public func record(_ verified: VerifiedCryptogram, in tx: any SQLDatabase) async throws -> CryptogramVerdict {
        if db.engine == .postgres {
            let row = try await tx.raw("WITH " + recording(verified, after: nil) + " SELECT " + Self.recordingColumns(verified)).first()!
            return try verdict(verified, row: row)
        }
        let seen = try await tx.changes("""
            INSERT INTO tsp_atcs (token_id, atc, seen_at, amount, key_sequence)
            SELECT \(bind: verified.tokenID), \(bind: verified.atc), \(bind: verified.stamp), \(bind: verified.amountAuthorised), \(bind: Int(verified.keyIndex.sequence))
            WHERE EXISTS (SELECT 1 FROM tsp_tokens WHERE id = \(bind: verified.tokenID) AND state = 'active')
            ON CONFLICT DO NOTHING
            """) > 0
        let used = seen ? try await tx.changes(Self.keyUse(verified, after: nil)) > 0 : false
        let state = seen ? TokenState.active.rawValue
            : try await tx.raw("SELECT state FROM tsp_tokens WHERE id = \(bind: verified.tokenID)").first()?.decode(column: "state", as: String.self)
        return Self.verdict(verified, tokenState: state, atcRecorded: seen, keyUsed: used)
    }

    /// ``record(_:in:)`` as parts of a caller's PostgreSQL `WITH` (`seen`, `used`): the caller
    /// folds the token's writes into the one statement that records its request. `after` names
    /// a part of the caller's that yields a row only when the request is new; nothing is recorded
    /// without it. Read the outcome with ``recordingColumns(_:)`` and ``verdict(_:row:)``.
    public func recording(_ verified: VerifiedCryptogram, after source: String?) -> SQLQueryString {
        """
        seen AS (
            INSERT INTO tsp_atcs (token_id, atc, seen_at, amount, key_sequence)
            SELECT \(bind: verified.tokenID), \(bind: verified.atc), \(bind: verified.stamp), \(bind: verified.amountAuthorised), \(bind: Int(verified.keyIndex.sequence))
            \(unsafeRaw: source.map { "FROM \($0) " } ?? "")WHERE EXISTS (SELECT 1 FROM tsp_tokens WHERE id = \(bind: verified.tokenID) AND state = 'active')
            ON CONFLICT DO NOTHING RETURNING atc),
        used AS (\(Self.keyUse(verified, after: "seen")) RETURNING id)
        """
    }

    /// ``recording(_:after:)`` for many verified cryptograms at once (PostgreSQL), as parts of a
    /// caller's `WITH` (`seen`, `used`): `source` names a part of the caller's with a row per
    /// cryptogram to record, its columns `token_id`, `atc`, `stamp`, `amount_authorised`,
    /// `key_sequence`, `key_id` and `spend` (``VerifiedCryptogram/recordingValues``). Each write
    /// checks again what the reading saw, as one cryptogram's do. Select
    /// ``recordedManyCheck(count:)``: the statement fails whole unless every one was recorded
    /// (rows that touch the same key twice count once, and fail it too).
    public static func recordingMany(from source: String) -> Statement {
        """
        seen AS (
            INSERT INTO tsp_atcs (token_id, atc, seen_at, amount, key_sequence)
            SELECT s.token_id, s.atc, s.stamp, s.amount_authorised, s.key_sequence FROM \(unsafeRaw: source) s
            WHERE (SELECT state FROM tsp_tokens WHERE id = s.token_id) = 'active'
            ON CONFLICT DO NOTHING RETURNING token_id, atc),
        used AS (
            UPDATE tsp_luks SET uses = uses + 1, cumulative = cumulative + s.spend FROM \(unsafeRaw: source) s
            WHERE tsp_luks.id = s.key_id AND tsp_luks.state = 'issued' AND tsp_luks.uses < tsp_luks.max_transactions
                  AND tsp_luks.cumulative + s.spend <= tsp_luks.max_amount
            RETURNING tsp_luks.id)
        """
    }

    /// The condition, for ``recordingMany(from:)``'s caller, that all `count` were recorded (the
    /// count a bind: one statement, one plan, whatever the batch).
    public static func recordedManyCheck(count: Int) -> Statement {
        "(SELECT COUNT(*) FROM seen) = \(bind: count) AND (SELECT COUNT(*) FROM used) = \(bind: count)"
    }

    /// The columns ``verdict(_:row:)`` reads, for the caller's final SELECT.
    public static func recordingColumns(_ verified: VerifiedCryptogram) -> SQLQueryString {
        """
        (SELECT COUNT(*) FROM seen) AS atc_recorded, (SELECT COUNT(*) FROM used) AS key_used,
        (SELECT state FROM tsp_tokens WHERE id = \(bind: verified.tokenID)) AS token_state
        """
    }

    /// The verdict from the columns of ``recordingColumns(_:)``.
    public func verdict(_ verified: VerifiedCryptogram, row: any SQLRow) throws -> CryptogramVerdict {
        Self.verdict(verified, tokenState: try row.decode(column: "token_state", as: String?.self),
                     atcRecorded: try row.decode(column: "atc_recorded", as: Int.self) > 0, keyUsed: try row.decode(column: "key_used", as: Int.self) > 0)
    }

    /// The key's use counted, only while its count and amount allow (and, with `after`, only
    /// when that part yielded a row). Without RETURNING: SQLite counts the row written
    /// (`changes`), a PostgreSQL `WITH` adds `RETURNING id` to count it.
    static func keyUse(_ verified: VerifiedCryptogram, after source: String?) -> Statement {
        """
        UPDATE tsp_luks SET uses = uses + 1, cumulative = cumulative + \(bind: verified.spend)
        WHERE id = \(bind: verified.keyID) AND state = 'issued' AND uses < max_transactions AND cumulative + \(bind: verified.spend) <= max_amount\(unsafeRaw: source.map { " AND EXISTS (SELECT 1 FROM \($0))" } ?? "")
        """
    }

    static func verdict(_ verified: VerifiedCryptogram, tokenState: String?, atcRecorded: Bool, keyUsed: Bool) -> CryptogramVerdict {
        guard tokenState == TokenState.active.rawValue else {
            if case .declined(let code, let reason) = inactive(tokenState ?? "unknown") { return .declined(responseCode: code, reason: reason) }
            return .declined(responseCode: "14", reason: "unknown token")
        }
        guard atcRecorded else { return .declined(responseCode: "05", reason: "ATC \(verified.atc) already used") }
        guard keyUsed else { return .declined(responseCode: "05", reason: "limited-use key \(verified.keyIndex): its limits were reached meanwhile") }
        return .valid(pan: verified.pan, tokenID: verified.tokenID, keyIndex: verified.keyIndex)
    }

    static func inactive(_ state: String) -> CryptogramReading {
        .declined(responseCode: state == "suspended" ? "62" : "14", reason: "token is \(state)")
    }
}

/// What reading a cryptogram concluded (``TokenService/read(_:lookup:)``) before anything is
/// recorded.
public enum CryptogramReading: Sendable {
    case declined(responseCode: String, reason: String)
    case verified(VerifiedCryptogram)
}

/// A cryptogram that verified against the token, its key and its limits as committed when it
/// was read; ``TokenService/record(_:in:)`` turns it into a verdict.
public struct VerifiedCryptogram: Sendable {
    public let pan: PAN
    public let tokenID: Int64
    public let keyIndex: LimitedUseKeyIndex
    let keyID: Int64
    let atc: Int
    let amountAuthorised: Int64
    /// What the use adds to the key's cumulative amount.
    let spend: Int64
    let stamp: String

    /// The columns ``TokenService/recordingMany(from:)`` reads, for a batch's arrays:
    /// `token_id`, `atc`, `amount_authorised`, `key_sequence`, `key_id`, `spend` (and `stamp`).
    public var recordingValues: (tokenID: Int64, atc: Int64, amountAuthorised: Int64, keySequence: Int64, keyID: Int64, spend: Int64, stamp: String) {
        (tokenID, Int64(atc), amountAuthorised, Int64(keyIndex.sequence), keyID, spend, stamp)
    }
}

/// A limited-use key's row as ``TokenService/reading(_:row:on:)`` reads it: the columns a caller
/// sets in a token's row it keeps, to verify a cryptogram made with this key from it.
public struct LimitedUseKeyRow: Sendable, Equatable {
    public let id: Int64, hour: Int64, sequence: Int64
    public let maxTransactions: Int64, ttlSeconds: Int64, maxAmount: Int64
    public var uses: Int64, cumulative: Int64

    /// The key a row of ``TokenService/cryptogramColumns`` holds (for the key `q` named), if
    /// issued.
    public init?(row: any SQLRow, hour: Int64, sequence: Int64) {
        guard let id = try? row.decode(column: "luk_id", as: Int64?.self), (try? row.decode(column: "luk_state", as: String?.self)) == "issued",
              let max = try? row.decode(column: "max_transactions", as: Int64.self), let ttl = try? row.decode(column: "ttl_seconds", as: Int64.self),
              let amount = try? row.decode(column: "max_amount", as: Int64.self), let uses = try? row.decode(column: "uses", as: Int64.self),
              let cumulative = try? row.decode(column: "cumulative", as: Int64.self) else { return nil }
        (self.id, self.hour, self.sequence, maxTransactions, ttlSeconds, maxAmount, self.uses, self.cumulative) = (id, hour, sequence, max, ttl, amount, uses, cumulative)
    }

    /// The keys of a ``TokenService/nextKeysColumn`` value.
    public static func list(_ text: String?) -> [LimitedUseKeyRow] {
        guard let text, !text.isEmpty else { return [] }
        return text.split(separator: ",").compactMap { entry in
            let f = entry.split(separator: ":").compactMap { Int64($0) }
            guard f.count == 8 else { return nil }
            return LimitedUseKeyRow(id: f[0], hour: f[1], sequence: f[2], maxTransactions: f[3], ttlSeconds: f[4], maxAmount: f[5], uses: f[6], cumulative: f[7])
        }
    }

    init(id: Int64, hour: Int64, sequence: Int64, maxTransactions: Int64, ttlSeconds: Int64, maxAmount: Int64, uses: Int64, cumulative: Int64) {
        (self.id, self.hour, self.sequence, self.maxTransactions, self.ttlSeconds, self.maxAmount, self.uses, self.cumulative) =
            (id, hour, sequence, maxTransactions, ttlSeconds, maxAmount, uses, cumulative)
    }

    /// The key's columns as a token's row holds them (its ATC not seen: the caller's write
    /// checks that).
    public var columns: [String: CapturedRow.Value] {
        ["luk_id": .integer(id), "luk_state": .text("issued"), "max_transactions": .integer(maxTransactions), "ttl_seconds": .integer(ttlSeconds),
         "max_amount": .integer(maxAmount), "uses": .integer(uses), "cumulative": .integer(cumulative), "atc_seen": .integer(0)]
    }
}
