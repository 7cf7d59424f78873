import CloudWire
import Crypto
import Foundation
import Logging
import IssuerHost
import PaymentCore
import PaymentCrypto
import Server
import Storage
import StorageTestSupport
import Testing
import TokenService

/// A bank, its host, and a token service on one database with one key component.
struct Cloud {
    let db: Database
    let hsm: SoftwareHSM
    let issuer: IssuerHost
    let tsp: TokenService
    let zpk: [UInt8]
    let card = try! PAN("6210220110002707354")

    static func make(_ db: Database) async throws -> Cloud {
        try await db.migrate(IssuerSchema.migrations + TokenSchema.migrations)
        let hsm = try SoftwareHSM(masterKey: [UInt8](repeating: 0x33, count: 32))
        var rng = SeededRandomNumberGenerator(seed: 3)
        let zpk = KeyTools.oddParity(rng.bytes(16))
        _ = try hsm.importClearKey(name: "BANKA/zpk", usage: .pinEncryption, algorithm: .tdes, key: zpk)
        // A fixed PVK: a Visa PVV is four digits, so under a random key a given wrong PIN verifies
        // about once in 10,000 keys (two PINs sharing a PVV — what the try counter is for), and
        // the tests that expect one declined would fail that often.
        var pvkSeed = SeededRandomNumberGenerator(seed: 71)
        _ = try hsm.importClearKey(name: "BANKA/pvk", usage: .pinVerificationVisaPVV, algorithm: .tdes, key: KeyTools.oddParity(pvkSeed.bytes(16)))
        _ = try hsm.generateKey(name: "BANKA/imk-ac", usage: .issuerMasterKeyAC, algorithm: .tdes, lengthBytes: 16)
        _ = try hsm.generateKey(name: "BANKA/cvk", usage: .cardVerification, algorithm: .tdes, lengthBytes: 16)
        for name in ["issuer-vault", "issuer-lookup", "tsp-kek", "tsp-lookup"] {
            _ = try hsm.generateKey(name: name, usage: .dataEncryption, algorithm: .aes, lengthBytes: 32)
        }
        _ = try hsm.generateKey(name: "tsp/BANKA/imk-ac", usage: .issuerMasterKeyAC, algorithm: .tdes, lengthBytes: 16)
        let issuer = IssuerHost(database: db, keys: hsm)
        try await issuer.addBank(BankSetup(id: "BANKA", name: "Bank A", institutionID: "01020000", cardKeyName: "BANKA/imk-ac",
                                           pinKeyName: "BANKA/zpk", pvkName: "BANKA/pvk"))
        let tsp = TokenService(database: db, keys: hsm, vault: Vault(database: db, keys: hsm))
        try await tsp.vault.rotateDataKey()
        _ = try await tsp.registerRequestor(id: "BANKAPP0001", name: "Bank A app")
        try await tsp.addTokenRange(bank: "BANKA", low: "62345600", high: "62345699")
        try await tsp.setBankKeys(bank: "BANKA", imkName: "tsp/BANKA/imk-ac")
        let cloud = Cloud(db: db, hsm: hsm, issuer: issuer, tsp: tsp, zpk: zpk)
        let account = try await issuer.openAccount(bank: "BANKA", product: .debit, openingBalance: 500_000)
        _ = try await issuer.issueCard(bank: "BANKA", account: account, pan: cloud.card, expiry: "2912", product: .debit, holderName: "ZHANG SAN",
                                       mobile: "13812345678", pinBlock: try ISO9564.encipher(PINBlock.encode(pin: "135790", format: .iso0, pan: cloud.card), key: zpk, pan: cloud.card),
                                       deviceLimit: 2)
        return cloud
    }

    var cvn2: String { get throws { try hsm.generateCVV(cvk: "BANKA/cvk", pan: card, expiry: "2912", serviceCode: "000") } }

    func enroll(device: String, key: P256.KeyAgreement.PrivateKey, cvn2: String? = nil, pan: PAN? = nil) async throws -> EnrollmentOutcome {
        try await tsp.enroll(EnrollmentRequest(requestor: "BANKAPP0001", pan: pan ?? card, expiry: "2912", cvn2: try cvn2 ?? self.cvn2,
                                               holderName: "ZHANG SAN", deviceID: device, devicePublicKey: key.publicKey),
                             issuer: IssuerHostEligibility(host: issuer))
    }

    /// The code from the last SMS.
    func lastCode() async throws -> String {
        let (_, text) = try await tsp.smsOutbox().last!
        return String(text.split(separator: " ").first { $0.count == 7 && $0.hasSuffix(".") && $0.dropLast().allSatisfy(\.isNumber) }!.dropLast())
    }
}

