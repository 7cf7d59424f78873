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

/// A deployment of the cloud with its API, set up the way an operator would: through the
/// operator API. Two banks (A with a zone PIN key imported as a TR-31 block, so the test can
/// make PIN blocks; B with generated keys), a card at each, two wallets.
struct APIFixture {
    static let operatorKey = "operator-test-key-0123456789"
    static let zpk = KeyTools.oddParity([UInt8](repeating: 0x13, count: 16))
    static let zpkKCV = try! KeyTools.kcv(zpk, algorithm: .tdes).prefix(3).hexString
    static let panA = try! PAN("6210220110002707354")
    static let panB = try! PAN("6225880000000001")

    let db: Database
    let hsm: SoftwareHSM
    let issuer: IssuerHost
    let tsp: TokenService
    let api: CloudAPI

    init(_ db: Database) async throws {
        try await db.migrate(IssuerSchema.migrations + TokenSchema.migrations)
        self.db = db
        hsm = try SoftwareHSM(masterKey: [UInt8](repeating: 0x51, count: 32))
        for name in ["issuer-vault", "issuer-lookup", "tsp-kek", "tsp-lookup"] {
            _ = try hsm.generateKey(name: name, usage: .dataEncryption, algorithm: .aes, lengthBytes: 32)
        }
        issuer = IssuerHost(database: db, keys: hsm)
        tsp = TokenService(database: db, keys: hsm, vault: Vault(database: db, keys: hsm))
        try await tsp.vault.rotateDataKey()
        api = CloudAPI(tokenService: tsp, issuer: issuer, keys: hsm, configuration: CloudAPI.Configuration(operatorAPIKey: Self.operatorKey))
    }

    static let kek = [UInt8](repeating: 0x2B, count: 16)

    /// What the set-up handed out: API keys (each shown once) and ids.
    struct Credentials {
        var bankA = "", bankB = "", walletA = "", walletB = ""
        var cardA: Int64 = 0, cardB: Int64 = 0, accountA: Int64 = 0
    }

    static var operatorHeaders: HTTPFields { [.authorization: "Bearer \(operatorKey)", .contentType: "application/json"] }
    static func requestor(_ id: String, _ key: String) -> HTTPFields {
        [.authorization: "Bearer \(key)", HTTPField.Name("CloudTap-Requestor")!: id, .contentType: "application/json"]
    }
    static func bank(_ id: String, _ key: String) -> HTTPFields {
        [.authorization: "Bearer \(key)", HTTPField.Name("CloudTap-Bank")!: id, .contentType: "application/json"]
    }

