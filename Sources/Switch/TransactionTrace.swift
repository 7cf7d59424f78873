import Foundation
import ISO8583
import IssuerHost
import SQLKit
import Storage

/// One transaction as the network saw it: the record, every message that crossed the switch
/// (masked), the token service's check, and the issuer's ledger entries.
public struct TransactionTrace: Sendable {
    public struct Summary: Sendable, Hashable {
        public let id: Int64
        public let createdAt: String
        public let terminalID: String
        public let stan: String
        public let tokenLastFour: String
        public let amount: Int64
        public let currency: UInt16
        public let bank: String?
        public let responseCode: String?
        public let authorizationCode: String?
        public let state: String
        public let reason: String
    }
    public struct Line: Sendable, Hashable {
        public let direction: String
        public let mti: String
        public let text: String
    }

    public let summary: Summary
    public let lines: [Line]
    public let issuerDecision: String?
    public let postings: [Posting]
    /// What the switch owes or owed the issuer after answering: a stand-in advice, a reversal
    /// (its reason, whether the issuer has taken it, the tries so far).
    public let followUps: [String]
}

extension NetworkSwitch {
    /// The latest transactions, newest first.
    public func recentTransactions(limit: Int = 20) async throws -> [TransactionTrace.Summary] {
        try await db.sql.raw("SELECT * FROM net_transactions ORDER BY id DESC LIMIT \(bind: limit)").all().map(Self.summary)
    }

    public func trace(transactionID id: Int64) async throws -> TransactionTrace? {
        guard let row = try await db.sql.raw("SELECT * FROM net_transactions WHERE id = \(bind: id)").first() else { return nil }
        // One record a transaction (Trace.record); rows of net_messages for traces written
        // before it.
        let stored: [Trace.Line]
        if let record = try await db.sql.raw("SELECT lines FROM net_traces WHERE transaction_id = \(bind: id)").first() {
            guard let lines = Trace.lines(Array(try record.decode(column: "lines", as: Data.self))) else {
                throw StorageError("transaction \(id): its trace is not a trace record")
            }
            stored = lines
        } else {
            stored = try await db.sql.raw("SELECT direction, mti, described, dialect, masked FROM net_messages WHERE transaction_id = \(bind: id) ORDER BY seq").all().map {
                var line = Trace.Line(direction: try $0.decode(column: "direction", as: String.self), mti: try $0.decode(column: "mti", as: String.self),
                                      text: try $0.decode(column: "described", as: String.self))
                if let dialect = try $0.decode(column: "dialect", as: String?.self), let record = try $0.decode(column: "masked", as: Data?.self) {
                    line.masked = (dialect, Array(record))
                }
                return line
            }
        }
        let lines = try stored.map { line in
            var text = line.text
            if let masked = line.masked { text = try Message(mti: line.mti, masked: masked.record).describe(spec: try Self.dialect(masked.dialect), reveal: false) }
            return TransactionTrace.Line(direction: line.direction, mti: line.mti, text: text)
        }
        var decision: String?
        var postings: [Posting] = []
        if let key = try row.decode(column: "issuer_key", as: String?.self), let issuer = try await issuerHost.postings(idempotencyKey: key) {
            decision = "\(issuer.responseCode) (\(issuer.state))"
            postings = issuer.entries
        }
        var followUps: [String] = []
        if let advice = try await db.sql.raw("SELECT bank_id, state, attempts FROM net_advices WHERE transaction_id = \(bind: id)").first() {
            followUps.append("0120 stand-in advice to \(try advice.decode(column: "bank_id", as: String.self)): \(try advice.decode(column: "state", as: String.self)), "
                             + Self.tries(try advice.decode(column: "attempts", as: Int.self)))
        }
        if let reversal = try await db.sql.raw("SELECT bank_id, reason, state, attempts FROM net_issuer_reversals WHERE transaction_id = \(bind: id)").first() {
            followUps.append("0400 reversal to \(try reversal.decode(column: "bank_id", as: String.self)) (DE39 \(try reversal.decode(column: "reason", as: String.self))): "
                             + "\(try reversal.decode(column: "state", as: String.self)), " + Self.tries(try reversal.decode(column: "attempts", as: Int.self)))
        }
        return TransactionTrace(summary: try Self.summary(row), lines: lines, issuerDecision: decision, postings: postings, followUps: followUps)
    }

    static func tries(_ n: Int) -> String { n == 1 ? "1 try" : "\(n) tries" }

    /// The dialects messages were kept in, loaded once.
    static func dialect(_ name: String) throws -> MessageSpec {
        if let spec = dialects.withLock({ $0[name] }) { return spec }
        let spec = try MessageSpec.dialect(name)
        dialects.withLock { $0[name] = spec }
        return spec
    }
    static let dialects = Locked<[String: MessageSpec]>([:])

    static func summary(_ row: any SQLRow) throws -> TransactionTrace.Summary {
        TransactionTrace.Summary(
            id: try row.decode(column: "id", as: Int64.self), createdAt: try row.decode(column: "created_at", as: String.self),
            terminalID: try row.decode(column: "terminal_id", as: String.self), stan: try row.decode(column: "stan", as: String.self),
            tokenLastFour: try row.decode(column: "token_last4", as: String.self), amount: try row.decode(column: "amount", as: Int64.self),
            currency: UInt16(try row.decode(column: "currency", as: Int.self)), bank: try row.decode(column: "bank_id", as: String?.self),
            responseCode: try row.decode(column: "response_code", as: String?.self), authorizationCode: try row.decode(column: "auth_code", as: String?.self),
            state: try row.decode(column: "state", as: String.self), reason: try row.decode(column: "reason", as: String.self))
    }
}
