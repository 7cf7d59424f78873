import Foundation
import PaymentCore
import SQLKit
import Storage

/// A card as the bank's and operator's views show it: the number only by its last four digits.
public struct CardRecord: Sendable, Hashable, Codable, CustomStringConvertible {
    public let id: Int64
    public let bankID: String
    public let accountID: Int64
    public let panLastFour: String
    public let expiry: String
    public let product: Product
    public let status: CardStatus
    public let holderName: String
    public let pinTries: Int
    public var description: String { "Card(\(id), ****\(panLastFour), \(status.rawValue))" }
}

/// An account with its balance (debit: funds; credit: minus what is owed). Approved
/// authorizations are already posted against it; a reversal posts them back.
public struct AccountRecord: Sendable, Hashable, Codable {
    public let id: Int64
    public let bankID: String
    public let product: Product
    public let currency: UInt16
    public let balance: Int64
    public let creditLimit: Int64
    /// What can still be spent: the balance plus the credit limit.
    public var available: Int64 { balance + creditLimit }
}

extension IssuerHost {
    /// The banks of the deployment, by id.
    public func banks() async throws -> [BankSetup] {
        try await db.sql.raw("SELECT id, name, institution_id, card_key_name, pin_key_name, pvk_name FROM issuer_banks ORDER BY id").all().map {
            BankSetup(id: try $0.decode(column: "id", as: String.self), name: try $0.decode(column: "name", as: String.self),
                      institutionID: try $0.decode(column: "institution_id", as: String.self), cardKeyName: try $0.decode(column: "card_key_name", as: String.self),
                      pinKeyName: try $0.decode(column: "pin_key_name", as: String.self), pvkName: try $0.decode(column: "pvk_name", as: String.self))
        }
    }

    /// A bank's BIN ranges: (low, high, kind).
    public func binRanges(bank: String) async throws -> [(low: String, high: String, kind: String)] {
        try await db.sql.raw("SELECT low, high, kind FROM issuer_bin_ranges WHERE bank_id = \(bind: bank) ORDER BY low").all().map {
            (try $0.decode(column: "low", as: String.self), try $0.decode(column: "high", as: String.self), try $0.decode(column: "kind", as: String.self))
        }
    }

    /// One card, or nil.
    public func card(id: Int64) async throws -> CardRecord? {
        try await cards(where: "id", id).first
    }

    /// A bank's cards, newest first.
    public func cards(bank: String, limit: Int = 100) async throws -> [CardRecord] {
        try await cards(where: "bank_id", bank, limit: limit)
    }

    private func cards(where column: String, _ value: some Encodable & Sendable, limit: Int = 100) async throws -> [CardRecord] {
        try await db.sql.select()
            .columns("id", "bank_id", "account_id", "pan_last4", "expiry", "product", "status", "holder_name", "pin_tries")
            .from("issuer_cards").where(SQLIdentifier(column), .equal, value).orderBy("id", .descending).limit(limit).all().map { row in
                CardRecord(id: try row.decode(column: "id", as: Int64.self), bankID: try row.decode(column: "bank_id", as: String.self),
                           accountID: try row.decode(column: "account_id", as: Int64.self), panLastFour: try row.decode(column: "pan_last4", as: String.self),
                           expiry: try row.decode(column: "expiry", as: String.self), product: Product(rawValue: try row.decode(column: "product", as: String.self))!,
                           status: CardStatus(rawValue: try row.decode(column: "status", as: String.self))!, holderName: try row.decode(column: "holder_name", as: String.self),
                           pinTries: try row.decode(column: "pin_tries", as: Int.self))
            }
    }

    /// One account with its balance, or nil.
    public func account(id: Int64) async throws -> AccountRecord? {
        guard let row = try await db.sql.raw("""
            SELECT id, bank_id, kind, currency, balance, credit_limit FROM issuer_accounts WHERE id = \(bind: id)
            """).first() else { return nil }
        return AccountRecord(id: id, bankID: try row.decode(column: "bank_id", as: String.self), product: Product(rawValue: try row.decode(column: "kind", as: String.self))!,
                             currency: UInt16(try row.decode(column: "currency", as: Int.self)), balance: try row.decode(column: "balance", as: Int64.self),
                             creditLimit: try row.decode(column: "credit_limit", as: Int64.self))
    }
}

/// One ledger entry of an authorization.
public struct Posting: Sendable, Hashable, Codable {
    public let account: String
    /// Signed minor units: the entries of one posting sum to zero.
    public let amount: Int64
    public let memo: String
}

extension IssuerHost {
    /// The decision and ledger entries of the authorization known by `idempotencyKey`.
    public func postings(idempotencyKey: String) async throws -> (responseCode: String, state: String, entries: [Posting])? {
        guard let auth = try await db.sql.raw("""
            SELECT id, response_code, state FROM issuer_authorizations WHERE idempotency_key = \(bind: idempotencyKey)
            """).first() else { return nil }
        let id = try auth.decode(column: "id", as: Int64.self)
        let entries = try await db.sql.raw("SELECT account, amount, memo FROM issuer_ledger WHERE authorization_id = \(bind: id) ORDER BY id").all().map {
            Posting(account: try $0.decode(column: "account", as: String.self), amount: try $0.decode(column: "amount", as: Int64.self),
                    memo: try $0.decode(column: "memo", as: String.self))
        }
        return (try auth.decode(column: "response_code", as: String.self), try auth.decode(column: "state", as: String.self), entries)
    }
}
