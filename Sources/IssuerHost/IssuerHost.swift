import Foundation
import PaymentCore
import PaymentCrypto
import SQLKit
import Storage

/// The authorization hosts of the banks in one deployment: cards and accounts, PIN checks,
/// limits, holds, and a double-entry ledger, on the shared ``Database``.
///
/// Ledger convention: each entry is a signed amount in minor units (debit positive, credit
/// negative) and every posting's entries sum to zero. A customer account's balance is minus
/// the sum of its entries (money the bank owes the customer, negative when the customer owes).
public final class IssuerHost: Sendable {
    public struct Configuration: Sendable {
        /// Data key sealing card numbers; keyed-hash key for looking them up.
        public var vaultKeyName: String
        public var lookupKeyName: String
        public var rules: RuleSet
        public var maximumPINTries: Int
        public init(vaultKeyName: String = "issuer-vault", lookupKeyName: String = "issuer-lookup", rules: RuleSet = .standard, maximumPINTries: Int = 3) {
            self.vaultKeyName = vaultKeyName
            self.lookupKeyName = lookupKeyName
            self.rules = rules
            self.maximumPINTries = maximumPINTries
        }
    }

    let db: Database
    let keys: any KeyHolding
    let configuration: Configuration

    public init(database: Database, keys: any KeyHolding, configuration: Configuration = Configuration()) {
        self.db = database
        self.keys = keys
        self.configuration = configuration
    }

    static func stamp(_ date: Date) -> String { UTCTime(date).iso8601 }

    // MARK: Set-up (operator API and test data)

    public func addBank(_ bank: BankSetup) async throws {
        let now = IssuerHost.stamp(Date())
        try await db.transaction { tx in
            try await tx.raw("""
                INSERT INTO issuer_banks (id, name, institution_id, card_key_name, pin_key_name, pvk_name, created_at)
                VALUES (\(bind: bank.id), \(bind: bank.name), \(bind: bank.institutionID), \(bind: bank.cardKeyName), \(bind: bank.pinKeyName), \(bind: bank.pvkName), \(bind: now))
                """).run()
        }
    }

    public func addBINRange(bank: String, low: String, high: String, kind: String = "card") async throws {
        try await db.transaction { tx in
            try await tx.raw("INSERT INTO issuer_bin_ranges (bank_id, low, high, kind) VALUES (\(bind: bank), \(bind: low), \(bind: high), \(bind: kind))").run()
        }
    }

    /// Opens an account; a debit account's opening balance is posted from the bank's funding account.
    public func openAccount(bank: String, product: Product, currency: Currency = .cny, openingBalance: Int64 = 0, creditLimit: Int64 = 0) async throws -> Int64 {
        let now = IssuerHost.stamp(Date())
        return try await db.transaction { tx in
            let row = try await tx.raw("""
                INSERT INTO issuer_accounts (bank_id, kind, currency, balance, credit_limit)
                VALUES (\(bind: bank), \(bind: product.rawValue), \(bind: Int(currency.numericCode)), \(bind: openingBalance), \(bind: creditLimit)) RETURNING id
                """).first()
            let id = try row!.decode(column: "id", as: Int64.self)
            if openingBalance != 0 {
                try await IssuerHost.post(tx, bank: bank, authorization: nil, currency: currency.numericCode, memo: "opening balance", entries: [
                    ("bank:\(bank):funding", openingBalance), ("acct:\(id)", -openingBalance),
                ], now: now)
            }
            return id
        }
    }

