import Foundation
import PaymentCore
import PaymentCrypto
import SQLKit
import Storage

/// One authorization request as the issuer receives it from the switch (real card number, the
/// PIN block already in the bank's zone).
public struct AuthorizationInput: Sendable {
    /// The original message's key: acquirer id, terminal id, STAN and transmission date-time.
    /// A repeat of the same key gets the first answer again.
    public var idempotencyKey: String
    public var pan: PAN
    public var amount: Amount
    public var pinBlock: EncryptedPINBlock?
    public var date: Date

    public init(idempotencyKey: String, pan: PAN, amount: Amount, pinBlock: EncryptedPINBlock? = nil, date: Date = Date()) {
        self.idempotencyKey = idempotencyKey
        self.pan = pan
        self.amount = amount
        self.pinBlock = pinBlock
        self.date = date
    }
}

public struct AuthorizationOutcome: Sendable, Hashable {
    public var decision: AuthorizationDecision
    /// True when this answer repeats an earlier one for the same key.
    public var isRepeat: Bool
}

extension IssuerHost {
    /// Authorizes: looks the card up, checks the PIN, runs the rules, and on approval posts
    /// the amount (customer account → network settlement payable) — all in one transaction, so
    /// an answer the switch sees is committed.
    public func authorize(_ input: AuthorizationInput) async throws -> AuthorizationOutcome {
        let lookup = try lookupHash(input.pan)
        return try await db.transaction { tx in try await self.authorize(input, lookup: lookup, in: tx) }
    }

    /// The keyed hash a card is found by.
    public func lookupHash(_ pan: PAN) throws -> Data {
        Data(try keys.keyedHash(Array(pan.digits.utf8), keyName: configuration.lookupKeyName))
    }

    /// Whether this host keeps its books in `database` (so a caller may share its transactions).
    public func uses(_ database: Database) -> Bool { db === database }

    /// As ``authorize(_:)``, inside a transaction the caller holds on this host's database — the
    /// switch books an in-process issuer's decision in the unit that records its answer when a
    /// decision made before the unit (``prepare(_:lookup:)``) no longer holds. The card and its
    /// account are locked on PostgreSQL until the end of the unit. An error is thrown, never
    /// answered, so the caller's unit rolls back whole.
    /// `lookup` is ``lookupHash(_:)`` of the card number, computed before the transaction.
    public func authorize(_ input: AuthorizationInput, lookup hash: Data, in tx: any SQLDatabase) async throws -> AuthorizationOutcome {
        try await book(try await prepare(input, hash: hash, on: tx, locking: true), in: tx)
    }

    /// Decides from what is committed, writing nothing: the card, its account, the day's totals
    /// and any earlier answer to the key read in one statement, the PIN verified, the rules run.
    /// ``book(_:in:)`` then writes the decision inside the caller's unit, checking that what it
    /// was made from still holds (the balance, the day's totals, the PIN tries, the key unused);
    /// if not it throws ``AuthorizationChanged`` and the caller decides again under locks with
    /// ``authorize(_:lookup:in:)``. The switch does this so that its unit carries only writes.
    public func prepare(_ input: AuthorizationInput, lookup hash: Data) async throws -> PreparedAuthorization {
        try await prepare(input, hash: hash, on: db.sql, locking: false)
    }

    func prepare(_ input: AuthorizationInput, hash: Data, on db: any SQLDatabase, locking: Bool) async throws -> PreparedAuthorization {
        let day = UTCTime(input.date).isoDate
        let now = IssuerHost.stamp(input.date)

        if locking, self.db.engine == .postgres {
            // The card and its account locked until the end of the unit, first: a statement that
            // waits for a lock sees the other tables as they were when it started, so the day's
            // totals and any earlier answer are read after it, by a statement of their own.
            _ = try await db.raw("""
                SELECT c.id FROM issuer_cards c JOIN issuer_accounts a ON a.id = c.account_id WHERE c.pan_hash = \(bind: hash) FOR UPDATE OF c, a
                """).first()
        }
        // The card, its bank's key names, its account, the day's totals so far and any earlier
        // answer to the same key, in one statement.
        guard let card = try await db.first("SELECT " + Self.cardRead(hash: hash, day: day, key: "\(bind: input.idempotencyKey)")) else {
            // No such card: a repeat gets the first answer, else 14.
            if let prior = try await db.raw("SELECT response_code, auth_code, reason FROM issuer_authorizations WHERE idempotency_key = \(bind: input.idempotencyKey)").first() {
                return PreparedAuthorization(input: input, decision: try IssuerHost.decision(prior), basis: nil)
            }
            return PreparedAuthorization(input: input, decision: .declined(.invalidCardNumber, reason: "no such card"),
                                         basis: .init(bank: "", card: nil, account: 0, balance: 0, todayTotal: 0, todayApprovals: 0, pinTries: nil, day: day, now: now))
        }
        return try decide(input, card: card, day: day)
    }

