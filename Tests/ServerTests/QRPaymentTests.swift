import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hummingbird
import HummingbirdTesting
import IssuerHost
import PaymentCore
import QR
import Server
import Storage
import StorageTestSupport
import Switch
import Testing
import TokenService
import Wallet

@Suite("Paying a merchant-presented QR code through the API", .serialized)
struct QRPaymentTests {
    static let merchant = UnionPayMerchant(acquirerIIN: "01020000", forwardingIIN: "00090000", merchantID: "MERCHANT0000042")

    static func code(amount: String?) -> MerchantPresentedCode {
        MerchantPresentedCode(initiation: amount == nil ? .staticCode : .dynamicCode, merchantAccounts: [merchant.object], merchantCategoryCode: "5814",
                              currency: "156", amount: amount, countryCode: "CN", merchantName: "CLOUDTAP TEA", merchantCity: "SHANGHAI",
                              additionalData: [MPMObject("05", "ORDER-1"), MPMObject("07", "TEA00001")])
    }

    @Test("the wallet scans and pays: a dynamic code approved and booked, the merchant's POS sees it; a static code under the day's cap, then refused over it; a replayed credential declined; a wrong amount refused")
    func merchantPresented() async throws {
        try await TestDatabases.withEach("api-qr") { db in try await Self.run(db) }
    }

    static func run(_ db: Database) async throws {
            let f = try await APIFixture(db)
            try await db.migrate(NetworkSchema.migrations)
            let network = NetworkSwitch(database: db, tokenService: f.tsp, issuerHost: f.issuer, keys: f.hsm,
                                        issuers: ["BANKA": InProcessIssuer(IssuerGateway(host: f.issuer))])
            var settings = CloudAPI.Configuration(operatorAPIKey: APIFixture.operatorKey)
            settings.staticQRDailyLimit = 5_000
            let api = CloudAPI(tokenService: f.tsp, issuer: f.issuer, keys: f.hsm, configuration: settings, network: network)
            let phone = try Wallet(store: MemorySecureStore(), deviceID: "phone-A")
            let (credentials, tokenID) = try await Application(router: api.router()).test(.router) { client in
                let c = try await f.provision(client)
                let token = try await f.enroll(client, wallet: APIFixture.requestor("WALLET00001", c.walletA), pan: APIFixture.panA, expiry: "2912",
                                               device: "phone-A", publicKey: phone.devicePublicKey)
                return (c, token)
            }
            let (ports, sink) = AsyncStream.makeStream(of: Int.self)
            let app = try api.application(listener: APIListener(host: "127.0.0.1", port: 0)) { sink.yield($0) }
            let server = Task { defer { sink.finish() }; try await app.runService() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { Issue.record("the API did not start"); return }
            let base = URL(string: "http://127.0.0.1:\(port)")!
            let cloud = HTTPCloudConnection(baseURL: base, requestorID: "WALLET00001", apiKey: credentials.walletA)
            _ = try await phone.provision(cardID: "bank-a", tokenID: tokenID, from: cloud)
            _ = try await phone.replenishIfNeeded(cardID: "bank-a", tokenID: tokenID, from: cloud, force: true)
            let before = try await f.issuer.balance(account: credentials.accountA)

            // A dynamic code for 38.50: the phone reads it, makes its credential, pays.
            let dynamic = try MerchantPresentedCode(payload: Self.code(amount: "38.50").payload)
            let credential = try phone.merchantPaymentCredential(cardID: "bank-a", amount: try #require(try dynamic.amountValue()))
            let paid = try await cloud.payMerchant(tokenID: tokenID, payload: dynamic.payload, amount: nil, credential: credential, wallet: phone)
            #expect(paid.approved && paid.responseCode == "00" && paid.merchantName == "CLOUDTAP TEA")
            #expect(try await f.issuer.balance(account: credentials.accountA) == before - 3850)
            // The same credential again: the cloud has seen its ATC.
            let again = try await cloud.payMerchant(tokenID: tokenID, payload: dynamic.payload, amount: nil, credential: credential, wallet: phone)
            #expect(!again.approved && again.responseCode == "05")

            // The merchant's POS polls with its acquiring bank's key.
            var poll = URLRequest(url: base.appendingPathComponent("v1/merchants/MERCHANT0000042/qr-payments"))
            poll.setValue("Bearer \(credentials.bankA)", forHTTPHeaderField: "Authorization")
            poll.setValue("BANKA", forHTTPHeaderField: "CloudTap-Bank")
            let (data, _) = try await URLSession.shared.data(for: poll)
            let payments = (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["payments"] as? [[String: Any]] ?? []
            #expect(payments.map { $0["responseCode"] as? String } == ["00", "05"])
            #expect(payments.first?["reference"] as? String == "ORDER-1")

            // A static code: the payer keys the amount; the day's cap (50.00) counts approvals.
            let counter = Self.code(amount: nil).payload
            let first = try await cloud.payMerchant(tokenID: tokenID, payload: counter, amount: "30.00",
                                                    credential: try phone.merchantPaymentCredential(cardID: "bank-a", amount: Amount(minorUnits: 3000, currency: .cny)), wallet: phone)
            #expect(first.approved)
            do {
                _ = try await cloud.payMerchant(tokenID: tokenID, payload: counter, amount: "30.00",
                                                credential: try phone.merchantPaymentCredential(cardID: "bank-a", amount: Amount(minorUnits: 3000, currency: .cny)), wallet: phone)
                Issue.record("the static-code cap was not applied")
            } catch let refusal as CloudRefusal {
                #expect(refusal.code == "qr-static-limit")
            }
            do {
                _ = try await cloud.payMerchant(tokenID: tokenID, payload: dynamic.payload, amount: "1.00",
                                                credential: try phone.merchantPaymentCredential(cardID: "bank-a", amount: Amount(minorUnits: 100, currency: .cny)), wallet: phone)
                Issue.record("a wrong amount was accepted")
            } catch let refusal as CloudRefusal {
                #expect(refusal.code == "qr-amount-mismatch")
            }
            // The phone names every payment's amount in its cryptogram: zero (a consumer-presented
            // code's "not known yet") and an amount beyond 9F02's twelve digits are refused.
            #expect(throws: WalletError.self) { _ = try phone.merchantPaymentCredential(cardID: "bank-a", amount: Amount(minorUnits: 0, currency: .cny)) }
            #expect(throws: WalletError.self) {
                _ = try phone.merchantPaymentCredential(cardID: "bank-a", amount: Amount(minorUnits: 1_000_000_000_000, currency: .cny))
            }
            #expect(try await f.issuer.balance(account: credentials.accountA) == before - 3850 - 3000)
            #expect(try await f.issuer.trialBalance() == 0)
            server.cancel()
            _ = await server.result
    }
}
