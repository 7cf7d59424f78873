import PaymentCore

/// A bank's card product.
public enum Product: String, Sendable, Codable { case debit, credit }

/// Card status at the issuer.
public enum CardStatus: String, Sendable, Codable { case active, blocked, lost, stolen, closed }

/// ISO 8583 response codes the issuer answers with.
public enum ResponseCode: String, Sendable, Hashable, Codable {
    case approved = "00"
    case doNotHonour = "05"
    case invalidTransaction = "12"
    case invalidCardNumber = "14"
    case unableToLocate = "25"
    case lostCard = "41"
    case stolenCard = "43"
    case insufficientFunds = "51"
    case expiredCard = "54"
    case incorrectPIN = "55"
    case notPermitted = "57"
    case exceedsAmountLimit = "61"
    case restrictedCard = "62"
    case exceedsFrequencyLimit = "65"
    case pinTriesExceeded = "75"
    case issuerUnavailable = "91"
    case systemMalfunction = "96"
}

/// What the issuer decided — a value, not an error.
public enum AuthorizationDecision: Sendable, Hashable {
    case approved(authorizationCode: String)
    case declined(ResponseCode, reason: String)

    public var responseCode: ResponseCode {
        if case .declined(let code, _) = self { return code }
        return .approved
    }
    public var isApproved: Bool { if case .approved = self { return true }; return false }
}

/// Per-card limits, in minor units of the account's currency.
public struct CardLimits: Sendable, Hashable, Codable {
    public var perTransaction: Int64
    public var daily: Int64
    public var dailyCount: Int
    /// Defaults: 5,000.00 per transaction, 20,000.00 a day, 50 transactions a day.
    public init(perTransaction: Int64 = 500_000, daily: Int64 = 2_000_000, dailyCount: Int = 50) {
        self.perTransaction = perTransaction
        self.daily = daily
        self.dailyCount = dailyCount
    }
}

/// A bank in the deployment with the names of its keys in the key component.
public struct BankSetup: Sendable, Hashable {
    public var id: String
    public var name: String
    public var institutionID: String
    /// IMK-AC for card cryptograms.
    public var cardKeyName: String
    /// The zone PIN key the switch translates PIN blocks to.
    public var pinKeyName: String
    /// The PIN verification key.
    public var pvkName: String

    public init(id: String, name: String, institutionID: String, cardKeyName: String, pinKeyName: String, pvkName: String) {
        self.id = id
        self.name = name
        self.institutionID = institutionID
        self.cardKeyName = cardKeyName
        self.pinKeyName = pinKeyName
        self.pvkName = pvkName
    }
}