    /// Sets the deployment up through the operator API.
    func provision(_ client: some TestClientProtocol) async throws -> Credentials {
        var c = Credentials()
        // Key ceremony: the key-encryption key is loaded in components (here, in the clear);
        // the zone PIN key then arrives as a TR-31 block under it.
        _ = try hsm.importClearKey(name: "ceremony/kek", usage: .keyEncryption, algorithm: .aes, key: Self.kek)
        let block = try TR31.wrap(key: Self.zpk, header: TR31.Header(keyUsage: "P0", algorithm: "T", modeOfUse: "B"), kbpk: Self.kek)
        try await client.execute(uri: "/v1/operator/keys", method: .post, headers: Self.operatorHeaders,
                                 body: json(["name": "BANKA/zpk-1", "keyBlock": block, "kekName": "ceremony/kek"])) { r in
            #expect(r.status == .created)
            #expect(object(r.body)["kcv"] as? String == Self.zpkKCV)
        }
        c.bankA = try await client.execute(uri: "/v1/operator/banks", method: .post, headers: Self.operatorHeaders,
                                           body: json(["id": "BANKA", "name": "Bank A", "institutionId": "01020000", "keys": ["zonePINKey": "BANKA/zpk-1"]])) { r in
            #expect(r.status == .created)
            return object(r.body)["apiKey"] as? String ?? ""
        }
        c.bankB = try await client.execute(uri: "/v1/operator/banks", method: .post, headers: Self.operatorHeaders,
                                           body: json(["id": "BANKB", "name": "Bank B", "institutionId": "01030000"])) { r in
            #expect(r.status == .created)
            return object(r.body)["apiKey"] as? String ?? ""
        }
        for (bank, low, high, kind) in [("BANKA", "621022", "621022", "card"), ("BANKA", "62345600", "62345699", "token"),
                                         ("BANKB", "622588", "622588", "card"), ("BANKB", "62345700", "62345799", "token")] {
            try await client.execute(uri: "/v1/operator/banks/\(bank)/bin-ranges", method: .post, headers: Self.operatorHeaders,
                                     body: json(["low": low, "high": high, "kind": kind])) { r in #expect(r.status == .created) }
        }
        c.walletA = try await client.execute(uri: "/v1/operator/requestors", method: .post, headers: Self.operatorHeaders,
                                             body: json(["id": "WALLET00001", "name": "Wallet"])) { r in
            #expect(r.status == .created)
            return object(r.body)["apiKey"] as? String ?? ""
        }
        c.walletB = try await client.execute(uri: "/v1/operator/requestors", method: .post, headers: Self.operatorHeaders,
                                             body: json(["id": "WALLET00002", "name": "Other wallet"])) { r in object(r.body)["apiKey"] as? String ?? "" }
        c.accountA = try await client.execute(uri: "/v1/operator/banks/BANKA/accounts", method: .post, headers: Self.operatorHeaders,
                                              body: json(["product": "debit", "openingBalance": 100_000])) { r in
            #expect(r.status == .created)
            #expect(object(r.body)["balance"] as? Int == 100_000)
            return Int64(object(r.body)["id"] as? Int ?? -1)
        }
        let pinBlock = try ISO9564.encipher(PINBlock.encode(pin: "1234", format: .iso0, pan: Self.panA), key: Self.zpk, pan: Self.panA).bytes.hexString
        c.cardA = try await client.execute(uri: "/v1/operator/banks/BANKA/cards", method: .post, headers: Self.operatorHeaders,
                                           body: json(["accountId": c.accountA, "pan": Self.panA.digits, "expiry": "2912", "holderName": "ZHANG SAN",
                                                       "mobile": "13812345678", "pinBlock": pinBlock])) { r in
            #expect(r.status == .created)
            #expect(object(r.body)["maskedPan"] as? String == "************7354")
            #expect(!String(buffer: r.body).contains(Self.panA.digits))
            return Int64(object(r.body)["id"] as? Int ?? -1)
        }
        // Bank B's zone PIN key was generated and nobody outside the key component knows it,
        // so its test card gets its PIN block from the key component itself.
        let accountB = try await issuer.openAccount(bank: "BANKB", product: .credit, creditLimit: 5_000_000)
        let zpkB = try hsm.exportKeyBlock(name: "BANKB/zpk", kekName: "ceremony/kek")
        let clearB = try TR31.unwrap(zpkB, kbpk: Self.kek).key
        c.cardB = try await issuer.issueCard(bank: "BANKB", account: accountB, pan: Self.panB, expiry: "3001", product: .credit, holderName: "LI SI",
                                             mobile: "13900001111", pinBlock: try ISO9564.encipher(PINBlock.encode(pin: "9999", format: .iso0, pan: Self.panB), key: clearB, pan: Self.panB))
        return c
    }

    /// Enrolls `pan` on a device through the API and verifies the code from the SMS outbox.
    func enroll(_ client: some TestClientProtocol, wallet: HTTPFields, pan: PAN, expiry: String, device: String, key: P256.KeyAgreement.PrivateKey) async throws -> Int64 {
        try await enroll(client, wallet: wallet, pan: pan, expiry: expiry, device: device, publicKey: key.publicKey)
    }

    func enroll(_ client: some TestClientProtocol, wallet: HTTPFields, pan: PAN, expiry: String, device: String, publicKey: P256.KeyAgreement.PublicKey) async throws -> Int64 {
        let enrollmentID = try await client.execute(uri: "/v1/enrollments", method: .post, headers: wallet,
                                                    body: json(["pan": pan.digits, "expiry": expiry, "holderName": "CARDHOLDER", "deviceId": device,
                                                                "devicePublicKey": publicKey.x963Representation.base64EncodedString()])) { r in
            #expect(r.status == .accepted, "\(String(buffer: r.body))")
            return object(r.body)["enrollmentId"] as? Int ?? -1
        }
        let code = try await lastCode()
        return try await client.execute(uri: "/v1/enrollments/\(enrollmentID)/otp", method: .post, headers: wallet, body: json(["code": code])) { r in
            #expect(r.status == .created)
            return Int64(object(r.body)["id"] as? Int ?? -1)
        }
    }

    func lastCode() async throws -> String {
        let sms = try await tsp.smsOutbox().last!.1
        return String(sms.split(separator: " ").first { $0.count == 7 && $0.hasSuffix(".") && $0.dropLast().allSatisfy(\.isNumber) }!.dropLast())
    }

    /// The headers of a device-signed request.
    static func deviceSigned(_ base: HTTPFields, method: String, path: String, device: String, key: P256.KeyAgreement.PrivateKey,
                             body: [UInt8] = [], at time: Date = Date()) throws -> HTTPFields {
        var headers = base
        let stamp = Int64(time.timeIntervalSince1970)
        let signature = try DeviceSignedRequest(method: method, path: path, timestamp: stamp, body: body).signature(with: key)
        headers[HTTPField.Name("CloudTap-Device")!] = device
        headers[HTTPField.Name("CloudTap-Timestamp")!] = String(stamp)
        headers[HTTPField.Name("CloudTap-Signature")!] = Data(signature).base64EncodedString()
        return headers
    }

    /// The books balance and every account agrees with its ledger entries.
    func expectBooksBalance() async throws {
        #expect(try await issuer.trialBalance() == 0)
        #expect(try await issuer.balanceMismatches().isEmpty)
    }
}

func json(_ object: [String: Any]) -> ByteBuffer { ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: object)) }
func object(_ buffer: ByteBuffer) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [String: Any] ?? [:]
}
