import Foundation
import IssuerHost
import PaymentCore
import SQLKit
import Storage

/// Fees in basis points (1/100 of a percent), each rounded half up to the fen per transaction.
public struct FeeSchedule: Sendable, Hashable, Codable {
    /// Paid by the acquirer to the issuer.
    public var interchangeBasisPoints: Int64
    /// The network's fee to the issuer.
    public var issuerFeeBasisPoints: Int64
    /// The network's fee to the acquirer.
    public var acquirerFeeBasisPoints: Int64
    /// The merchant discount the acquirer keeps from the merchant.
    public var merchantDiscountBasisPoints: Int64

    public init(interchangeBasisPoints: Int64 = 35, issuerFeeBasisPoints: Int64 = 3, acquirerFeeBasisPoints: Int64 = 3, merchantDiscountBasisPoints: Int64 = 60) {
        self.interchangeBasisPoints = interchangeBasisPoints
        self.issuerFeeBasisPoints = issuerFeeBasisPoints
        self.acquirerFeeBasisPoints = acquirerFeeBasisPoints
        self.merchantDiscountBasisPoints = merchantDiscountBasisPoints
    }

    /// `amount` × `bps` / 10,000, rounded half up.
    public static func fee(_ amount: Int64, _ bps: Int64) -> Int64 { (amount * bps + 5_000) / 10_000 }
}

/// One settlement: what each bank pays or receives, what each merchant is paid, and the
/// network's income — all in minor units of one currency, summing to zero.
public struct SettlementReport: Sendable, Hashable, Codable {
    public struct Position: Sendable, Hashable, Codable {
        public var bank: String
        /// Cleared as issuer: the cardholders' purchases.
        public var issued: Int64
        /// Cleared as acquirer: the merchants' sales.
        public var acquired: Int64
        /// Interchange received as issuer minus paid as acquirer.
        public var interchange: Int64
        /// Network fees paid.
        public var fees: Int64
        /// What the network pays the bank (negative: what the bank pays the network).
        public var net: Int64
    }
    public struct MerchantLine: Sendable, Hashable, Codable {
        public var acquirer: String
        public var merchant: String
        /// Sales cleared less sales taken back.
        public var transactions: Int
        public var gross: Int64
        public var discount: Int64
        public var net: Int64
    }

    public var batch: Int64
    public var cutoff: String
    public var currency: UInt16
    /// Sales cleared in this batch.
    public var transactions: Int
    /// Sales of earlier batches reversed since, taken back in this one.
    public var reversals: Int
    /// The sales' amounts less the reversed ones'.
    public var total: Int64
    public var positions: [Position]
    public var merchants: [MerchantLine]
    /// The network's fee income: the issuer and acquirer fees of the batch.
    public var networkIncome: Int64

    /// Whether the banks' positions and the network's income cancel out to the fen.
    public var balances: Bool { positions.reduce(0) { $0 + $1.net } + networkIncome == 0 }

    /// The banks' positions as CSV.
    public var positionsCSV: String {
        "batch,bank,issued,acquired,interchange,fees,net\n" + positions.map { "\(batch),\($0.bank),\($0.issued),\($0.acquired),\($0.interchange),\($0.fees),\($0.net)" }
            .joined(separator: "\n") + "\n"
    }

    /// The merchant settlement file as CSV.
    public var merchantCSV: String {
        "batch,acquirer,merchant,transactions,gross,discount,net\n" + merchants.map {
            "\(batch),\($0.acquirer),\($0.merchant),\($0.transactions),\($0.gross),\($0.discount),\($0.net)"
        }.joined(separator: "\n") + "\n"
    }
}

/// End-of-day clearing and settlement: every approved, unreversed transaction recorded before
/// the cut-off and not yet cleared is cleared once, in one batch, with its interchange and fees;
/// a cleared transaction reversed before the cut-off is taken back once, in the next batch (its
/// amount, interchange and fees the other way); the batch's net position per bank and the
/// merchant settlement lines follow from the clearing rows. The whole batch is one database
/// transaction.
public struct Settlement: Sendable {
    let db: Database
    let issuerHost: IssuerHost
    let fees: FeeSchedule

    public init(database: Database, issuerHost: IssuerHost, fees: FeeSchedule = FeeSchedule()) {
        self.db = database
        self.issuerHost = issuerHost
        self.fees = fees
    }