    /// Issues a card. The PIN arrives as an ISO 9564 format 0 block under the bank's zone PIN
    /// key; the key component turns it into a Visa PVV, which is all that is stored. A card
    /// issued without a PIN pays below the CVM limit and declines every PIN (55).
    public func issueCard(
        bank: String, account: Int64, pan: PAN, psn: String = "01", expiry: String, product: Product, holderName: String,
        mobile: String, pinBlock: EncryptedPINBlock?, limits: CardLimits = CardLimits(), hceAllowed: Bool = true, deviceLimit: Int = 5
    ) async throws -> Int64 {
        let bankRow = try await bankSetup(bank)
        let pvv = try pinBlock.map { try keys.generatePINVerificationData(
            $0, zone: PINZone(keyName: bankRow.pinKeyName, format: .iso0, pan: pan), method: .visaPVV(pvkName: bankRow.pvkName, pvki: 1)) }
        let hash = try lookupHash(pan)
        let sealed = Data(try keys.seal(Array(pan.digits.utf8), keyName: configuration.vaultKeyName, authenticating: Array("issuer-card".utf8)))
        return try await db.transaction { tx in
            let row = try await tx.raw("""
                INSERT INTO issuer_cards (bank_id, account_id, pan_hash, pan_sealed, pan_last4, psn, expiry, product, status, holder_name, mobile,
                    pin_method, pin_reference, pin_tries, per_transaction_limit, daily_limit, daily_count_limit, hce_allowed, device_limit)
                VALUES (\(bind: bank), \(bind: account), \(bind: hash), \(bind: sealed), \(bind: pan.lastFour), \(bind: psn), \(bind: expiry),
                    \(bind: product.rawValue), 'active', \(bind: holderName), \(bind: mobile), \(bind: pvv == nil ? "none" : "pvv"), \(bind: pvv ?? ""), 0,
                    \(bind: limits.perTransaction), \(bind: limits.daily), \(bind: limits.dailyCount), \(bind: hceAllowed ? 1 : 0), \(bind: deviceLimit))
                RETURNING id
                """).first()
            return try row!.decode(column: "id", as: Int64.self)
        }
    }

    public func setCardStatus(_ cardID: Int64, _ status: CardStatus) async throws {
        try await db.transaction { tx in
            try await tx.raw("UPDATE issuer_cards SET status = \(bind: status.rawValue) WHERE id = \(bind: cardID)").run()
        }
    }

    struct BankRow: Sendable { let pinKeyName: String; let pvkName: String; let cardKeyName: String }

    func bankSetup(_ bank: String) async throws -> BankRow {
        guard let row = try await db.sql.raw("SELECT pin_key_name, pvk_name, card_key_name FROM issuer_banks WHERE id = \(bind: bank)").first() else {
            throw StorageError("no bank '\(bank)'")
        }
        return BankRow(pinKeyName: try row.decode(column: "pin_key_name", as: String.self), pvkName: try row.decode(column: "pvk_name", as: String.self),
                       cardKeyName: try row.decode(column: "card_key_name", as: String.self))
    }

    /// Writes one balanced posting.
    static func post(_ tx: any SQLDatabase, bank: String, authorization: Int64?, currency: UInt16, memo: String,
                     entries: [(String, Int64)], now: String) async throws {
        precondition(entries.reduce(0) { $0 + $1.1 } == 0, "unbalanced posting")
        // The posting's entries in one statement: they are written together or not at all.
        var statement: Statement = "INSERT INTO issuer_ledger (bank_id, authorization_id, account, amount, currency, memo, created_at) VALUES "
        for (i, (account, amount)) in entries.enumerated() {
            statement = statement + (i == 0 ? "" : ", ")
                + "(\(bind: bank), \(bind: authorization), \(bind: account), \(bind: amount), \(bind: Int(currency)), \(bind: memo), \(bind: now))"
        }
        try await tx.run(statement)
    }

    // MARK: Books

    /// The sum of every ledger entry: zero when the books balance.
    public func trialBalance() async throws -> Int64 {
        try await db.sql.raw("SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total FROM issuer_ledger").first()!.decode(column: "total", as: Int64.self)
    }

    /// Accounts whose cached balance differs from minus the sum of their ledger entries.
    public func balanceMismatches() async throws -> [Int64] {
        let rows = try await db.sql.raw("""
            SELECT a.id AS id, a.balance AS balance, CAST(COALESCE(p.posted, 0) AS BIGINT) AS posted
            FROM issuer_accounts a LEFT JOIN (SELECT account, SUM(amount) AS posted FROM issuer_ledger GROUP BY account) p
                 ON p.account = 'acct:' || CAST(a.id AS TEXT)
            """).all()
        return try rows.compactMap { row in
            let id = try row.decode(column: "id", as: Int64.self)
            return try row.decode(column: "balance", as: Int64.self) == -row.decode(column: "posted", as: Int64.self) ? nil : id
        }
    }

    public func balance(account: Int64) async throws -> Int64 {
        try await db.sql.raw("SELECT balance FROM issuer_accounts WHERE id = \(bind: account)").first()!.decode(column: "balance", as: Int64.self)
    }
}
