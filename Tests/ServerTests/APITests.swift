import CloudWire
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import IssuerHost
import NIOCore
import PaymentCore
import PaymentCrypto
import Server
import Storage
import StorageTestSupport
import Testing
import TokenService

@Suite("HTTP API", .serialized)
struct APITests {
    @Test("a wallet binds a card with the code from the SMS, then manages its token; others may not")
    func enrollment() async throws {
        try await TestDatabases.withEach("api-enroll") { db in
            let f = try await APIFixture(db)
            let app = Application(router: f.api.router())
            let device = P256.KeyAgreement.PrivateKey()
            try await app.test(.router) { client in
                let c = try await f.provision(client)
                let wallet = APIFixture.requestor("WALLET00001", c.walletA), other = APIFixture.requestor("WALLET00002", c.walletB)
                try await client.execute(uri: "/health", method: .get) { r in
                    #expect(r.status == .ok)
                    #expect(r.headers[HTTPField.Name("X-Request-Id")!] != nil)
                }
                let enrollBody = json(["pan": APIFixture.panA.digits, "expiry": "2912", "holderName": "ZHANG SAN", "deviceId": "phone-1",
                                       "devicePublicKey": device.publicKey.x963Representation.base64EncodedString()])
                // No credentials, or a bank's: refused as problem+json.
                try await client.execute(uri: "/v1/enrollments", method: .post, headers: [.contentType: "application/json"], body: enrollBody) { r in
                    #expect(r.status == .unauthorized)
                    #expect(r.headers[.contentType] == "application/problem+json")
                    #expect(object(r.body)["code"] as? String == "unauthorized")
                }
                try await client.execute(uri: "/v1/enrollments", method: .post, headers: APIFixture.bank("BANKA", c.bankA), body: enrollBody) { r in
                    #expect(r.status == .forbidden)
                }
                let enrollmentID = try await client.execute(uri: "/v1/enrollments", method: .post, headers: wallet, body: enrollBody) { r -> Int in
                    #expect(r.status == .accepted)
                    let o = object(r.body)
                    #expect(o["maskedMobile"] as? String == "*******5678")
                    #expect(!String(buffer: r.body).contains(APIFixture.panA.digits))
                    return o["enrollmentId"] as? Int ?? -1
                }
                let code = try await f.lastCode()
                try await client.execute(uri: "/v1/enrollments/\(enrollmentID)/otp", method: .post, headers: wallet, body: json(["code": code == "000000" ? "000001" : "000000"])) { r in
                    #expect(r.status == .unprocessableContent)
                    #expect(object(r.body)["code"] as? String == "otp-wrong")
                }
                let tokenID = try await client.execute(uri: "/v1/enrollments/\(enrollmentID)/otp", method: .post, headers: wallet, body: json(["code": code])) { r -> Int in
                    #expect(r.status == .created)
                    let o = object(r.body)
                    #expect(o["state"] as? String == "active")
                    #expect(o["bankId"] as? String == "BANKA")
                    #expect((o["maskedToken"] as? String)?.contains("******") == true)
                    return o["id"] as? Int ?? -1
                }
                try await client.execute(uri: "/v1/tokens/\(tokenID)", method: .get, headers: other) { r in
                    #expect(r.status == .forbidden)
                    #expect(object(r.body)["code"] as? String == "token-not-yours")
                }
                try await client.execute(uri: "/v1/tokens?deviceId=phone-1", method: .get, headers: wallet) { r in
                    #expect((object(r.body)["tokens"] as? [[String: Any]])?.count == 1)
                }
                try await client.execute(uri: "/v1/tokens", method: .get, headers: other) { r in
                    #expect((object(r.body)["tokens"] as? [[String: Any]])?.isEmpty == true)
                }
                try await client.execute(uri: "/v1/tokens/\(tokenID)/suspend", method: .post, headers: other, body: json(["reason": "lost"])) { r in
                    #expect(r.status == .forbidden)
                }
                try await client.execute(uri: "/v1/tokens/\(tokenID)/suspend", method: .post, headers: wallet, body: json(["reason": "lost", "onBehalfOf": "cardholder"])) { r in
                    #expect(r.status == .ok)
                    #expect(object(r.body)["state"] as? String == "suspended")
                }
                try await client.execute(uri: "/v1/tokens/\(tokenID)/activate", method: .post, headers: wallet, body: json(["reason": "verified"])) { r in
                    #expect(r.status == .conflict)
                    #expect(object(r.body)["code"] as? String == "lifecycle-refused")
                }
                try await client.execute(uri: "/v1/tokens/\(tokenID)/events", method: .get, headers: wallet) { r in
                    let events = object(r.body)["events"] as? [[String: Any]] ?? []
                    #expect(events.map { $0["to"] as? String } == ["inactive", "active", "suspended"])
                    #expect(events.last?["actor"] as? String == "cardholder")
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
            }
            try await f.expectBooksBalance()
        }
    }

    @Test("a bank sees and manages only its own cards and tokens; its changes reach the wallet")
    func bankScope() async throws {
        try await TestDatabases.withEach("api-bank") { db in
            let f = try await APIFixture(db)
            let app = Application(router: f.api.router())
            try await app.test(.router) { client in
                let c = try await f.provision(client)
                let wallet = APIFixture.requestor("WALLET00001", c.walletA)
                let bankA = APIFixture.bank("BANKA", c.bankA), bankB = APIFixture.bank("BANKB", c.bankB)
                let tokenA = try await f.enroll(client, wallet: wallet, pan: APIFixture.panA, expiry: "2912", device: "phone-1", key: P256.KeyAgreement.PrivateKey())
                let tokenB = try await f.enroll(client, wallet: wallet, pan: APIFixture.panB, expiry: "3001", device: "phone-1", key: P256.KeyAgreement.PrivateKey())

                try await client.execute(uri: "/v1/tokens/\(tokenA)", method: .get, headers: bankA) { r in #expect(r.status == .ok) }
                // Bank B reading or changing bank A's token is refused.
                try await client.execute(uri: "/v1/tokens/\(tokenA)", method: .get, headers: bankB) { r in
                    #expect(r.status == .forbidden)
                    #expect(object(r.body)["code"] as? String == "token-not-yours")
                }
                try await client.execute(uri: "/v1/tokens/\(tokenA)/suspend", method: .post, headers: bankB, body: json(["reason": "fraud"])) { r in
                    #expect(r.status == .forbidden)
                }
                try await client.execute(uri: "/v1/tokens", method: .get, headers: bankB) { r in
                    #expect((object(r.body)["tokens"] as? [[String: Any]])?.compactMap { $0["id"] as? Int } == [Int(tokenB)])
                }
                try await client.execute(uri: "/v1/cards/\(c.cardA)", method: .get, headers: bankB) { r in #expect(r.status == .forbidden) }
                try await client.execute(uri: "/v1/accounts/\(c.accountA)", method: .get, headers: bankB) { r in #expect(r.status == .forbidden) }
                try await client.execute(uri: "/v1/cards/\(c.cardA)", method: .get, headers: bankA) { r in
                    #expect(r.status == .ok)
                    #expect(object(r.body)["maskedPan"] as? String == "************7354")
                }
                try await client.execute(uri: "/v1/cards", method: .get, headers: bankA) { r in
                    #expect((object(r.body)["cards"] as? [[String: Any]])?.count == 1)
                    #expect(!String(buffer: r.body).contains(APIFixture.panA.digits))
                }
                try await client.execute(uri: "/v1/accounts/\(c.accountA)", method: .get, headers: bankA) { r in
                    #expect(object(r.body)["available"] as? Int == 100_000)
                }
                // A wrong bank key, or a bank key with another bank's id, is not accepted.
                try await client.execute(uri: "/v1/cards", method: .get, headers: APIFixture.bank("BANKA", c.bankB)) { r in #expect(r.status == .unauthorized) }
                // Bank A suspends its token for fraud: the wallet is told, the trail names the issuer.
                try await client.execute(uri: "/v1/tokens/\(tokenA)/suspend", method: .post, headers: bankA, body: json(["reason": "fraud"])) { r in
                    #expect(r.status == .ok)
                    #expect(object(r.body)["state"] as? String == "suspended")
                }
                try await client.execute(uri: "/v1/notifications", method: .get, headers: wallet) { r in
                    let items = object(r.body)["notifications"] as? [[String: Any]] ?? []
                    #expect(items.count == 1)
                    #expect(items.first?["event"] as? String == "suspend:fraud")
                }
                try await client.execute(uri: "/v1/tokens/\(tokenA)/events", method: .get, headers: bankA) { r in
                    #expect((object(r.body)["events"] as? [[String: Any]])?.last?["actor"] as? String == "issuer")
                }
                // Operator routes are not for banks.
                try await client.execute(uri: "/v1/operator/banks", method: .get, headers: bankA) { r in #expect(r.status == .unauthorized) }
            }
            try await f.expectBooksBalance()
        }
    }

    @Test("device operations: only the device's key provisions, replenishes and reads history; a tampered log is refused")
    func deviceOperations() async throws {
        try await TestDatabases.withEach("api-device") { db in
            let f = try await APIFixture(db)
            let app = Application(router: f.api.router())
            let phoneA = P256.KeyAgreement.PrivateKey(), phoneB = P256.KeyAgreement.PrivateKey()
            try await app.test(.router) { client in
                let c = try await f.provision(client)
                let wallet = APIFixture.requestor("WALLET00001", c.walletA)
                let tokenA = try await f.enroll(client, wallet: wallet, pan: APIFixture.panA, expiry: "2912", device: "phone-A", key: phoneA)
                let tokenB = try await f.enroll(client, wallet: wallet, pan: APIFixture.panB, expiry: "3001", device: "phone-B", key: phoneB)

                // Provisioning: the token profile, sealed to phone A's key.
                let provision = "/v1/tokens/\(tokenA)/provision"
                try await client.execute(uri: provision, method: .post, headers: wallet) { r in
                    #expect(r.status == .unauthorized)
                    #expect(object(r.body)["code"] as? String == "device-signature-required")
                }
                try await client.execute(uri: provision, method: .post,
                                         headers: try APIFixture.deviceSigned(wallet, method: "POST", path: provision, device: "phone-A", key: phoneB)) { r in
                    #expect(r.status == .forbidden)
                    #expect(object(r.body)["code"] as? String == "device-signature-invalid")
                }
                try await client.execute(uri: provision, method: .post,
                                         headers: try APIFixture.deviceSigned(wallet, method: "POST", path: provision, device: "phone-A", key: phoneA,
                                                                               at: Date().addingTimeInterval(-600))) { r in
                    #expect(r.status == .forbidden)
                }
                let token = try await client.execute(uri: provision, method: .post,
                                                     headers: try APIFixture.deviceSigned(wallet, method: "POST", path: provision, device: "phone-A", key: phoneA)) { r -> TokenProfile? in
                    #expect(r.status == .ok)
                    guard let sealed = (object(r.body)["sealedProfile"] as? String).flatMap({ Data(base64Encoded: $0) }) else { return nil }
                    #expect(throws: (any Error).self) { try TokenProfile.open(Array(sealed), with: phoneB) }
                    return try TokenProfile.open(Array(sealed), with: phoneA)
                }
                #expect(token?.expiry.count == 4)
                #expect(token?.token.hasPrefix("623456") == true)
                #expect(token?.cryptogramProfile == "cloud")

                // Replenishment, signed by the device, carrying its log.
                func replenish(_ token: Int64, device: String, signer: P256.KeyAgreement.PrivateKey, log: [PhoneLogEntry], nonce: String = UUID().uuidString,
                               tamper: Bool = false) async throws -> (HTTPResponse.Status, [String: Any]) {
                    var request = ReplenishmentRequest(tokenID: token, deviceID: device, timestamp: Date(), nonce: nonce, log: log)
                    try request.sign(with: signer)
                    let entries = request.log.map { ["atc": Int($0.atc), "keySequence": Int($0.keySequence), "amount": tamper ? $0.amount + 1 : $0.amount] }
                    return try await client.execute(uri: "/v1/tokens/\(token)/replenish", method: .post, headers: wallet,
                                                    body: json(["deviceId": device, "timestamp": Int(request.timestamp.timeIntervalSince1970), "nonce": nonce,
                                                                "log": entries, "signature": Data(request.signature).base64EncodedString()])) { ($0.status, object($0.body)) }
                }
                let (status, batch) = try await replenish(tokenA, device: "phone-A", signer: phoneA, log: [], nonce: "first")
                #expect(status == .ok)
                let keys = batch["keys"] as? [[String: Any]] ?? []
                #expect(keys.count == 5)
                // Each key opens only with phone A's private key, bound to its index.
                if let first = keys.first, let sealed = (first["sealedKey"] as? String).flatMap({ Data(base64Encoded: $0) }),
                   let hour = first["generationHour"] as? Int, let sequence = first["sequence"] as? Int {
                    let index = LimitedUseKeyIndex(generationHour: UInt32(hour), sequence: UInt16(sequence))
                    #expect(try DeviceKeyWrap.open(Array(sealed), with: phoneA, context: index.bytes).count == 16)
                    #expect(throws: (any Error).self) { try DeviceKeyWrap.open(Array(sealed), with: phoneB, context: index.bytes) }
                }
                #expect(try await replenish(tokenA, device: "phone-A", signer: phoneA, log: [], nonce: "first").1["code"] as? String == "nonce-reused")
                // Device B cannot replenish device A's token, neither under A's name nor its own.
                #expect(try await replenish(tokenA, device: "phone-A", signer: phoneB, log: []).0 == .forbidden)
                #expect(try await replenish(tokenA, device: "phone-B", signer: phoneB, log: []).1["code"] as? String == "token-not-on-device")

                // A payment is validated in the cloud; then a log that hides it, changes it, or was
                // altered after signing is refused.
                let index = LimitedUseKeyIndex(generationHour: UInt32(keys[0]["generationHour"] as? Int ?? 0), sequence: UInt16(keys[0]["sequence"] as? Int ?? 0))
                let luk = try DeviceKeyWrap.open(Array(Data(base64Encoded: keys[0]["sealedKey"] as? String ?? "")!), with: phoneA, context: index.bytes)
                let tokenPAN = try PAN(token?.token ?? "")
                var elements = try BCD.pack("3850", byteCount: 6) + [UInt8](repeating: 0, count: 6) + [0x01, 0x56, 0, 0, 0, 0, 0]
                elements += [0x01, 0x56, 0x26, 0x11, 0x26, 0x00, 0x12, 0x34, 0x56, 0x78, 0x7C, 0x00, 0x00, 0x07]
                let data = try TransactionData(elements: elements, iad: CloudIAD(dki: 1, cvr: [3, 0xA0, 0, 0], algorithm: .tdes, keyIndex: index, useCount: 1).bytes)
                let arqc = try Cryptogram.generate(profile: .cloud, cardKey: luk, data: data)
                guard case .valid = try await f.tsp.validate(CryptogramCheck(token: tokenPAN, data: data, arqc: arqc)) else {
                    Issue.record("the cloud refused a good cryptogram"); return
                }
                let paid = PhoneLogEntry(atc: 7, keySequence: index.sequence, amount: 3850)
                #expect(try await replenish(tokenA, device: "phone-A", signer: phoneA, log: []).1["code"] as? String == "log-incomplete")
                #expect(try await replenish(tokenA, device: "phone-A", signer: phoneA, log: [PhoneLogEntry(atc: 7, keySequence: index.sequence, amount: 385)]).1["code"] as? String == "log-disagrees")
                #expect(try await replenish(tokenA, device: "phone-A", signer: phoneA, log: [paid], tamper: true).1["code"] as? String == "device-signature-invalid")
                let topUp = try await replenish(tokenA, device: "phone-A", signer: phoneA, log: [paid])
                #expect(topUp.0 == .ok)
                #expect((topUp.1["keys"] as? [[String: Any]])?.count == 0)  // the pool still holds five usable keys
                #expect(topUp.1["unseenAtcs"] as? [Int] == [])
                // A tap the cloud holds no transaction for is named, for the phone to send again.
                let early = try await replenish(tokenA, device: "phone-A", signer: phoneA, log: [paid, PhoneLogEntry(atc: 8, keySequence: index.sequence, amount: 100)])
                #expect(early.1["unseenAtcs"] as? [Int] == [8])

                // History: with phone A's signature only; its bank may read it too.
                let history = "/v1/tokens/\(tokenA)/transactions"
                try await client.execute(uri: history, method: .get, headers: try APIFixture.deviceSigned(wallet, method: "GET", path: history, device: "phone-A", key: phoneA)) { r in
                    #expect(r.status == .ok)
                    let items = object(r.body)["transactions"] as? [[String: Any]] ?? []
                    #expect(items.count == 1)
                    #expect(items.first?["amount"] as? Int == 3850)
                    #expect(items.first?["atc"] as? Int == 7)
                }
                try await client.execute(uri: history, method: .get, headers: try APIFixture.deviceSigned(wallet, method: "GET", path: history, device: "phone-B", key: phoneB)) { r in
                    #expect(r.status == .forbidden)
                }
                let otherHistory = "/v1/tokens/\(tokenB)/transactions"
                try await client.execute(uri: otherHistory, method: .get, headers: try APIFixture.deviceSigned(wallet, method: "GET", path: otherHistory, device: "phone-B", key: phoneA)) { r in
                    #expect(r.status == .forbidden)
                }
                try await client.execute(uri: history, method: .get, headers: APIFixture.bank("BANKA", c.bankA)) { r in #expect(r.status == .ok) }
                try await client.execute(uri: history, method: .get, headers: APIFixture.bank("BANKB", c.bankB)) { r in #expect(r.status == .forbidden) }
            }
            try await f.expectBooksBalance()
        }
    }

    @Test("operator API: keys only by KCV, ranges without overlap, test cards checked; off without an operator key")
    func operatorAPI() async throws {
        try await TestDatabases.withEach("api-operator") { db in
            let f = try await APIFixture(db)
            let app = Application(router: f.api.router())
            try await app.test(.router) { client in
                let c = try await f.provision(client)
                let op = APIFixture.operatorHeaders
                try await client.execute(uri: "/v1/operator/banks", method: .get, headers: [.authorization: "Bearer wrong"]) { r in #expect(r.status == .unauthorized) }
                try await client.execute(uri: "/v1/operator/banks", method: .get, headers: op) { r in
                    let banks = object(r.body)["banks"] as? [[String: Any]] ?? []
                    #expect(banks.compactMap { $0["id"] as? String } == ["BANKA", "BANKB"])
                    let keys = banks.first?["keys"] as? [[String: Any]] ?? []
                    #expect(Set(keys.compactMap { $0["usage"] as? String }) == ["E0", "P0", "V2", "C0"])
                    #expect(keys.allSatisfy { ($0["kcv"] as? String)?.count == 6 && $0["key"] == nil })
                }
                try await client.execute(uri: "/v1/operator/banks/BANKA/keys", method: .get, headers: op) { r in
                    let keys = object(r.body)["keys"] as? [[String: Any]] ?? []
                    #expect(keys.contains { $0["name"] as? String == "BANKA/zpk-1" })
                    #expect(!keys.contains { ($0["name"] as? String)?.hasPrefix("BANKB") == true })
                    // The imported zone PIN key, by its check value.
                    #expect(keys.first { $0["name"] as? String == "BANKA/zpk-1" }?["kcv"] as? String == APIFixture.zpkKCV)
                }
                try await client.execute(uri: "/v1/operator/banks", method: .post, headers: op,
                                         body: json(["id": "BANKA", "name": "again", "institutionId": "01020000"])) { r in #expect(r.status == .conflict) }
                try await client.execute(uri: "/v1/operator/banks", method: .post, headers: op,
                                         body: json(["id": "BANKC", "name": "C", "institutionId": "01040000", "keys": ["zonePINKey": "BANKA/pvk"]])) { r in
                    #expect(r.status == .unprocessableContent)
                    #expect(object(r.body)["code"] as? String == "key-usage-mismatch")
                }
                try await client.execute(uri: "/v1/operator/banks/BANKB/bin-ranges", method: .post, headers: op,
                                         body: json(["low": "62345650", "high": "62345659", "kind": "token"])) { r in
                    #expect(r.status == .conflict)
                    #expect(object(r.body)["code"] as? String == "range-overlaps")
                }
                try await client.execute(uri: "/v1/operator/banks/NOSUCH/bin-ranges", method: .post, headers: op,
                                         body: json(["low": "999999", "high": "999999", "kind": "card"])) { r in #expect(r.status == .notFound) }
                try await client.execute(uri: "/v1/operator/keys", method: .post, headers: op,
                                         body: json(["name": "BANKA/zpk-2", "keyBlock": "D0112P0TE00E0000" + String(repeating: "0", count: 96), "kekName": "ceremony/kek"])) { r in
                    #expect(r.status == .unprocessableContent)
                    #expect(object(r.body)["code"] as? String == "key-block-refused")
                }
                // Test cards: inside the bank's card ranges, on its own account, with a PIN block that decrypts.
                let pan = try PAN("6210220110002707362")
                let goodPIN = try ISO9564.encipher(PINBlock.encode(pin: "4321", format: .iso0, pan: pan), key: APIFixture.zpk, pan: pan).bytes.hexString
                let wrongKeyPIN = try ISO9564.encipher(PINBlock.encode(pin: "4321", format: .iso0, pan: pan), key: [UInt8](repeating: 0x5D, count: 16), pan: pan).bytes.hexString
                func card(_ pan: String, account: Int64, pin: String) async throws -> (HTTPResponse.Status, String?) {
                    try await client.execute(uri: "/v1/operator/banks/BANKA/cards", method: .post, headers: op,
                                             body: json(["accountId": account, "pan": pan, "expiry": "2912", "holderName": "WANG WU", "mobile": "13700000000", "pinBlock": pin])) {
                        ($0.status, object($0.body)["code"] as? String)
                    }
                }
                #expect(try await card("6225880000000019", account: c.accountA, pin: goodPIN).1 == "card-outside-bin-ranges")
                #expect(try await card(pan.digits, account: 999_999, pin: goodPIN).1 == "account-unknown")
                #expect(try await card(pan.digits, account: c.accountA, pin: wrongKeyPIN).1 == "pin-block-refused")
                #expect(try await card("6210220110002707363", account: c.accountA, pin: goodPIN).1 == "card-number-invalid")
                #expect(try await card(pan.digits, account: c.accountA, pin: goodPIN).0 == .created)
                try await client.execute(uri: "/v1/operator/requestors", method: .get, headers: op) { r in
                    #expect((object(r.body)["requestors"] as? [[String: Any]])?.count == 2)
                    #expect(!String(buffer: r.body).contains(c.walletA))
                }
                // The SMS gateway's stand-in: the code is there, the mobile number masked.
                _ = try await f.enroll(client, wallet: APIFixture.requestor("WALLET00001", c.walletA), pan: APIFixture.panA, expiry: "2912", device: "p-sms",
                                       key: P256.KeyAgreement.PrivateKey())
                let code = try await f.lastCode()
                try await client.execute(uri: "/v1/operator/sms?mobileEndsWith=5678", method: .get, headers: op) { r in
                    let messages = object(r.body)["messages"] as? [[String: Any]] ?? []
                    #expect(messages.count == 1)
                    #expect(messages.first?["maskedMobile"] as? String == "*******5678")
                    #expect((messages.first?["text"] as? String)?.contains(code) == true)
                    #expect(!String(buffer: r.body).contains("13812345678"))
                }
                // A new bank key replaces the old one.
                let fresh = try await client.execute(uri: "/v1/operator/banks/BANKA/api-key", method: .post, headers: op) { object($0.body)["apiKey"] as? String ?? "" }
                try await client.execute(uri: "/v1/cards", method: .get, headers: APIFixture.bank("BANKA", c.bankA)) { r in #expect(r.status == .unauthorized) }
                try await client.execute(uri: "/v1/cards", method: .get, headers: APIFixture.bank("BANKA", fresh)) { r in #expect(r.status == .ok) }
            }
            // Without an operator key, the operator API is off.
            let closed = Application(router: CloudAPI(tokenService: f.tsp, issuer: f.issuer, keys: f.hsm).router())
            try await closed.test(.router) { client in
                try await client.execute(uri: "/v1/operator/banks", method: .get, headers: APIFixture.operatorHeaders) { r in
                    #expect(r.status == .notFound)
                    #expect(object(r.body)["code"] as? String == "operator-api-disabled")
                }
            }
            try await f.expectBooksBalance()
        }
    }

    @Test("the server answers every operation of its OpenAPI document with a documented status")
    func conformance() async throws {
        try await TestDatabases.withEach("api-openapi") { db in
            let f = try await APIFixture(db)
            let app = Application(router: f.api.router())
            try await app.test(.router) { client in
                let c = try await f.provision(client)
                let document = try await client.execute(uri: "/openapi.json", method: .get) { r in object(r.body) }
                #expect(document["openapi"] as? String == "3.1.0")
                let paths = (document["paths"] as? [String: [String: Any]]) ?? [:]
                #expect(paths.count >= 20)
                // Each operation is called as each kind of caller, with a body that fits none of them
                // well; whatever it answers must be documented.
                let callers: [HTTPFields] = [[:], APIFixture.requestor("WALLET00001", c.walletA), APIFixture.bank("BANKA", c.bankA), APIFixture.operatorHeaders]
                for (path, operations) in paths {
                    let concrete = path.replacingOccurrences(of: "{id}", with: "1").replacingOccurrences(of: "{action}", with: "suspend")
                        .replacingOccurrences(of: "{bank}", with: "BANKA")
                    for method in operations.keys {
                        let documented = Set(((operations[method] as? [String: Any])?["responses"] as? [String: Any] ?? [:]).keys)
                        for caller in callers {
                            var headers = caller
                            headers[.contentType] = "application/json"
                            let status = try await client.execute(uri: concrete, method: HTTPRequest.Method(method.uppercased())!, headers: headers,
                                                                  body: json(["reason": "lost", "code": "000000"])) { $0.status }
                            #expect(documented.contains(String(status.code)), "\(method) \(path) answered \(status.code), not documented")
                        }
                    }
                }
            }
        }
    }
}