    public func run(cutoff: Date = Date(), currency: Currency = .cny) async throws -> SettlementReport {
        let stamp = cutoff.ISO8601Format()
        let acquirers = Dictionary(try await issuerHost.banks().map { ($0.institutionID, $0.id) }, uniquingKeysWith: { a, _ in a })
        let fees = self.fees
        let batch: Int64 = try await db.transaction { tx in
            let batch = try await tx.raw("""
                INSERT INTO net_settlement_batches (cutoff, transactions, total, created_at) VALUES (\(bind: stamp), 0, 0, \(bind: Date().ISO8601Format())) RETURNING id
                """).first()!.decode(column: "id", as: Int64.self)
            let rows = try await tx.raw("""
                SELECT t.id, t.bank_id, t.acquirer_id, t.merchant_id, t.amount FROM net_transactions t
                WHERE t.state = 'approved' AND t.created_at <= \(bind: stamp) AND t.currency = \(bind: Int(currency.numericCode))
                  AND NOT EXISTS (SELECT 1 FROM net_clearing c WHERE c.transaction_id = t.id)
                ORDER BY t.id
                """).all()
            var count = 0, total: Int64 = 0
            for row in rows {
                let amount = try row.decode(column: "amount", as: Int64.self)
                let acquirerID = try row.decode(column: "acquirer_id", as: String?.self) ?? ""
                try await tx.raw("""
                    INSERT INTO net_clearing (transaction_id, batch_id, issuer_bank, acquirer_bank, merchant_id, amount, currency, interchange, issuer_fee, acquirer_fee, merchant_fee)
                    VALUES (\(bind: try row.decode(column: "id", as: Int64.self)), \(bind: batch), \(bind: try row.decode(column: "bank_id", as: String?.self) ?? "?"),
                            \(bind: acquirers[acquirerID] ?? acquirerID), \(bind: try row.decode(column: "merchant_id", as: String?.self) ?? ""), \(bind: amount),
                            \(bind: Int(currency.numericCode)), \(bind: FeeSchedule.fee(amount, fees.interchangeBasisPoints)),
                            \(bind: FeeSchedule.fee(amount, fees.issuerFeeBasisPoints)), \(bind: FeeSchedule.fee(amount, fees.acquirerFeeBasisPoints)),
                            \(bind: FeeSchedule.fee(amount, fees.merchantDiscountBasisPoints)))
                    """).run()
                count += 1
                total += amount
            }
            // Sales cleared in an earlier batch and reversed since (a reversal from before the
            // column existed has no time: it is due now).
            let reversed = try await tx.raw("""
                INSERT INTO net_clearing_reversals (transaction_id, batch_id)
                SELECT c.transaction_id, \(bind: batch) FROM net_clearing c JOIN net_transactions t ON t.id = c.transaction_id
                WHERE t.state = 'reversed' AND (t.reversed_at IS NULL OR t.reversed_at <= \(bind: stamp)) AND c.currency = \(bind: Int(currency.numericCode))
                  AND NOT EXISTS (SELECT 1 FROM net_clearing_reversals r WHERE r.transaction_id = c.transaction_id)
                RETURNING transaction_id
                """).all().count
            let taken = try await tx.raw("""
                SELECT CAST(COALESCE(SUM(c.amount), 0) AS BIGINT) AS amount FROM net_clearing_reversals r JOIN net_clearing c ON c.transaction_id = r.transaction_id
                WHERE r.batch_id = \(bind: batch)
                """).first()!.decode(column: "amount", as: Int64.self)
            try await tx.raw("""
                UPDATE net_settlement_batches SET transactions = \(bind: count), reversals = \(bind: reversed), total = \(bind: total - taken) WHERE id = \(bind: batch)
                """).run()
            return batch
        }
        return try await report(batch: batch)
    }

    /// The settlement batches, newest first.
    public func batches(limit: Int = 50) async throws -> [(id: Int64, cutoff: String, transactions: Int, reversals: Int, total: Int64)] {
        try await db.sql.raw("SELECT id, cutoff, transactions, reversals, total FROM net_settlement_batches ORDER BY id DESC LIMIT \(bind: limit)").all().map {
            (try $0.decode(column: "id", as: Int64.self), try $0.decode(column: "cutoff", as: String.self),
             try $0.decode(column: "transactions", as: Int.self), try $0.decode(column: "reversals", as: Int.self), try $0.decode(column: "total", as: Int64.self))
        }
    }