    /// What a decision is made from, as the columns and FROM of a SELECT (without the word):
    /// the card with `hash`, its bank's key names, its account, its totals on `day` and any
    /// earlier answer to `key` (an SQL expression: a bind, or a column of the caller's
    /// statement). Its columns are those ``decide(_:card:day:)`` reads; the card's id is
    /// `card_id`. A caller may read it within its own statement (the switch does, on PostgreSQL,
    /// in the statement that records the request: one round trip fewer).
    public static func cardRead(hash: Data, day: String, key: Statement) -> Statement {
        cardRead(hash: "\(bind: hash)", day: "\(bind: day)", key: key)
    }

    /// As ``cardRead(hash:day:key:)`` with each of the three an SQL expression: the switch reads
    /// many cards at once from arrays (`q.hash`, `q.day`, `q.key`).
    public static func cardRead(hash: Statement, day: Statement, key: Statement) -> Statement {
        """
        c.id AS card_id, c.bank_id, c.account_id, c.status, c.expiry, c.product, c.pin_method, c.pin_reference, c.pin_tries, c.per_transaction_limit,
               c.daily_limit, c.daily_count_limit, b.pin_key_name, b.pvk_name, a.balance, a.credit_limit, a.currency,
               COALESCE(d.total, 0) AS today_total, COALESCE(d.approvals, 0) AS today_approvals,
               p.response_code, p.auth_code, p.reason
        FROM issuer_cards c JOIN issuer_banks b ON b.id = c.bank_id JOIN issuer_accounts a ON a.id = c.account_id
             LEFT JOIN issuer_card_days d ON d.card_id = c.id AND d.day = \(day)
             LEFT JOIN issuer_authorizations p ON p.idempotency_key = \(key)
        WHERE c.pan_hash = \(hash)
        """
    }

    /// The columns of ``cardRead(hash:day:key:)``.
    public static let cardColumnNames: Set<String> = [
        "card_id", "bank_id", "account_id", "status", "expiry", "product", "pin_method", "pin_reference", "pin_tries", "per_transaction_limit",
        "daily_limit", "daily_count_limit", "pin_key_name", "pvk_name", "balance", "credit_limit", "currency", "today_total", "today_approvals",
        "response_code", "auth_code", "reason",
    ]

    /// The count of changes to what a decision reads from the card, its bank and its account
    /// and no booking changes — the card's status, expiry, product, PIN method and reference,
    /// limits and account, the bank's key names, the account's credit limit and currency (kept
    /// by triggers, migration 1004) — as text. A caller that decides from a row it read before
    /// selects it with the row, in the same statement, and in its write compares it with the
    /// count then: one lookup, where comparing the rows took a join of three tables (the
    /// balance, the day's totals and the PIN tries are checked by the booking itself). Any
    /// change to any card moves it, so a caller keeps the highest it has seen and decides
    /// nothing from rows read under a lower one.
    public static let cardVersion: Statement = "(SELECT n FROM issuer_changes WHERE id = 1)::text"

