/// The cloud's answer to a payment by merchant-presented code (`POST /v1/tokens/{id}/qr-payments`),
/// as it travels in JSON: whether the network approved it, DE39 and DE38 of the switch's answer,
/// the reference and merchant name from the code, and the amount paid (decimal, e.g. "38.50").
public struct MerchantPaymentAnswer: Sendable, Hashable, Codable {
    public var approved: Bool
    public var responseCode: String
    public var authorizationCode: String?
    public var reference: String
    public var merchantName: String
    public var amount: String

    public init(approved: Bool, responseCode: String, authorizationCode: String?, reference: String, merchantName: String, amount: String) {
        self.approved = approved
        self.responseCode = responseCode
        self.authorizationCode = authorizationCode
        self.reference = reference
        self.merchantName = merchantName
        self.amount = amount
    }
}