@Suite("Bind a card, pay, on SQLite and PostgreSQL", .serialized)
struct CloudFlowTests {
    static func each(_ label: String, _ body: (Cloud) async throws -> Void) async throws {
        try await TestDatabases.withEach(label) { db in
            let c = try await Cloud.make(db)
            try await body(c)
            #expect(try await c.issuer.trialBalance() == 0)
        }
    }

    @Test("OTP: wrong, over-tried, expired, then right")
    func otp() async throws {
        try await Self.each("otp") { (c: Cloud) async throws -> Void in
            let device = P256.KeyAgreement.PrivateKey()
            guard case .codeSent(let id, let masked) = try await c.enroll(device: "phone-1", key: device) else { Issue.record("not sent"); return }
            #expect(masked == "*******5678")
            #expect(try await c.tsp.smsOutbox().last?.0 == "13812345678")
            let code = try await c.lastCode()
            let wrong = code == "000000" ? "000001" : "000000"
            #expect(try await c.tsp.verifyOTP(enrollmentID: id, code: wrong) == .wrongCode(attemptsLeft: 2))
            #expect(try await c.tsp.verifyOTP(enrollmentID: id, code: wrong) == .wrongCode(attemptsLeft: 1))
            #expect(try await c.tsp.verifyOTP(enrollmentID: id, code: wrong) == .tooManyAttempts)
            #expect(try await c.tsp.verifyOTP(enrollmentID: id, code: code) == .unknown)  // locked

            guard case .codeSent(let id2, _) = try await c.enroll(device: "phone-1", key: device) else { Issue.record("not sent"); return }
            let later = Date().addingTimeInterval(301)
            #expect(try await c.tsp.verifyOTP(enrollmentID: id2, code: try await c.lastCode(), now: later) == .expired)

            guard case .codeSent(let id3, _) = try await c.enroll(device: "phone-1", key: device) else { Issue.record("not sent"); return }
            guard case .verified(let token) = try await c.tsp.verifyOTP(enrollmentID: id3, code: try await c.lastCode()) else { Issue.record("not verified"); return }
            #expect(token.state == .active)
            #expect(token.assurance == "10")
            #expect(try await c.tsp.history(tokenID: token.id).map(\.1) == [.inactive, .active])
        }
    }

    @Test("ineligible cards and the device limit are refused")
    func eligibility() async throws {
        try await Self.each("elig") { (c: Cloud) async throws -> Void in
            let key = P256.KeyAgreement.PrivateKey()
            let wrongCVN2 = try c.cvn2 == "999" ? "998" : "999"
            #expect(try await c.enroll(device: "p", key: key, cvn2: wrongCVN2) == .refused("card not eligible: CVN2 does not match"))
            #expect(try await c.enroll(device: "p", key: key, pan: try PAN("6210220110002707362")) == .refused("card not eligible: no such card"))
            for device in ["phone-1", "phone-2"] {
                guard case .codeSent(let id, _) = try await c.enroll(device: device, key: key) else { Issue.record("not sent"); return }
                guard case .verified = try await c.tsp.verifyOTP(enrollmentID: id, code: try await c.lastCode()) else { Issue.record("not verified"); return }
            }
            #expect(try await c.enroll(device: "phone-1", key: key) == .refused("this device already holds a token for the card"))
            #expect(try await c.enroll(device: "phone-3", key: key) == .refused("the card is on 2 devices, its limit"))
        }
    }

    @Test("a tap: the cloud checks the cryptogram, de-tokenizes, and the issuer approves; a suspended token is declined")
    func tap() async throws {
        try await Self.each("tap") { (c: Cloud) async throws -> Void in
            let device = P256.KeyAgreement.PrivateKey()
            guard case .codeSent(let id, _) = try await c.enroll(device: "phone-1", key: device),
                  case .verified(let token) = try await c.tsp.verifyOTP(enrollmentID: id, code: try await c.lastCode()) else {
                Issue.record("enrollment failed"); return
            }
            let keys = try await c.tsp.issueKeys(tokenID: token.id, count: 2)
            // The phone's side: key, track data and cryptogram for 38.50 CNY.
            let luk = try DeviceKeyWrap.open(keys[0].sealedKey, with: device, context: keys[0].index.bytes)
            var elements = try BCD.pack("3850", byteCount: 6) + [UInt8](repeating: 0, count: 6) + [0x01, 0x56, 0, 0, 0, 0, 0]
            elements += [0x01, 0x56, 0x26, 0x11, 0x26, 0x00, 0x12, 0x34, 0x56, 0x78, 0x7C, 0x00, 0x00, 0x01]
            let iad = CloudIAD(dki: 1, cvr: [3, 0xA0, 0, 0], algorithm: .tdes, keyIndex: keys[0].index, useCount: 1)
            let data = try TransactionData(elements: elements, iad: iad.bytes)
            let arqc = try Cryptogram.generate(profile: .cloud, cardKey: luk, data: data)
            // The token number is what the POS reads; here we take it from the vault as the switch would see it in DE2.
            let number = try await Self.tokenNumber(c, token.id)
            guard case .valid(let pan, _, _) = try await c.tsp.validate(CryptogramCheck(token: number, data: data, arqc: arqc)) else {
                Issue.record("cryptogram declined"); return
            }
            #expect(pan == c.card)
            let outcome = try await c.issuer.authorize(AuthorizationInput(idempotencyKey: "ACQ/TERM0001/000001", pan: pan, amount: try Amount("38.50", currency: .cny)))
            #expect(outcome.decision.isApproved)
            // Lost phone: suspended; the next tap is declined in the cloud.
            try await c.tsp.change(tokenID: token.id, .suspend, actor: .cardholder, reason: .lost)
            var next = data.elements
            next[32] = 0x02
            let data2 = try TransactionData(elements: next, iad: iad.bytes)
            let arqc2 = try Cryptogram.generate(profile: .cloud, cardKey: luk, data: data2)
            #expect(try await c.tsp.validate(CryptogramCheck(token: number, data: data2, arqc: arqc2)) == .declined(responseCode: "62", reason: "token is suspended"))
        }
    }

