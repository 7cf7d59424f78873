import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import IssuerHost
import PaymentCore
import PaymentCrypto
import Switch
import TokenService

/// A bank's own cards and accounts.
extension CloudAPI {
    /// A settlement batch's report; nil when there is no such batch (a failure of the storage
    /// still throws: it is not a missing batch).
    static func report(_ batch: Int64, from settlement: Settlement) async throws -> SettlementReport? {
        do { return try await settlement.report(batch: batch) } catch SettlementError.noSuchBatch { return nil }
    }
}

extension CloudAPI {
    func addBankRoutes(_ router: Router<CloudRequestContext>) {
        router.get("v1/cards") { request, context -> CardList in
            let bank = try await requireBank(request, context)
            let limit = min(max(request.uri.queryParameters.get("limit", as: Int.self) ?? 100, 1), 500)
            return CardList(cards: try await issuer.cards(bank: bank, limit: limit).map(CardView.init))
        }
        router.get("v1/cards/:id") { request, context -> CardView in
            let bank = try await requireBank(request, context)
            guard let id = context.parameters.get("id", as: Int64.self), let card = try await issuer.card(id: id) else { throw APIProblem.notFound }
            guard card.bankID == bank else { throw APIProblem(.forbidden, code: "card-not-yours", detail: "the card belongs to another bank") }
            return CardView(card)
        }
        router.get("v1/accounts/:id") { request, context -> AccountView in
            let bank = try await requireBank(request, context)
            guard let id = context.parameters.get("id", as: Int64.self), let account = try await issuer.account(id: id) else { throw APIProblem.notFound }
            guard account.bankID == bank else { throw APIProblem(.forbidden, code: "account-not-yours", detail: "the account belongs to another bank") }
            return AccountView(account)
        }
    }
}

