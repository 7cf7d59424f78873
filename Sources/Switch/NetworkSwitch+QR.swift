import Foundation
import PaymentCore
import SQLKit
import Storage

/// One payment made by scanning a merchant-presented code, as the network recorded it.
public struct QRPaymentRecord: Sendable, Hashable, Codable {
    public let id: Int64
    public let merchantID: String
    public let reference: String
    public let amount: Int64
    public let staticCode: Bool
    public let responseCode: String
    public let authorizationCode: String?
    public let tokenLastFour: String
    public let createdAt: String
}

extension NetworkSwitch {
    /// Records a merchant-presented payment once the switch has answered it.
    public func recordQRPayment(requestKey: String, tokenID: Int64, tokenLastFour: String, merchantID: String, reference: String, staticCode: Bool,
                                amount: Int64, responseCode: String, authorizationCode: String?, at date: Date = Date()) async throws -> Int64 {
        let day = UTCTime(date).isoDate
        return try await db.transaction { tx in
            try await tx.raw("""
                INSERT INTO net_qr_payments (request_key, token_id, token_last4, merchant_id, reference, static_code, amount, day, response_code, auth_code, created_at)
                VALUES (\(bind: requestKey), \(bind: tokenID), \(bind: tokenLastFour), \(bind: merchantID), \(bind: reference), \(bind: staticCode ? 1 : 0),
                        \(bind: amount), \(bind: day), \(bind: responseCode), \(bind: authorizationCode), \(bind: date.ISO8601Format())) RETURNING id
                """).first()!.decode(column: "id", as: Int64.self)
        }
    }

    /// Approved static-code payments of a token today (the regulator's daily cap counts these).
    public func staticQRTotal(tokenID: Int64, on date: Date = Date()) async throws -> Int64 {
        try await db.sql.raw("""
            SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total FROM net_qr_payments
            WHERE token_id = \(bind: tokenID) AND day = \(bind: UTCTime(date).isoDate) AND static_code = 1 AND response_code = '00'
            """).first()!.decode(column: "total", as: Int64.self)
    }

    /// A merchant's payments after `after` (for its POS, polling), oldest first.
    public func qrPayments(merchantID: String, after: Int64 = 0, limit: Int = 100) async throws -> [QRPaymentRecord] {
        try await db.sql.raw("""
            SELECT id, merchant_id, reference, amount, static_code, response_code, auth_code, token_last4, created_at FROM net_qr_payments
            WHERE merchant_id = \(bind: merchantID) AND id > \(bind: after) ORDER BY id LIMIT \(bind: limit)
            """).all().map {
            QRPaymentRecord(id: try $0.decode(column: "id", as: Int64.self), merchantID: try $0.decode(column: "merchant_id", as: String.self),
                            reference: try $0.decode(column: "reference", as: String.self), amount: try $0.decode(column: "amount", as: Int64.self),
                            staticCode: try $0.decode(column: "static_code", as: Int.self) == 1, responseCode: try $0.decode(column: "response_code", as: String.self),
                            authorizationCode: try $0.decode(column: "auth_code", as: String?.self), tokenLastFour: try $0.decode(column: "token_last4", as: String.self),
                            createdAt: try $0.decode(column: "created_at", as: String.self))
        }
    }
}