    static func tokenNumber(_ c: Cloud, _ id: Int64) async throws -> PAN {
        try await c.tsp.tokenNumber(tokenID: id)
    }
}

@Suite("Replenishment on SQLite and PostgreSQL", .serialized)
struct ReplenishmentTests {
    @Test("signed by the device, log checked against the cloud's, pool topped up")
    func replenish() async throws {
        try await CloudFlowTests.each("replenish") { (c: Cloud) async throws -> Void in
            let phoneA = P256.KeyAgreement.PrivateKey(), phoneB = P256.KeyAgreement.PrivateKey()
            var tokens: [Int64] = []
            for (device, key) in [("phone-A", phoneA), ("phone-B", phoneB)] {
                guard case .codeSent(let id, _) = try await c.enroll(device: device, key: key),
                      case .verified(let token) = try await c.tsp.verifyOTP(enrollmentID: id, code: try await c.lastCode()) else {
                    Issue.record("enrollment failed"); return
                }
                tokens.append(token.id)
            }
            let keys = try await c.tsp.issueKeys(tokenID: tokens[0], count: 2)
            // One payment with the first key, validated by the cloud.
            let luk = try DeviceKeyWrap.open(keys[0].sealedKey, with: phoneA, context: keys[0].index.bytes)
            let elements = try BCD.pack("3850", byteCount: 6) + [UInt8](repeating: 0, count: 6) + [0x01, 0x56, 0, 0, 0, 0, 0]
                + [0x01, 0x56, 0x26, 0x11, 0x26, 0x00, 0x12, 0x34, 0x56, 0x78, 0x7C, 0x00, 0x00, 0x07]
            let data = try TransactionData(elements: elements, iad: CloudIAD(dki: 1, cvr: [3, 0, 0, 0], algorithm: .tdes, keyIndex: keys[0].index, useCount: 1).bytes)
            let number = try await c.tsp.tokenNumber(tokenID: tokens[0])
            guard case .valid = try await c.tsp.validate(CryptogramCheck(token: number, data: data, arqc: try Cryptogram.generate(profile: .cloud, cardKey: luk, data: data))) else {
                Issue.record("payment declined"); return
            }
            let honest = [PhoneLogEntry(atc: 7, keySequence: keys[0].index.sequence, amount: 3850)]
            func request(_ log: [PhoneLogEntry], token: Int64 = tokens[0], device: String = "phone-A", signer: P256.KeyAgreement.PrivateKey = phoneA,
                         nonce: String = UUID().uuidString) throws -> ReplenishmentRequest {
                var r = ReplenishmentRequest(tokenID: token, deviceID: device, timestamp: Date(), nonce: nonce, log: log)
                try r.sign(with: signer)
                return r
            }
            // A log that hides the payment, or changes its amount, is refused.
            guard case .refused(let hidden) = try await c.tsp.replenish(try request([])) else { Issue.record("hidden payment accepted"); return }
            #expect(hidden == .logIncomplete(atc: 7))
            guard case .refused(let changed) = try await c.tsp.replenish(try request([PhoneLogEntry(atc: 7, keySequence: keys[0].index.sequence, amount: 385)])) else {
                Issue.record("altered log accepted"); return
            }
            #expect(changed == .logDisagrees(atc: 7))
            // A request tampered after signing is refused.
            var tampered = try request(honest)
            tampered.log[0].amount = 1
            #expect(try await c.tsp.replenish(tampered) == .refused(.badSignature))
            // Device B cannot replenish device A's token (its signature, its device id).
            #expect(try await c.tsp.replenish(try request(honest, signer: phoneB)) == .refused(.badSignature))
            #expect(try await c.tsp.replenish(try request(honest, device: "phone-B", signer: phoneB)) == .refused(.notThisDevice))
            // The honest request tops the pool up to five usable keys; its nonce cannot be replayed.
            let good = try request(honest, nonce: "n-1")
            guard case .issued(let fresh, let unseen) = try await c.tsp.replenish(good) else { Issue.record("honest request refused"); return }
            #expect(fresh.count == 3)
            #expect(Set(fresh.map(\.index.sequence)) == [3, 4, 5])
            #expect(unseen.isEmpty)
            #expect(try await c.tsp.replenish(good) == .refused(.nonceReused))
            // The same log sent again (its answer lost): accounted for already, nothing unseen.
            // A tap the cloud has no transaction for is named, so the phone sends it again.
            let later = [PhoneLogEntry(atc: 8, keySequence: keys[0].index.sequence, amount: 100)]
            #expect(try await c.tsp.replenish(try request(honest)) == .issued([], unseen: []))
            #expect(try await c.tsp.replenish(try request(honest + later)) == .issued([], unseen: [8]))
        }
    }
}