    /// Decides from a row of ``cardRead(hash:day:key:)`` read for `input` (its key) on `day`:
    /// the PIN verified, the rules run. Writes nothing; ``book(_:in:)`` writes the decision.
    public func decide(_ input: AuthorizationInput, card: any SQLRow, day: String) throws -> PreparedAuthorization {
        let utc = UTCTime(input.date)
        let month = utc.yymm
        let now = IssuerHost.stamp(input.date)
        // A repeat gets the first answer.
        if try card.decode(column: "response_code", as: String?.self) != nil {
            return PreparedAuthorization(input: input, decision: try IssuerHost.decision(card), basis: nil)
        }
        let cardID = try card.decode(column: "card_id", as: Int64.self)

        // PIN.
        let triesBefore = try card.decode(column: "pin_tries", as: Int.self)
        var pinTries: (before: Int, after: Int)?
        var pin = PINOutcome.notPresent
        if let block = input.pinBlock {
            if try card.decode(column: "pin_method", as: String.self) == "none" {
                pin = .notSet
            } else if triesBefore >= configuration.maximumPINTries {
                pin = .triesExceeded
            } else {
                let ok = try keys.verifyPIN(
                    block, zone: PINZone(keyName: try card.decode(column: "pin_key_name", as: String.self), format: .iso0, pan: input.pan),
                    against: PINReference(method: .visaPVV(pvkName: try card.decode(column: "pvk_name", as: String.self), pvki: 1),
                                          value: try card.decode(column: "pin_reference", as: String.self)))
                let after = ok ? 0 : triesBefore + 1
                pinTries = (triesBefore, after)
                pin = ok ? .verified : (after >= configuration.maximumPINTries ? .triesExceeded : .wrong)
            }
        }

        let balance = try card.decode(column: "balance", as: Int64.self)
        let todayTotal = try card.decode(column: "today_total", as: Int64.self), todayApprovals = try card.decode(column: "today_approvals", as: Int.self)
        let context = AuthorizationContext(
            status: CardStatus(rawValue: try card.decode(column: "status", as: String.self)) ?? .blocked,
            cardExpiry: try card.decode(column: "expiry", as: String.self), currentMonth: month, amount: input.amount.minorUnits,
            product: Product(rawValue: try card.decode(column: "product", as: String.self)) ?? .debit,
            balance: balance, creditLimit: try card.decode(column: "credit_limit", as: Int64.self),
            limits: CardLimits(perTransaction: try card.decode(column: "per_transaction_limit", as: Int64.self),
                               daily: try card.decode(column: "daily_limit", as: Int64.self),
                               dailyCount: try card.decode(column: "daily_count_limit", as: Int.self)),
            todayAmount: todayTotal, todayCount: todayApprovals, pin: pin)
        var decision = configuration.rules.evaluate(context) { IssuerHost.approvalCode() }
        if try card.decode(column: "currency", as: Int.self) != Int(input.amount.currency.numericCode) {
            decision = .declined(.invalidTransaction, reason: "currency differs from the account's")
        }
        return PreparedAuthorization(input: input, decision: decision, basis: .init(
            bank: try card.decode(column: "bank_id", as: String.self), card: cardID, account: try card.decode(column: "account_id", as: Int64.self),
            balance: balance, todayTotal: todayTotal, todayApprovals: todayApprovals, pinTries: pinTries, day: day, now: now))
    }

    /// Writes a prepared decision inside the caller's unit: the authorization (refused if the key
    /// was answered meanwhile), a changed PIN try count, and for an approval its two ledger
    /// entries, the account's balance and the card's day. Every write checks that what the
    /// decision was made from still holds; if one does not, ``AuthorizationChanged`` is thrown
    /// (on PostgreSQL the one statement fails whole with SQLSTATE 40001) and the caller's unit
    /// must roll back. A repeat writes nothing.
    public func book(_ prepared: PreparedAuthorization, in tx: any SQLDatabase) async throws -> AuthorizationOutcome {
        let outcome = AuthorizationOutcome(decision: prepared.decision, isRepeat: prepared.basis == nil)
        guard let basis = prepared.basis else { return outcome }
        if db.engine == .postgres {
            do {
                _ = try await tx.raw("WITH " + booking(prepared)! + " SELECT " + IssuerHost.bookedColumn(prepared)).first()
            } catch where IssuerHost.isChange(error) {
                throw AuthorizationChanged()
            }
            return outcome
        }
        let input = prepared.input, decision = prepared.decision
        let amount = input.amount.minorUnits
        // Each write must write its row: otherwise what the decision was made from has changed.
        func require(_ statement: Statement) async throws {
            guard try await tx.changes(statement) > 0 else { throw AuthorizationChanged() }
        }
        guard let authorization = try await tx.insertedID(
            IssuerHost.authorizationInsert(bank: basis.bank, key: input.idempotencyKey, card: basis.card, input: input, decision: decision,
                                           day: basis.day, now: basis.now) + " ON CONFLICT (idempotency_key) DO NOTHING"
        ) else { throw AuthorizationChanged() }
        if let tries = basis.pinTries, let card = basis.card { try await require(IssuerHost.pinTries(tries, card: card)) }
        guard decision.isApproved, let card = basis.card else { return outcome }
        try await IssuerHost.post(tx, bank: basis.bank, authorization: authorization, currency: input.amount.currency.numericCode, memo: "purchase", entries: [
            ("acct:\(basis.account)", amount), ("bank:\(basis.bank):network-payable", -amount),
        ], now: basis.now)
        try await require(IssuerHost.balance(basis, amount: amount, after: nil))
        try await require(IssuerHost.today(basis, card: card, amount: amount, after: nil))
        return outcome
    }