    /// The report of a batch, from its clearing rows.
    public func report(batch: Int64) async throws -> SettlementReport {
        guard let header = try await db.sql.raw("SELECT cutoff, transactions, reversals, total FROM net_settlement_batches WHERE id = \(bind: batch)").first() else {
            throw SettlementError.noSuchBatch(batch)
        }
        // The batch's sales (sign 1), then the earlier sales it takes back (sign -1).
        let rows = try await db.sql.raw("""
            SELECT 1 AS sign, issuer_bank, acquirer_bank, merchant_id, amount, currency, interchange, issuer_fee, acquirer_fee, merchant_fee
            FROM net_clearing WHERE batch_id = \(bind: batch)
            UNION ALL
            SELECT -1 AS sign, c.issuer_bank, c.acquirer_bank, c.merchant_id, c.amount, c.currency, c.interchange, c.issuer_fee, c.acquirer_fee, c.merchant_fee
            FROM net_clearing_reversals r JOIN net_clearing c ON c.transaction_id = r.transaction_id WHERE r.batch_id = \(bind: batch)
            """).all()
        var positions: [String: SettlementReport.Position] = [:]
        var merchants: [String: SettlementReport.MerchantLine] = [:]
        var currency: UInt16 = 156
        var income: Int64 = 0
        func position(_ bank: String) -> SettlementReport.Position {
            positions[bank] ?? SettlementReport.Position(bank: bank, issued: 0, acquired: 0, interchange: 0, fees: 0, net: 0)
        }
        for row in rows {
            let sign = Int64(try row.decode(column: "sign", as: Int.self))
            let amount = sign * (try row.decode(column: "amount", as: Int64.self)), interchange = sign * (try row.decode(column: "interchange", as: Int64.self))
            let issuerFee = sign * (try row.decode(column: "issuer_fee", as: Int64.self)), acquirerFee = sign * (try row.decode(column: "acquirer_fee", as: Int64.self))
            let issuer = try row.decode(column: "issuer_bank", as: String.self), acquirer = try row.decode(column: "acquirer_bank", as: String.self)
            let merchant = try row.decode(column: "merchant_id", as: String.self), discount = sign * (try row.decode(column: "merchant_fee", as: Int64.self))
            currency = UInt16(try row.decode(column: "currency", as: Int.self))
            income += issuerFee + acquirerFee
            // The issuer pays the amount less interchange plus its fee; the acquirer receives the
            // amount less interchange less its fee; the network keeps both fees.
            var i = position(issuer)
            i.issued += amount
            i.interchange += interchange
            i.fees += issuerFee
            i.net -= amount - interchange + issuerFee
            positions[issuer] = i
            var a = position(acquirer)
            a.acquired += amount
            a.interchange -= interchange
            a.fees += acquirerFee
            a.net += amount - interchange - acquirerFee
            positions[acquirer] = a
            var m = merchants["\(acquirer)/\(merchant)"] ?? SettlementReport.MerchantLine(acquirer: acquirer, merchant: merchant, transactions: 0, gross: 0, discount: 0, net: 0)
            m.transactions += Int(sign)
            m.gross += amount
            m.discount += discount
            m.net += amount - discount
            merchants["\(acquirer)/\(merchant)"] = m
        }
        let ordered = positions.values.sorted { $0.bank < $1.bank }
        return SettlementReport(batch: batch, cutoff: try header.decode(column: "cutoff", as: String.self), currency: currency,
                                transactions: try header.decode(column: "transactions", as: Int.self), reversals: try header.decode(column: "reversals", as: Int.self),
                                total: try header.decode(column: "total", as: Int64.self),
                                positions: ordered, merchants: merchants.values.sorted { ($0.acquirer, $0.merchant) < ($1.acquirer, $1.merchant) },
                                networkIncome: income)
    }
}

/// A settlement batch asked for that does not exist.
public enum SettlementError: Error, Equatable, CustomStringConvertible {
    case noSuchBatch(Int64)
    public var description: String {
        switch self {
        case .noSuchBatch(let batch): "no settlement batch \(batch)"
        }
    }
}
