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
    /// switch books an in-process issuer's decision in the unit that records its answer. An
    /// error is thrown, never answered, so the caller's unit rolls back whole.
    /// `lookup` is ``lookupHash(_:)`` of the card number, computed before the transaction.
    public func authorize(_ input: AuthorizationInput, lookup hash: Data, in tx: any SQLDatabase) async throws -> AuthorizationOutcome {
        let utc = UTCTime(input.date)
        let day = utc.isoDate
        let month = utc.yymm
        let now = IssuerHost.stamp(input.date)
        let engine = db.engine

        // The card, its bank's key names, its account (locked on PostgreSQL until the end of
        // the unit), the day's totals so far and any earlier answer to the same key, in one
        // statement.
        guard let card = try await tx.raw("""
            SELECT c.id, c.bank_id, c.account_id, c.status, c.expiry, c.product, c.pin_method, c.pin_reference, c.pin_tries, c.per_transaction_limit,
                   c.daily_limit, c.daily_count_limit, b.pin_key_name, b.pvk_name, a.balance, a.credit_limit, a.currency,
                   COALESCE(d.total, 0) AS today_total, COALESCE(d.approvals, 0) AS today_approvals,
                   p.response_code, p.auth_code, p.reason
            FROM issuer_cards c JOIN issuer_banks b ON b.id = c.bank_id JOIN issuer_accounts a ON a.id = c.account_id
                 LEFT JOIN issuer_card_days d ON d.card_id = c.id AND d.day = \(bind: day)
                 LEFT JOIN issuer_authorizations p ON p.idempotency_key = \(bind: input.idempotencyKey)
            WHERE c.pan_hash = \(bind: hash)\(unsafeRaw: engine.forUpdate(of: "a"))
            """).first() else {
            // No such card: a repeat gets the first answer, else 14.
            if let prior = try await tx.raw("SELECT response_code, auth_code, reason FROM issuer_authorizations WHERE idempotency_key = \(bind: input.idempotencyKey)").first() {
                return AuthorizationOutcome(decision: try IssuerHost.decision(prior), isRepeat: true)
            }
            let decision = AuthorizationDecision.declined(.invalidCardNumber, reason: "no such card")
            try await IssuerHost.record(tx, bank: "", key: input.idempotencyKey, card: nil, input: input, decision: decision, day: day, now: now)
            return AuthorizationOutcome(decision: decision, isRepeat: false)
        }
        // A repeat gets the first answer.
        if try card.decode(column: "response_code", as: String?.self) != nil {
            return AuthorizationOutcome(decision: try IssuerHost.decision(card), isRepeat: true)
        }
        let account = card
        let cardID = try card.decode(column: "id", as: Int64.self)
        let bank = try card.decode(column: "bank_id", as: String.self)
        let accountID = try card.decode(column: "account_id", as: Int64.self)

        // PIN.
        var pinTries = try card.decode(column: "pin_tries", as: Int.self)
        var pin = PINOutcome.notPresent
        if let block = input.pinBlock {
            if try card.decode(column: "pin_method", as: String.self) == "none" {
                pin = .notSet
            } else if pinTries >= configuration.maximumPINTries {
                pin = .triesExceeded
            } else {
                let ok = try keys.verifyPIN(
                    block, zone: PINZone(keyName: try card.decode(column: "pin_key_name", as: String.self), format: .iso0, pan: input.pan),
                    against: PINReference(method: .visaPVV(pvkName: try card.decode(column: "pvk_name", as: String.self), pvki: 1),
                                          value: try card.decode(column: "pin_reference", as: String.self)))
                pinTries = ok ? 0 : pinTries + 1
                pin = ok ? .verified : (pinTries >= configuration.maximumPINTries ? .triesExceeded : .wrong)
                try await tx.raw("UPDATE issuer_cards SET pin_tries = \(bind: pinTries) WHERE id = \(bind: cardID)").run()
            }
        }

        let context = AuthorizationContext(
            status: CardStatus(rawValue: try card.decode(column: "status", as: String.self)) ?? .blocked,
            cardExpiry: try card.decode(column: "expiry", as: String.self), currentMonth: month, amount: input.amount.minorUnits,
            product: Product(rawValue: try card.decode(column: "product", as: String.self)) ?? .debit,
            balance: try account.decode(column: "balance", as: Int64.self), creditLimit: try account.decode(column: "credit_limit", as: Int64.self),
            limits: CardLimits(perTransaction: try card.decode(column: "per_transaction_limit", as: Int64.self),
                               daily: try card.decode(column: "daily_limit", as: Int64.self),
                               dailyCount: try card.decode(column: "daily_count_limit", as: Int.self)),
            todayAmount: try card.decode(column: "today_total", as: Int64.self), todayCount: try card.decode(column: "today_approvals", as: Int.self), pin: pin)
        var decision = configuration.rules.evaluate(context) { IssuerHost.approvalCode() }
        if try account.decode(column: "currency", as: Int.self) != Int(input.amount.currency.numericCode) {
            decision = .declined(.invalidTransaction, reason: "currency differs from the account's")
        }
        if decision.isApproved, engine == .postgres {
            try await IssuerHost.bookApproval(tx, bank: bank, key: input.idempotencyKey, card: cardID, account: accountID, input: input,
                                              decision: decision, day: day, now: now)
            return AuthorizationOutcome(decision: decision, isRepeat: false)
        }
        let authID = try await IssuerHost.record(tx, bank: bank, key: input.idempotencyKey, card: cardID, input: input, decision: decision, day: day, now: now)
        if decision.isApproved {
            let amount = input.amount.minorUnits
            try await IssuerHost.post(tx, bank: bank, authorization: authID, currency: input.amount.currency.numericCode, memo: "purchase", entries: [
                ("acct:\(accountID)", amount), ("bank:\(bank):network-payable", -amount),
            ], now: now)
            try await tx.raw("UPDATE issuer_accounts SET balance = balance - \(bind: amount) WHERE id = \(bind: accountID)").run()
            try await IssuerHost.count(tx, card: cardID, day: day, amount: amount, approvals: 1)
        }
        return AuthorizationOutcome(decision: decision, isRepeat: false)
    }

    /// Reverses an approved authorization named by its original key: the posting is undone
    /// and the hold released. Repeats answer the same; an unknown key answers 25.
    public func reverse(idempotencyKey: String, date: Date = Date()) async throws -> ResponseCode {
        let now = IssuerHost.stamp(date)
        return try await db.transaction { tx in
            guard let auth = try await tx.raw("SELECT id, bank_id, card_id, amount, currency, state, day FROM issuer_authorizations WHERE idempotency_key = \(bind: idempotencyKey)").first() else {
                return .unableToLocate
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

    /// An approval booked in one PostgreSQL statement — the authorization, its two ledger
    /// entries, the account's balance and the card's day — where SQLite takes four (it has no
    /// INSERT or UPDATE inside WITH): what the four do, one round trip instead of four.
    static func bookApproval(_ tx: any SQLDatabase, bank: String, key: String, card: Int64, account: Int64, input: AuthorizationInput,
                             decision: AuthorizationDecision, day: String, now: String) async throws {
        guard case .approved(let authCode) = decision else { return }
        let amount = input.amount.minorUnits, currency = Int(input.amount.currency.numericCode)
        try await tx.raw("""
            WITH auth AS (
                INSERT INTO issuer_authorizations (bank_id, idempotency_key, card_id, amount, currency, response_code, auth_code, reason, day, state, created_at)
                VALUES (\(bind: bank), \(bind: key), \(bind: card), \(bind: amount), \(bind: currency), '00', \(bind: authCode), 'approved', \(bind: day), 'approved', \(bind: now))
                RETURNING id),
            ledger AS (
                INSERT INTO issuer_ledger (bank_id, authorization_id, account, amount, currency, memo, created_at)
                SELECT \(bind: bank), auth.id, entry.account, entry.amount, \(bind: currency), 'purchase', \(bind: now)
                FROM auth, (VALUES (\(bind: "acct:\(account)"), \(bind: amount)), (\(bind: "bank:\(bank):network-payable"), \(bind: -amount))) AS entry (account, amount)),
            balance AS (UPDATE issuer_accounts SET balance = balance - \(bind: amount) WHERE id = \(bind: account)),
            today AS (
                INSERT INTO issuer_card_days (card_id, day, total, approvals) VALUES (\(bind: card), \(bind: day), \(bind: amount), 1)
                ON CONFLICT (card_id, day) DO UPDATE SET total = issuer_card_days.total + excluded.total, approvals = issuer_card_days.approvals + 1)
            SELECT id FROM auth
            """).run()
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
        let (code, authCode, reason): (String, String?, String) = switch decision {
        case .approved(let c): ("00", c, "approved")
        case .declined(let rc, let why): (rc.rawValue, nil, why)
        }
        let row = try await tx.raw("""
            INSERT INTO issuer_authorizations (bank_id, idempotency_key, card_id, amount, currency, response_code, auth_code, reason, day, state, created_at)
            VALUES (\(bind: bank), \(bind: key), \(bind: card), \(bind: input.amount.minorUnits), \(bind: Int(input.amount.currency.numericCode)),
                    \(bind: code), \(bind: authCode), \(bind: reason), \(bind: day), \(bind: decision.isApproved ? "approved" : "declined"), \(bind: now))
            RETURNING id
            """).first()
        return try row!.decode(column: "id", as: Int64.self)
    }

    static func decision(_ row: any SQLRow) throws -> AuthorizationDecision {
        let code = try row.decode(column: "response_code", as: String.self)
        if code == "00" { return .approved(authorizationCode: try row.decode(column: "auth_code", as: String.self)) }
        return .declined(ResponseCode(rawValue: code) ?? .doNotHonour, reason: try row.decode(column: "reason", as: String.self))
    }

    /// Six characters from digits and upper-case letters.
    static func approvalCode() -> String {
        let alphabet = Array("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ")
        var rng = SystemRandomNumberGenerator()
        return String((0..<6).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] })
    }
}
