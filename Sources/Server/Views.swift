import CloudWire
import Foundation
import Hummingbird
import IssuerHost
import PaymentCrypto
import TokenService

/// A token as the API shows it: masked number, never the card.
struct TokenView: ResponseCodable {
    let id: Int64
    let maskedToken: String
    let tokenExpiry: String
    let state: String
    let bankId: String
    let requestorId: String
    let deviceId: String
    let par: String
    let assurance: String

    init(_ t: TokenRecord) {
        id = t.id
        maskedToken = t.maskedToken
        tokenExpiry = t.tokenExpiry
        state = t.state.rawValue
        bankId = t.bankID
        requestorId = t.requestorID
        deviceId = t.deviceID
        par = t.par
        assurance = t.assurance
    }
}

struct TokenList: ResponseCodable { let tokens: [TokenView] }

struct TransactionList: ResponseCodable {
    struct Item: Codable { let atc: Int; let keySequence: Int; let amount: Int64; let validatedAt: String }
    let tokenId: Int64
    let transactions: [Item]
    init(tokenID: Int64, _ list: [ValidatedTransaction]) {
        tokenId = tokenID
        transactions = list.map { Item(atc: Int($0.atc), keySequence: Int($0.keySequence), amount: $0.amount, validatedAt: $0.validatedAt) }
    }
}

/// Limited-use keys on their way to the phone, each encrypted to the device key.
extension KeyBatch: ResponseCodable {
    init(_ issued: [IssuedKey], unseen: [UInt16]) {
        self.init(keys: issued.map {
            Key(generationHour: $0.index.generationHour, sequence: $0.index.sequence, sealedKey: Data($0.sealedKey).base64EncodedString(),
                maxTransactions: $0.limits.maxTransactions, ttlSeconds: Int($0.limits.timeToLive), maxAmount: $0.limits.maxCumulativeAmount)
        }, unseenAtcs: unseen)
    }
}

struct NotificationList: ResponseCodable {
    struct Item: Codable { let tokenId: Int64; let event: String }
    let notifications: [Item]
}

struct KeyView: ResponseCodable {
    let name: String
    let usage: String
    let algorithm: String
    let lengthBits: Int
    let kcv: String
    init(_ k: KeyInfo) {
        name = k.name
        usage = k.usage.rawValue
        algorithm = k.algorithm.rawValue
        lengthBits = k.lengthBits
        kcv = k.kcv
    }
}

struct KeyList: ResponseCodable { let keys: [KeyView] }

struct BankView: ResponseCodable {
    struct Range: Codable { let low: String; let high: String; let kind: String }
    let id: String
    let name: String
    let institutionId: String
    let keys: [KeyView]
    let binRanges: [Range]
}

struct BankCreated: ResponseCodable {
    let bank: BankView
    /// Shown once; only its hash is kept.
    let apiKey: String
}

struct BankList: ResponseCodable { let banks: [BankView] }

struct RequestorCreated: ResponseCodable {
    let id: String
    let name: String
    let apiKey: String
}

struct RequestorList: ResponseCodable {
    struct Item: Codable { let id: String; let name: String }
    let requestors: [Item]
}

struct CardView: ResponseCodable {
    let id: Int64
    let bankId: String
    let accountId: Int64
    let maskedPan: String
    let expiry: String
    let product: String
    let status: String
    let holderName: String
    init(_ c: CardRecord) {
        id = c.id
        bankId = c.bankID
        accountId = c.accountID
        maskedPan = "************" + c.panLastFour
        expiry = c.expiry
        product = c.product.rawValue
        status = c.status.rawValue
        holderName = c.holderName
    }
}

struct CardList: ResponseCodable { let cards: [CardView] }

struct AccountView: ResponseCodable {
    let id: Int64
    let bankId: String
    let product: String
    let currency: String
    let balance: Int64
    let creditLimit: Int64
    let available: Int64
    init(_ a: AccountRecord) {
        id = a.id
        bankId = a.bankID
        product = a.product.rawValue
        currency = String(format: "%03d", a.currency)
        balance = a.balance
        creditLimit = a.creditLimit
        available = a.available
    }
}