    /// ``book(_:in:)`` as parts of a caller's PostgreSQL `WITH` (`auth`, and as the decision
    /// needs `ledger`, `balance`, `today`, `pins`): the switch folds an in-process issuer's
    /// booking into the one statement that records its answer. Select ``bookedColumn(_:)`` in
    /// it: the statement then fails whole (SQLSTATE 40001, see ``isChange(_:)``) when what the
    /// decision was made from has changed. Nil for a repeat, which writes nothing.
    public func booking(_ prepared: PreparedAuthorization) -> SQLQueryString? {
        guard let basis = prepared.basis else { return nil }
        let input = prepared.input, decision = prepared.decision
        let amount = input.amount.minorUnits, currency = Int(input.amount.currency.numericCode)
        let insert = IssuerHost.authorizationInsert(bank: basis.bank, key: input.idempotencyKey, card: basis.card, input: input, decision: decision,
                                                    day: basis.day, now: basis.now)
        var parts: SQLQueryString = "auth AS (\(insert) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id)"
        if let tries = basis.pinTries, let card = basis.card { parts = parts + ", pins AS (\(IssuerHost.pinTries(tries, card: card)) RETURNING id)" }
        if decision.isApproved, let card = basis.card {
            parts = parts + """
                , ledger AS (
                    INSERT INTO issuer_ledger (bank_id, authorization_id, account, amount, currency, memo, created_at)
                    SELECT \(bind: basis.bank), auth.id, entry.account, entry.amount, \(bind: currency), 'purchase', \(bind: basis.now)
                    FROM auth, (VALUES (\(bind: "acct:\(basis.account)"), \(bind: amount)), (\(bind: "bank:\(basis.bank):network-payable"), \(bind: -amount))) AS entry (account, amount)),
                balance AS (\(IssuerHost.balance(basis, amount: amount, after: "auth")) RETURNING id),
                today AS (\(IssuerHost.today(basis, card: card, amount: amount, after: "auth")) RETURNING card_id)
                """
        }
        return parts
    }

    /// The check to select in a statement holding ``booking(_:)``: true, or the statement fails.
    public static func bookedColumn(_ prepared: PreparedAuthorization) -> SQLQueryString {
        guard let basis = prepared.basis else { return "true AS booked" }
        var written = "(SELECT COUNT(*) FROM auth) = 1"
        if basis.pinTries != nil, basis.card != nil { written += " AND (SELECT COUNT(*) FROM pins) = 1" }
        if prepared.decision.isApproved, basis.card != nil { written += " AND (SELECT COUNT(*) FROM balance) = 1 AND (SELECT COUNT(*) FROM today) = 1" }
        return SQLQueryString("issuer_unchanged(\(written)) AS booked")
    }