/// The operator API: banks, BIN and token BIN ranges, keys by KCV, token requestors, and cards
/// and accounts for test data.
extension CloudAPI {
    func addOperatorRoutes(_ router: Router<CloudRequestContext>) {
        let ops = router.group("v1/operator")
        ops.get("banks") { request, _ -> BankList in
            try requireOperator(request)
            var views: [BankView] = []
            for bank in try await issuer.banks() { views.append(try await bankView(bank)) }
            return BankList(banks: views)
        }
        ops.post("banks") { request, context -> EditedResponse<BankCreated> in
            try requireOperator(request)
            let body = try await request.decode(as: BankBody.self, context: context)
            guard body.id.count >= 2, body.id.count <= 16, body.id.allSatisfy({ $0.isASCII && ($0.isUppercase || $0.isNumber) }) else {
                throw APIProblem.badRequest("a bank id is 2–16 upper-case letters or digits")
            }
            guard body.institutionId.count == 8 || body.institutionId.count == 11, body.institutionId.allSatisfy(\.isNumber) else {
                throw APIProblem.badRequest("institutionId is the 8- or 11-digit institution code")
            }
            let profile = body.cryptogramProfile ?? "cloud"
            guard let cryptogramProfile = CryptogramProfile.named(profile), cryptogramProfile.sessionKey == .limitedUseKey else {
                throw APIProblem.badRequest("cryptogramProfile must be a cloud profile (cloud, cloud-sm4)")
            }
            if try await issuer.banks().contains(where: { $0.id == body.id }) {
                throw APIProblem(.conflict, code: "bank-exists", detail: "bank \(body.id) exists")
            }
            // Keys named in the body must already be held (imported by key block); the rest are
            // generated in the key component under the bank's name.
            let names = BankKeyNames(bank: body.id, given: body.keys, algorithm: cryptogramProfile.algorithm)
            for role in names.roles {
                if let existing = try? keys.keyInfo(name: role.name) {
                    guard existing.usage == role.usage else {
                        throw APIProblem(.unprocessableContent, code: "key-usage-mismatch", detail: "key \(role.name) is \(existing.usage.rawValue), not \(role.usage.rawValue)")
                    }
                } else if role.given {
                    throw APIProblem(.unprocessableContent, code: "key-unknown", detail: "no key named \(role.name)")
                } else {
                    _ = try keys.generateKey(name: role.name, usage: role.usage, algorithm: role.algorithm, lengthBytes: 16)
                }
            }
            let setup = BankSetup(id: body.id, name: body.name, institutionID: body.institutionId, cardKeyName: names.imk, pinKeyName: names.zpk, pvkName: names.pvk)
            try await issuer.addBank(setup)
            try await tsp.setBankKeys(bank: body.id, imkName: names.imk, profile: profile)
            let apiKey = try await tsp.issueBankAPIKey(bank: body.id)
            return EditedResponse(status: .created, response: BankCreated(bank: try await bankView(setup), apiKey: apiKey))
        }
        ops.post("banks/:bank/api-key") { request, context -> BankKeyIssued in
            try requireOperator(request)
            let bank = try await existingBank(context)
            return BankKeyIssued(bankId: bank.id, apiKey: try await tsp.issueBankAPIKey(bank: bank.id))
        }
        ops.put("banks/:bank/client-certificate") { request, context -> Response in
            try requireOperator(request)
            let bank = try await existingBank(context)
            let body = try await request.decode(as: CertificatePinBody.self, context: context)
            guard let digest = try? [UInt8](hex: body.sha256), digest.count == 32 else {
                throw APIProblem.badRequest("sha256 is the 64-hex-digit SHA-256 of the client certificate's DER encoding")
            }
            try await tsp.pinBankClientCertificate(bank: bank.id, sha256: digest)
            return Response(status: .noContent)
        }
        ops.post("banks/:bank/bin-ranges") { request, context -> EditedResponse<BankView> in
            try requireOperator(request)
            let bank = try await existingBank(context)
            let body = try await request.decode(as: RangeBody.self, context: context)
            guard (6...12).contains(body.low.count), body.low.count == body.high.count, body.low.allSatisfy(\.isNumber), body.high.allSatisfy(\.isNumber),
                  body.low <= body.high else {
                throw APIProblem.badRequest("low and high are 6–12 digit prefixes of the same length, low ≤ high")
            }
            guard body.kind == "card" || body.kind == "token" else { throw APIProblem.badRequest("kind is card or token") }
            let taken = try await issuer.banks().asyncFlatMap { try await issuer.binRanges(bank: $0.id) }
            if taken.contains(where: { $0.low.count == body.low.count && !($0.high < body.low || body.high < $0.low) }) {
                throw APIProblem(.conflict, code: "range-overlaps", detail: "the range overlaps one already assigned")
            }
            try await issuer.addBINRange(bank: bank.id, low: body.low, high: body.high, kind: body.kind)
            if body.kind == "token" { try await tsp.addTokenRange(bank: bank.id, low: body.low, high: body.high) }
            return EditedResponse(status: .created, response: try await bankView(bank))
        }
        ops.get("banks/:bank/keys") { request, context -> KeyList in
            try requireOperator(request)
            let bank = try await existingBank(context)
            let named = Set([bank.cardKeyName, bank.pinKeyName, bank.pvkName])
            return KeyList(keys: keys.keyNames().filter { $0.hasPrefix("\(bank.id)/") || named.contains($0) }.compactMap { try? keys.keyInfo(name: $0) }.map(KeyView.init))
        }
        ops.get("keys") { request, _ -> KeyList in
            try requireOperator(request)
            return KeyList(keys: keys.keyNames().compactMap { try? keys.keyInfo(name: $0) }.map(KeyView.init))
        }
        ops.post("keys") { request, context -> EditedResponse<KeyView> in
            try requireOperator(request)
            let body = try await request.decode(as: KeyImportBody.self, context: context)
            do {
                return EditedResponse(status: .created, response: KeyView(try keys.importKeyBlock(name: body.name, keyBlock: body.keyBlock, kekName: body.kekName)))
            } catch let e as KeyHoldingError {
                if case .keyExists = e { throw APIProblem(.conflict, code: "key-exists", detail: "\(e)") }
                throw APIProblem(.unprocessableContent, code: "key-block-refused", detail: "\(e)")
            } catch let e as TR31.Error {
                throw APIProblem(.unprocessableContent, code: "key-block-refused", detail: "\(e)")
            }
        }
        // A one-time link into the console (five minutes, used once).
        ops.post("console-link") { request, _ -> EditedResponse<ConsoleLink> in
            try requireOperator(request)
            guard let console else { throw APIProblem(.notFound, code: "console-disabled", detail: "this server does not serve the console") }
            let next = request.uri.queryParameters.get("next").map { String($0) }
            return EditedResponse(status: .created, response: ConsoleLink(path: console.signInPath(next: next), expiresInSeconds: Int(console.sessions.linkLifetime)))
        }
        // End of day: cut-off, clearing, the net positions and merchant lines.
        ops.post("settlements") { request, _ -> EditedResponse<SettlementReport> in
            try requireOperator(request)
            guard let settlement else { throw APIProblem(.notFound, code: "settlement-disabled", detail: "this server does not hold the switch's data") }
            return EditedResponse(status: .created, response: try await settlement.run())
        }
        ops.get("settlements/:batch") { request, context -> SettlementReport in
            try requireOperator(request)
            guard let settlement else { throw APIProblem(.notFound, code: "settlement-disabled", detail: "this server does not hold the switch's data") }
            guard let batch = context.parameters.get("batch", as: Int64.self), let report = try await Self.report(batch, from: settlement) else { throw APIProblem.notFound }
            return report
        }
        // The issuers' books: the trial balance (zero when every posting balanced) and the
        // accounts whose balance disagrees with their ledger.
        ops.get("books") { request, _ -> Books in
            try requireOperator(request)
            return Books(trialBalance: try await issuer.trialBalance(), mismatchedAccounts: try await issuer.balanceMismatches())
        }
        // The SMS gateway's stand-in: what the token service would have sent, newest last.
        ops.get("sms") { request, _ -> SMSList in
            try requireOperator(request)
            let mobile = request.uri.queryParameters.get("mobileEndsWith")
            let messages = try await tsp.smsOutbox().filter { mobile == nil || $0.0.hasSuffix(mobile!) }.suffix(100)
            return SMSList(messages: messages.map { SMSList.Item(maskedMobile: String(repeating: "*", count: max(0, $0.0.count - 4)) + $0.0.suffix(4), text: $0.1) })
        }
        ops.get("requestors") { request, _ -> RequestorList in
            try requireOperator(request)
            return RequestorList(requestors: try await tsp.requestors().map { RequestorList.Item(id: $0.id, name: $0.name) })
        }
        ops.post("requestors") { request, context -> EditedResponse<RequestorCreated> in
            try requireOperator(request)
            let body = try await request.decode(as: RequestorBody.self, context: context)
            guard body.id.count == 11, body.id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
                throw APIProblem.badRequest("a token requestor id is 11 letters or digits")
            }
            if try await tsp.requestors().contains(where: { $0.id == body.id }) {
                throw APIProblem(.conflict, code: "requestor-exists", detail: "requestor \(body.id) exists")
            }
            let key = try await tsp.registerRequestor(id: body.id, name: body.name)
            return EditedResponse(status: .created, response: RequestorCreated(id: body.id, name: body.name, apiKey: key))
        }
        ops.post("banks/:bank/accounts") { request, context -> EditedResponse<AccountView> in
            try requireOperator(request)
            let bank = try await existingBank(context)
            let body = try await request.decode(as: AccountBody.self, context: context)
            guard let product = Product(rawValue: body.product) else { throw APIProblem.badRequest("product is debit or credit") }
            guard let currency = Currency(code: body.currency ?? "CNY") else { throw APIProblem.badRequest("unknown currency") }
            guard (body.openingBalance ?? 0) >= 0, (body.creditLimit ?? 0) >= 0 else { throw APIProblem.badRequest("amounts are not negative") }
            let id = try await issuer.openAccount(bank: bank.id, product: product, currency: currency, openingBalance: body.openingBalance ?? 0,
                                                  creditLimit: body.creditLimit ?? 0)
            guard let account = try await issuer.account(id: id) else { throw APIProblem.notFound }
            return EditedResponse(status: .created, response: AccountView(account))
        }
        ops.post("banks/:bank/cards") { request, context -> EditedResponse<CardView> in
            try requireOperator(request)
            let bank = try await existingBank(context)
            let body = try await request.decode(as: CardBody.self, context: context)
            let pan: PAN
            do { pan = try PAN(body.pan) } catch { throw APIProblem(.unprocessableContent, code: "card-number-invalid", detail: "\(error)") }
            let ranges = try await issuer.binRanges(bank: bank.id).filter { $0.kind == "card" }
            guard ranges.contains(where: { let p = String(pan.digits.prefix($0.low.count)); return $0.low <= p && p <= $0.high }) else {
                throw APIProblem(.unprocessableContent, code: "card-outside-bin-ranges", detail: "the card number is in none of the bank's card BIN ranges")
            }
            guard let account = try await issuer.account(id: body.accountId), account.bankID == bank.id else {
                throw APIProblem(.unprocessableContent, code: "account-unknown", detail: "no such account at this bank")
            }
            var pinBlock: EncryptedPINBlock?
            if let hex = body.pinBlock {
                guard let bytes = try? [UInt8](hex: hex), bytes.count == 8 else {
                    throw APIProblem.badRequest("pinBlock is 16 hex digits: ISO 9564 format 0 under the bank's zone PIN key")
                }
                pinBlock = EncryptedPINBlock(format: .iso0, bytes: bytes)
            }
            guard body.expiry.count == 4, body.expiry.allSatisfy(\.isNumber) else { throw APIProblem.badRequest("expiry is YYMM") }
            let limits = CardLimits(perTransaction: body.perTransactionLimit ?? 500_000, daily: body.dailyLimit ?? 2_000_000, dailyCount: body.dailyCountLimit ?? 50)
            let id: Int64
            do {
                id = try await issuer.issueCard(
                    bank: bank.id, account: account.id, pan: pan, expiry: body.expiry, product: account.product, holderName: body.holderName,
                    mobile: body.mobile, pinBlock: pinBlock, limits: limits,
                    hceAllowed: body.hceAllowed ?? true, deviceLimit: body.deviceLimit ?? 5)
            } catch is PINBlock.Error {
                throw APIProblem(.unprocessableContent, code: "pin-block-refused", detail: "the PIN block does not decrypt to a valid format 0 block for this card")
            }
            guard let card = try await issuer.card(id: id) else { throw APIProblem.notFound }
            return EditedResponse(status: .created, response: CardView(card))
        }
    }

    func existingBank(_ context: CloudRequestContext) async throws -> BankSetup {
        guard let id = context.parameters.get("bank"), let bank = try await issuer.banks().first(where: { $0.id == id }) else { throw APIProblem.notFound }
        return bank
    }

    func bankView(_ bank: BankSetup) async throws -> BankView {
        let named = [bank.cardKeyName, bank.pinKeyName, bank.pvkName, "\(bank.id)/cvk"]
        return BankView(id: bank.id, name: bank.name, institutionId: bank.institutionID,
                        keys: named.compactMap { try? keys.keyInfo(name: $0) }.map(KeyView.init),
                        binRanges: try await issuer.binRanges(bank: bank.id).map { BankView.Range(low: $0.low, high: $0.high, kind: $0.kind) })
    }
}

