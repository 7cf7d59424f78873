import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import NIOCore
import IssuerHost
import PaymentCore
import PaymentCrypto
import Server
import Storage
import StorageTestSupport
import Testing
import TokenService

@Suite("HTTP API: enrollment, OTP, tokens", .serialized)
struct APITests {
    static func json(_ object: [String: Any]) -> ByteBuffer { ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: object)) }
    static func object(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [String: Any] ?? [:]
    }

    @Test("a wallet binds a card with the code from the SMS, then manages its token; others may not")
    func enrollment() async throws {
        try await TestDatabases.withEach("api") { db in
            try await db.migrate(IssuerSchema.migrations + TokenSchema.migrations)
            let hsm = try SoftwareHSM(masterKey: [UInt8](repeating: 0x51, count: 32))
            let zpk = KeyTools.oddParity([UInt8](repeating: 0x13, count: 16))
            _ = try hsm.importClearKey(name: "BANKA/zpk", usage: .pinEncryption, algorithm: .tdes, key: zpk)
            _ = try hsm.generateKey(name: "BANKA/pvk", usage: .pinVerificationVisaPVV, algorithm: .tdes, lengthBytes: 16)
            _ = try hsm.generateKey(name: "BANKA/imk-ac", usage: .issuerMasterKeyAC, algorithm: .tdes, lengthBytes: 16)
            for name in ["issuer-vault", "issuer-lookup", "tsp-kek", "tsp-lookup"] {
                _ = try hsm.generateKey(name: name, usage: .dataEncryption, algorithm: .aes, lengthBytes: 32)
            }
            let issuer = IssuerHost(database: db, keys: hsm)
            try await issuer.addBank(BankSetup(id: "BANKA", name: "Bank A", institutionID: "01020000", cardKeyName: "BANKA/imk-ac",
                                               pinKeyName: "BANKA/zpk", pvkName: "BANKA/pvk"))
            let pan = try PAN("6210220110002707354")
            let account = try await issuer.openAccount(bank: "BANKA", product: .debit, openingBalance: 100_000)
            _ = try await issuer.issueCard(bank: "BANKA", account: account, pan: pan, expiry: "2912", product: .debit, holderName: "ZHANG SAN",
                                           mobile: "13812345678", pinBlock: try ISO9564.encipher(PINBlock.encode(pin: "1234", format: .iso0, pan: pan), key: zpk, pan: pan))
            let tsp = TokenService(database: db, keys: hsm, vault: Vault(database: db, keys: hsm))
            try await tsp.vault.rotateDataKey()
            let walletKey = try await tsp.registerRequestor(id: "WALLET00001", name: "Wallet")
            let otherKey = try await tsp.registerRequestor(id: "WALLET00002", name: "Other wallet")
            try await tsp.addTokenRange(bank: "BANKA", low: "62345600", high: "62345699")
            let api = CloudAPI(tokenService: tsp, eligibility: IssuerHostEligibility(host: issuer))
            let app = Application(router: api.router())
            let device = P256.KeyAgreement.PrivateKey()
            let wallet: HTTPFields = [.authorization: "Bearer \(walletKey)", HTTPField.Name("CloudTap-Requestor")!: "WALLET00001", .contentType: "application/json"]
            let other: HTTPFields = [.authorization: "Bearer \(otherKey)", HTTPField.Name("CloudTap-Requestor")!: "WALLET00002", .contentType: "application/json"]

            try await app.test(.router) { client in
                try await client.execute(uri: "/health", method: .get) { r in
                    #expect(r.status == .ok)
                    #expect(r.headers[HTTPField.Name("X-Request-Id")!] != nil)
                }
                let enrollBody = Self.json(["pan": pan.digits, "expiry": "2912", "holderName": "ZHANG SAN", "deviceId": "phone-1",
                                            "devicePublicKey": device.publicKey.x963Representation.base64EncodedString()])
                // No credentials: refused as problem+json.
                try await client.execute(uri: "/v1/enrollments", method: .post, headers: [.contentType: "application/json"], body: enrollBody) { r in
                    #expect(r.status == .unauthorized)
                    #expect(r.headers[.contentType] == "application/problem+json")
                    #expect(Self.object(r.body)["code"] as? String == "unauthorized")
                }
                let enrollmentID = try await client.execute(uri: "/v1/enrollments", method: .post, headers: wallet, body: enrollBody) { r -> Int in
                    #expect(r.status == .accepted)
                    let o = Self.object(r.body)
                    #expect(o["maskedMobile"] as? String == "*******5678")
                    #expect(!String(buffer: r.body).contains(pan.digits))
                    return o["enrollmentId"] as? Int ?? -1
                }
                let sms = try await tsp.smsOutbox().last!.1
                let code = String(sms.split(separator: " ").first { $0.count == 7 && $0.hasSuffix(".") && $0.dropLast().allSatisfy(\.isNumber) }!.dropLast())
                try await client.execute(uri: "/v1/enrollments/\(enrollmentID)/otp", method: .post, headers: wallet, body: Self.json(["code": code == "000000" ? "000001" : "000000"])) { r in
                    #expect(r.status == .unprocessableContent)
                    #expect(Self.object(r.body)["code"] as? String == "otp-wrong")
                }
                let tokenID = try await client.execute(uri: "/v1/enrollments/\(enrollmentID)/otp", method: .post, headers: wallet, body: Self.json(["code": code])) { r -> Int in
                    #expect(r.status == .created)
                    let o = Self.object(r.body)
                    #expect(o["state"] as? String == "active")
                    #expect((o["maskedToken"] as? String)?.contains("******") == true)
                    return o["id"] as? Int ?? -1
                }
                try await client.execute(uri: "/v1/tokens/\(tokenID)", method: .get, headers: other) { r in
                    #expect(r.status == .forbidden)
                    #expect(Self.object(r.body)["code"] as? String == "token-not-yours")
                }
                try await client.execute(uri: "/v1/tokens/\(tokenID)/suspend", method: .post, headers: other, body: Self.json(["reason": "lost"])) { r in
                    #expect(r.status == .forbidden)
                }
                try await client.execute(uri: "/v1/tokens/\(tokenID)/suspend", method: .post, headers: wallet, body: Self.json(["reason": "lost"])) { r in
                    #expect(r.status == .ok)
                    #expect(Self.object(r.body)["state"] as? String == "suspended")
                }
                try await client.execute(uri: "/v1/tokens/\(tokenID)/activate", method: .post, headers: wallet, body: Self.json(["reason": "verified"])) { r in
                    #expect(r.status == .conflict)
                    #expect(Self.object(r.body)["code"] as? String == "lifecycle-refused")
                }
                try await client.execute(uri: "/v1/tokens/999999", method: .get, headers: wallet) { r in
                    #expect(r.status == .notFound)
                }
                // Enrollment attempts from one device are limited (5 an hour; one was used above).
                var statuses: [HTTPResponse.Status] = []
                for _ in 0..<5 {
                    statuses.append(try await client.execute(uri: "/v1/enrollments", method: .post, headers: wallet, body: enrollBody) { $0.status })
                }
                #expect(statuses.last == .tooManyRequests)
                #expect(statuses.filter { $0 == .tooManyRequests }.count == 1)

                // The OpenAPI document is served, and every path it lists is routed.
                let document = try await client.execute(uri: "/openapi.json", method: .get) { r in Self.object(r.body) }
                #expect(document["openapi"] as? String == "3.1.0")
                let paths = (document["paths"] as? [String: [String: Any]]) ?? [:]
                #expect(paths.count == 6)
                for (path, operations) in paths {
                    let concrete = path.replacingOccurrences(of: "{id}", with: "1").replacingOccurrences(of: "{action}", with: "suspend")
                    for method in operations.keys {
                        let status = try await client.execute(uri: concrete, method: HTTPRequest.Method(method.uppercased())!, headers: wallet,
                                                              body: Self.json(["reason": "lost", "code": "000000"])) { $0.status }
                        let documented = Set(((operations[method] as? [String: Any])?["responses"] as? [String: Any] ?? [:]).keys)
                        #expect(documented.contains(String(status.code)), "\(method) \(path) answered \(status.code), not documented")
                    }
                }
            }
        }
    }
}