    /// ``booking(_:)`` for many prepared decisions at once (PostgreSQL), as parts of a caller's
    /// `WITH` (`auth`, `pins`, `ledger`, `balance`, `today`): `source` names a part of the
    /// caller's with a row per decision, its columns those of ``PreparedAuthorization/bookingValues``
    /// (`bank_id`, `idempotency_key`, `card_id`, `amount`, `currency`, `response_code`,
    /// `auth_code`, `reason`, `day`, `state`, `created_at`, `approved`, `account_id`, `balance`,
    /// `today_total`, `today_approvals`, `pin_before`, `pin_after`). Every write checks what its
    /// decision was made from, as one decision's do; select ``bookedManyCheck(_:)``, and the
    /// statement fails whole (SQLSTATE 40001) unless every decision was booked as made. Two
    /// decisions on one account or card in one batch cannot both be checked: the statement then
    /// fails too (40001, or 21000 for the card's day), and the caller books them one by one.
    public static func bookingMany(from source: String) -> Statement {
        """
        auth AS (
            INSERT INTO issuer_authorizations (bank_id, idempotency_key, card_id, amount, currency, response_code, auth_code, reason, day, state, created_at)
            SELECT s.bank_id, s.idempotency_key, s.card_id, s.amount, s.currency, s.response_code, s.auth_code, s.reason, s.day, s.state, s.created_at
            FROM \(unsafeRaw: source) s
            ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key),
        pins AS (
            UPDATE issuer_cards SET pin_tries = s.pin_after FROM \(unsafeRaw: source) s
            WHERE issuer_cards.id = s.card_id AND s.pin_before IS NOT NULL AND issuer_cards.pin_tries = s.pin_before RETURNING issuer_cards.id),
        ledger AS (
            INSERT INTO issuer_ledger (bank_id, authorization_id, account, amount, currency, memo, created_at)
            SELECT s.bank_id, auth.id, entry.account, entry.amount, s.currency, 'purchase', s.created_at
            FROM \(unsafeRaw: source) s JOIN auth ON auth.idempotency_key = s.idempotency_key,
                 LATERAL (VALUES ('acct:' || s.account_id, s.amount), ('bank:' || s.bank_id || ':network-payable', -s.amount)) AS entry (account, amount)
            WHERE s.approved),
        balance AS (
            UPDATE issuer_accounts SET balance = issuer_accounts.balance - s.amount FROM \(unsafeRaw: source) s
            WHERE issuer_accounts.id = s.account_id AND s.approved AND issuer_accounts.balance = s.balance RETURNING issuer_accounts.id),
        today AS (
            INSERT INTO issuer_card_days (card_id, day, total, approvals) SELECT s.card_id, s.day, s.amount, 1 FROM \(unsafeRaw: source) s WHERE s.approved
            ON CONFLICT (card_id, day) DO UPDATE SET total = issuer_card_days.total + excluded.total, approvals = issuer_card_days.approvals + 1
                WHERE (issuer_card_days.total, issuer_card_days.approvals) = (
                    SELECT s.today_total, s.today_approvals FROM \(unsafeRaw: source) s WHERE s.card_id = excluded.card_id AND s.day = excluded.day)
            RETURNING card_id)
        """
    }

    /// The check to select in a statement holding ``bookingMany(from:)`` for `prepared`: true,
    /// or the statement fails.
    public static func bookedManyCheck(_ prepared: [PreparedAuthorization]) -> Statement {
        let pins = prepared.filter { $0.basis?.pinTries != nil && $0.basis?.card != nil }.count
        let approved = prepared.filter { $0.decision.isApproved && $0.basis?.card != nil }.count
        // The counts as binds: one statement, one plan, whatever the batch.
        return """
            issuer_unchanged((SELECT COUNT(*) FROM auth) = \(bind: prepared.count) AND (SELECT COUNT(*) FROM pins) = \(bind: pins)
                AND (SELECT COUNT(*) FROM balance) = \(bind: approved) AND (SELECT COUNT(*) FROM today) = \(bind: approved)) AS booked
            """
    }

    /// Whether `error` says a prepared decision no longer held when it was booked.
    public static func isChange(_ error: any Error) -> Bool { error is AuthorizationChanged || isSerializationFailure(error) }

    // The booking's checked writes, without RETURNING: on SQLite the rows written are counted
    // (`changes`), and a PostgreSQL `WITH` adds RETURNING to count them.

    static func pinTries(_ tries: (before: Int, after: Int), card: Int64) -> Statement {
        "UPDATE issuer_cards SET pin_tries = \(bind: tries.after) WHERE id = \(bind: card) AND pin_tries = \(bind: tries.before)"
    }