/// The key names a new bank uses: those given, else `<bank>/imk-ac`, `<bank>/zpk`, `<bank>/pvk`
/// and `<bank>/cvk` (the name the issuer host looks for when checking CVN2).
struct BankKeyNames {
    struct Role { let name: String; let usage: KeyUsage; let algorithm: KeyAlgorithm; let given: Bool }
    let imk: String, zpk: String, pvk: String, cvk: String
    let roles: [Role]

    init(bank: String, given: BankBody.Keys?, algorithm: KeyAlgorithm) {
        imk = given?.issuerMasterKey ?? "\(bank)/imk-ac"
        zpk = given?.zonePINKey ?? "\(bank)/zpk"
        pvk = given?.pinVerificationKey ?? "\(bank)/pvk"
        cvk = "\(bank)/cvk"
        roles = [
            Role(name: imk, usage: .issuerMasterKeyAC, algorithm: algorithm, given: given?.issuerMasterKey != nil),
            Role(name: zpk, usage: .pinEncryption, algorithm: .tdes, given: given?.zonePINKey != nil),
            Role(name: pvk, usage: .pinVerificationVisaPVV, algorithm: .tdes, given: given?.pinVerificationKey != nil),
            Role(name: cvk, usage: .cardVerification, algorithm: .tdes, given: false),
        ]
    }
}