@Suite("No secrets in logs or at rest")
struct SecretsTests {
    @Test("a whole enrollment and tap, logged at trace level and stored in SQLite, leave no card number, PIN or key in the logs or the file")
    func scan() async throws {
        let logs = CapturedLogs()
        let logger = Logger(label: "cloudtap.test") { _ in CapturingLogHandler(sink: logs) }
        let path = TestDatabases.sqlitePath("scan")
        let db = try await Database.open(.sqlite(path: path), logger: logger)
        var secrets: [String] = []
        do {
            let c = try await Cloud.make(db)
            let device = P256.KeyAgreement.PrivateKey()
            guard case .codeSent(let id, _) = try await c.enroll(device: "phone-1", key: device),
                  case .verified(let token) = try await c.tsp.verifyOTP(enrollmentID: id, code: try await c.lastCode()) else {
                Issue.record("enrollment failed"); await db.shutdown(); return
            }
            let keys = try await c.tsp.issueKeys(tokenID: token.id, count: 1)
            let luk = try DeviceKeyWrap.open(keys[0].sealedKey, with: device, context: keys[0].index.bytes)
            let elements = try BCD.pack("128800", byteCount: 6) + [UInt8](repeating: 0, count: 6) + [0x01, 0x56, 0, 0, 0, 0, 0]
                + [0x01, 0x56, 0x26, 0x11, 0x26, 0x00, 0x12, 0x34, 0x56, 0x78, 0x7C, 0x00, 0x00, 0x01]
            let data = try TransactionData(elements: elements, iad: CloudIAD(dki: 1, cvr: [3, 0, 0, 0], algorithm: .tdes, keyIndex: keys[0].index, useCount: 1).bytes)
            let number = try await c.tsp.tokenNumber(tokenID: token.id)
            guard case .valid(let pan, _, _) = try await c.tsp.validate(CryptogramCheck(token: number, data: data, arqc: try Cryptogram.generate(profile: .cloud, cardKey: luk, data: data))) else {
                Issue.record("declined"); await db.shutdown(); return
            }
            // With the PIN, as above the no-PIN limit.
            let pinBlock = try ISO9564.encipher(PINBlock.encode(pin: "135790", format: .iso0, pan: pan), key: c.zpk, pan: pan)
            let outcome = try await c.issuer.authorize(AuthorizationInput(idempotencyKey: "ACQ/TERM0001/000042", pan: pan, amount: try Amount("1288.00", currency: .cny), pinBlock: pinBlock))
            #expect(outcome.decision.isApproved)
            secrets = [c.card.digits, number.digits, "135790", c.zpk.hexString, luk.hexString, pinBlock.bytes.hexString]
        } catch {
            await db.shutdown()
            throw error
        }
        await db.shutdown()
        #expect(!logs.text.isEmpty)
        expectNoSecrets(secrets, inDatabase: path, logs: logs)
    }
}

/// Expects none of `secrets` in the SQLite file at `path` (with its WAL) or in the logs.
func expectNoSecrets(_ secrets: [String], inDatabase path: String, logs: CapturedLogs) {
    var bytes = Data()
    for suffix in ["", "-wal"] { bytes += (try? Data(contentsOf: URL(fileURLWithPath: path + suffix))) ?? Data() }
    let file = String(decoding: bytes, as: UTF8.self), logText = logs.text
    for secret in secrets where !secret.isEmpty {
        #expect(!file.contains(secret), "a secret (\(secret.count) characters) is in the database file")
        #expect(!logText.contains(secret), "a secret (\(secret.count) characters) is in the logs")
    }
}