    static func balance(_ basis: PreparedAuthorization.Basis, amount: Int64, after source: String?) -> Statement {
        """
        UPDATE issuer_accounts SET balance = balance - \(bind: amount) WHERE id = \(bind: basis.account) AND balance = \(bind: basis.balance)\(unsafeRaw: source.map { " AND EXISTS (SELECT 1 FROM \($0))" } ?? "")
        """
    }

    static func today(_ basis: PreparedAuthorization.Basis, card: Int64, amount: Int64, after source: String?) -> Statement {
        """
        INSERT INTO issuer_card_days (card_id, day, total, approvals) SELECT \(bind: card), \(bind: basis.day), \(bind: amount), 1\(unsafeRaw: source.map { " FROM \($0)" } ?? " WHERE true")
        ON CONFLICT (card_id, day) DO UPDATE SET total = issuer_card_days.total + excluded.total, approvals = issuer_card_days.approvals + 1
            WHERE issuer_card_days.total = \(bind: basis.todayTotal) AND issuer_card_days.approvals = \(bind: basis.todayApprovals)
        """
    }

    /// Reverses an approved authorization named by its original key: the posting is undone
    /// and the hold released. Repeats answer the same. An unknown key answers 25 and is recorded
    /// as reversed: a reversal can overtake its request (a network that timed out reverses at
    /// once), and the request that arrives after it is then declined (12) and books nothing.
    public func reverse(idempotencyKey: String, date: Date = Date()) async throws -> ResponseCode {
        // Twice at most: on PostgreSQL the request may be recorded between the look-up and the
        // reversal's own record, and is then reversed as found.
        for _ in 0..<2 {
            if let code = try await reverseOnce(idempotencyKey: idempotencyKey, date: date) { return code }
        }
        throw AuthorizationChanged()
    }

    /// One try of ``reverse(idempotencyKey:date:)``; nil when the key was taken meanwhile.
    func reverseOnce(idempotencyKey: String, date: Date) async throws -> ResponseCode? {
        let now = IssuerHost.stamp(date)
        let forUpdate = db.engine.forUpdate
        return try await db.transaction { tx in
            guard let auth = try await tx.raw("""
                SELECT id, bank_id, card_id, amount, currency, state, day FROM issuer_authorizations WHERE idempotency_key = \(bind: idempotencyKey)\(unsafeRaw: forUpdate)
                """).first() else {
                let recorded = try await tx.raw("""
                    INSERT INTO issuer_authorizations (bank_id, idempotency_key, card_id, amount, currency, response_code, auth_code, reason, day, state, created_at)
                    VALUES ('', \(bind: idempotencyKey), NULL, 0, 0, '12', NULL, 'reversed before its request arrived', \(bind: UTCTime(date).isoDate), 'reversed', \(bind: now))
                    ON CONFLICT (idempotency_key) DO NOTHING RETURNING id
                    """).first() != nil
                return recorded ? .unableToLocate : nil
            }
            guard try auth.decode(column: "state", as: String.self) == "approved" else { return .approved }
            let authID = try auth.decode(column: "id", as: Int64.self)
            let bank = try auth.decode(column: "bank_id", as: String.self)
            let amount = try auth.decode(column: "amount", as: Int64.self)
            let cardID = try auth.decode(column: "card_id", as: Int64.self)
            let accountID = try await tx.raw("SELECT account_id FROM issuer_cards WHERE id = \(bind: cardID)").first()!.decode(column: "account_id", as: Int64.self)
            try await IssuerHost.post(tx, bank: bank, authorization: authID, currency: UInt16(try auth.decode(column: "currency", as: Int.self)), memo: "reversal", entries: [
                ("acct:\(accountID)", -amount), ("bank:\(bank):network-payable", amount),
            ], now: now)
            try await tx.raw("UPDATE issuer_accounts SET balance = balance + \(bind: amount) WHERE id = \(bind: accountID)").run()
            try await tx.raw("UPDATE issuer_authorizations SET state = 'reversed' WHERE id = \(bind: authID)").run()
            try await IssuerHost.count(tx, card: cardID, day: try auth.decode(column: "day", as: String.self), amount: -amount, approvals: -1)
            return .approved
        }
    }