struct BankBody: Decodable, Sendable {
    struct Keys: Decodable, Sendable {
        let issuerMasterKey: String?
        let zonePINKey: String?
        let pinVerificationKey: String?
    }
    let id: String
    let name: String
    let institutionId: String
    let cryptogramProfile: String?
    let keys: Keys?
}

struct SMSList: ResponseCodable {
    struct Item: Codable { let maskedMobile: String; let text: String }
    let messages: [Item]
}

extension SettlementReport: ResponseCodable {}

struct ConsoleLink: ResponseCodable { let path: String; let expiresInSeconds: Int }
struct Books: ResponseCodable { let trialBalance: Int64; let mismatchedAccounts: [Int64] }
struct BankKeyIssued: ResponseCodable { let bankId: String; let apiKey: String }
struct CertificatePinBody: Decodable, Sendable { let sha256: String }
struct RangeBody: Decodable, Sendable { let low: String; let high: String; let kind: String }
struct KeyImportBody: Decodable, Sendable { let name: String; let keyBlock: String; let kekName: String }
struct RequestorBody: Decodable, Sendable { let id: String; let name: String }

struct AccountBody: Decodable, Sendable {
    let product: String
    let currency: String?
    let openingBalance: Int64?
    let creditLimit: Int64?
}

struct CardBody: Decodable, Sendable {
    let accountId: Int64
    let pan: String
    let expiry: String
    let holderName: String
    let mobile: String
    /// ISO 9564 format 0 PIN block under the bank's zone PIN key, 16 hex digits.
    /// Absent: a card without a PIN (declines any PIN until one is set).
    let pinBlock: String?
    let perTransactionLimit: Int64?
    let dailyLimit: Int64?
    let dailyCountLimit: Int?
    let deviceLimit: Int?
    let hceAllowed: Bool?
}

extension Array {
    func asyncFlatMap<T>(_ transform: (Element) async throws -> [T]) async rethrows -> [T] {
        var out: [T] = []
        for e in self { out += try await transform(e) }
        return out
    }
}