    /// A stand-in advice (0120): the network approved on the issuer's behalf while the issuer
    /// was silent, within the stand-in limit the issuer gave it, so the issuer books it — the
    /// rules do not run again. Idempotent on the key: an approval already booked (the issuer did
    /// answer, late) stays as it is; a decline recorded late becomes the approval; an unknown key
    /// is recorded approved. Returns false when the card is unknown.
    public func advise(_ input: AuthorizationInput, authorizationCode: String) async throws -> Bool {
        let hash = try lookupHash(input.pan)
        let utc = UTCTime(input.date)
        let now = IssuerHost.stamp(input.date)
        return try await db.transaction { tx in
            let prior = try await tx.raw("SELECT id, state, day FROM issuer_authorizations WHERE idempotency_key = \(bind: input.idempotencyKey)").first()
            if let prior, try prior.decode(column: "state", as: String.self) != "declined" { return true }
            guard let card = try await tx.raw("SELECT id, bank_id, account_id FROM issuer_cards WHERE pan_hash = \(bind: hash)").first() else { return false }
            let cardID = try card.decode(column: "id", as: Int64.self)
            let bank = try card.decode(column: "bank_id", as: String.self)
            let accountID = try card.decode(column: "account_id", as: Int64.self)
            let authID: Int64
            if let prior {
                authID = try prior.decode(column: "id", as: Int64.self)
                try await tx.raw("""
                    UPDATE issuer_authorizations SET state = 'approved', response_code = '00', auth_code = \(bind: authorizationCode),
                        reason = 'stand-in advice (declined late)' WHERE id = \(bind: authID)
                    """).run()
            } else {
                authID = try await IssuerHost.record(tx, bank: bank, key: input.idempotencyKey, card: cardID, input: input,
                                                     decision: .approved(authorizationCode: authorizationCode), day: utc.isoDate, now: now)
                try await tx.raw("UPDATE issuer_authorizations SET reason = 'stand-in advice' WHERE id = \(bind: authID)").run()
            }
            let amount = input.amount.minorUnits
            try await IssuerHost.post(tx, bank: bank, authorization: authID, currency: input.amount.currency.numericCode, memo: "purchase (stand-in)", entries: [
                ("acct:\(accountID)", amount), ("bank:\(bank):network-payable", -amount),
            ], now: now)
            try await tx.raw("UPDATE issuer_accounts SET balance = balance - \(bind: amount) WHERE id = \(bind: accountID)").run()
            try await IssuerHost.count(tx, card: cardID, day: try prior?.decode(column: "day", as: String.self) ?? utc.isoDate, amount: amount, approvals: 1)
            return true
        }
    }

    /// Adds an approval (or, negative, takes a reversed one back) to the card's totals for `day`.
    static func count(_ tx: any SQLDatabase, card: Int64, day: String, amount: Int64, approvals: Int) async throws {
        try await tx.raw("""
            INSERT INTO issuer_card_days (card_id, day, total, approvals) VALUES (\(bind: card), \(bind: day), \(bind: amount), \(bind: approvals))
            ON CONFLICT (card_id, day) DO UPDATE SET total = issuer_card_days.total + excluded.total, approvals = issuer_card_days.approvals + excluded.approvals
            """).run()
    }

    @discardableResult
    static func record(_ tx: any SQLDatabase, bank: String, key: String, card: Int64?, input: AuthorizationInput,
                       decision: AuthorizationDecision, day: String, now: String) async throws -> Int64 {
        let row = try await tx.first(authorizationInsert(bank: bank, key: key, card: card, input: input, decision: decision, day: day, now: now)
                                     + " RETURNING id")
        return try row!.decode(column: "id", as: Int64.self)
    }

    /// The INSERT of an authorization row, for the caller to finish (conflict handling, RETURNING).
    static func authorizationInsert(bank: String, key: String, card: Int64?, input: AuthorizationInput, decision: AuthorizationDecision,
                                    day: String, now: String) -> Statement {
        let (code, authCode, reason) = decision.parts
        return """
            INSERT INTO issuer_authorizations (bank_id, idempotency_key, card_id, amount, currency, response_code, auth_code, reason, day, state, created_at)
            VALUES (\(bind: bank), \(bind: key), \(bind: card), \(bind: input.amount.minorUnits), \(bind: Int(input.amount.currency.numericCode)),
                    \(bind: code), \(bind: authCode), \(bind: reason), \(bind: day), \(bind: decision.isApproved ? "approved" : "declined"), \(bind: now))
            """
    }

    static func decision(_ row: any SQLRow) throws -> AuthorizationDecision {
        let code = try row.decode(column: "response_code", as: String.self)
        if code == "00" { return .approved(authorizationCode: try row.decode(column: "auth_code", as: String.self)) }
        return .declined(ResponseCode(rawValue: code) ?? .doNotHonour, reason: try row.decode(column: "reason", as: String.self))
    }

    /// Six characters from digits and capitals without I and O, uniformly: one draw below 34⁶
    /// (one call for random bytes, where a draw a character made six), written in base 34.
    static func approvalCode() -> String {
        var rng = SystemRandomNumberGenerator()
        return approvalCode(UInt64.random(in: 0..<approvalCodes, using: &rng))
    }

    static let approvalAlphabet = Array("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ".utf8)
    static let approvalCodes: UInt64 = 34 * 34 * 34 * 34 * 34 * 34

    /// The code numbered `n` (below ``approvalCodes``), most significant character first.
    static func approvalCode(_ n: UInt64) -> String {
        var n = n
        var code = [UInt8](repeating: 0, count: 6)
        for i in (0..<6).reversed() {
            code[i] = approvalAlphabet[Int(n % 34)]
            n /= 34
        }
        return String(decoding: code, as: UTF8.self)
    }
}

/// A decision made from what was committed (``IssuerHost/prepare(_:lookup:)``), with what it
/// was made from, for ``IssuerHost/book(_:in:)`` to write and check.
public struct PreparedAuthorization: Sendable {
    public let input: AuthorizationInput
    public let decision: AuthorizationDecision
    /// Nil for a repeat of an answered key (nothing to write).
    let basis: Basis?

    public var isRepeat: Bool { basis == nil }

    /// The values ``IssuerHost/bookingMany(from:)`` books, for a batch's arrays; nil for a repeat
    /// or a decision without a card (booked one by one).
    public var bookingValues: BookingValues? {
        guard let basis, let card = basis.card else { return nil }
        let (code, authCode, reason) = decision.parts
        return BookingValues(bank: basis.bank, idempotencyKey: input.idempotencyKey, card: card, amount: input.amount.minorUnits,
                             currency: Int64(input.amount.currency.numericCode), responseCode: code, authCode: authCode, reason: reason,
                             day: basis.day, approved: decision.isApproved, createdAt: basis.now, account: basis.account, balance: basis.balance,
                             todayTotal: basis.todayTotal, todayApprovals: Int64(basis.todayApprovals),
                             pinBefore: basis.pinTries.map { Int64($0.before) }, pinAfter: basis.pinTries.map { Int64($0.after) })
    }

    public struct BookingValues: Sendable {
        public let bank: String, idempotencyKey: String
        public let card: Int64, amount: Int64, currency: Int64
        public let responseCode: String, authCode: String?, reason: String, day: String
        public let approved: Bool
        public let createdAt: String
        public let account: Int64, balance: Int64, todayTotal: Int64, todayApprovals: Int64
        public let pinBefore: Int64?, pinAfter: Int64?
        public var state: String { approved ? "approved" : "declined" }
    }

    struct Basis: Sendable {
        let bank: String
        /// Nil for an unknown card (a decline recorded without one).
        let card: Int64?
        let account: Int64
        let balance: Int64
        let todayTotal: Int64
        let todayApprovals: Int
        /// The PIN try count read and the one to write, when a PIN was checked.
        let pinTries: (before: Int, after: Int)?
        let day: String
        let now: String
    }
}

/// What a prepared decision was made from changed before it was booked; decide again.
public struct AuthorizationChanged: Error, CustomStringConvertible {
    public var description: String { "the card's account, day or PIN tries changed, or the key was answered, after the decision was made" }
}

extension AuthorizationDecision {
    /// Response code, approval code and reason as stored.
    var parts: (String, String?, String) {
        switch self {
        case .approved(let c): ("00", c, "approved")
        case .declined(let rc, let why): (rc.rawValue, nil, why)
        }
    }
}
