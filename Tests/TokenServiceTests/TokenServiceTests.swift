import Foundation
import PaymentCore
import PaymentCrypto
import Storage
import StorageTestSupport
import Testing
@testable import TokenService

struct TSPFixture {
    let db: Database
    let hsm: SoftwareHSM
    let tsp: TokenService

    static func make(_ location: DatabaseLocation) async throws -> TSPFixture {
        let db = try await Database.open(location)
        do { return try await make(db) } catch {
            await db.shutdown()
            throw error
        }
    }

    static func make(_ db: Database) async throws -> TSPFixture {
        try await db.migrate(TokenSchema.migrations)
        let hsm = try SoftwareHSM(masterKey: [UInt8](repeating: 0x24, count: 32))
        _ = try hsm.generateKey(name: "tsp-kek", usage: .dataEncryption, algorithm: .aes, lengthBytes: 32)
        _ = try hsm.generateKey(name: "tsp-kek-2", usage: .dataEncryption, algorithm: .aes, lengthBytes: 32)
        _ = try hsm.generateKey(name: "tsp-lookup", usage: .dataEncryption, algorithm: .aes, lengthBytes: 32)
        let tsp = TokenService(database: db, keys: hsm, vault: Vault(database: db, keys: hsm))
        try await tsp.vault.rotateDataKey()
        _ = try await tsp.registerRequestor(id: "BANKAPP0001", name: "Bank A app")
        _ = try await tsp.registerRequestor(id: "WALLET00001", name: "A wallet")
        try await tsp.addTokenRange(bank: "BANKA", low: "62345600", high: "62345699")
        return TSPFixture(db: db, hsm: hsm, tsp: tsp)
    }
}

@Suite("Token service on SQLite and PostgreSQL", .serialized)
struct TokenServiceTests {
    static func each(_ label: String, _ body: (TSPFixture) async throws -> Void) async throws {
        try await TestDatabases.withEach(label) { db in try await body(try await TSPFixture.make(db)) }
    }

    static let card = try! PAN("6210220110002707354")

    @Test("requestors authenticate by API key")
    func requestors() async throws {
        try await Self.each("req") { (f: TSPFixture) async throws -> Void in
            let key = try await f.tsp.registerRequestor(id: "WALLET00002", name: "Another")
            #expect(try await f.tsp.authenticateRequestor(id: "WALLET00002", apiKey: key))
            #expect(try await !f.tsp.authenticateRequestor(id: "WALLET00002", apiKey: key + "0"))
            #expect(try await !f.tsp.authenticateRequestor(id: "NOBODY00000", apiKey: key))
            await #expect(throws: (any Error).self) { _ = try await f.tsp.registerRequestor(id: "SHORT", name: "x") }
        }
    }

    @Test("the vault stores a card once, seals it, and survives data-key rotation and KEK re-wrapping")
    func vault() async throws {
        try await Self.each("vault") { (f: TSPFixture) async throws -> Void in
            let a = try await f.tsp.storeCard(Self.card, expiry: "2912", bank: "BANKA")
            let again = try await f.tsp.storeCard(Self.card, expiry: "2912", bank: "BANKA")
            #expect(a == again)
            #expect(a.par.count == 29)
            try await f.tsp.vault.rotateDataKey()
            let other = try PAN("6225880112345674")
            let b = try await f.tsp.storeCard(other, expiry: "2812", bank: "BANKA")
            try await f.tsp.vault.rewrap(toKEK: "tsp-kek-2")
            let (tokenA, numberA) = try await f.tsp.issueToken(vaultID: a.vaultID, requestor: "BANKAPP0001", device: "dev-1")
            let (_, numberB) = try await f.tsp.issueToken(vaultID: b.vaultID, requestor: "BANKAPP0001", device: "dev-1")
            #expect(try await f.tsp.detokenize(numberA)?.pan == Self.card)
            #expect(try await f.tsp.detokenize(numberB)?.pan == other)
            #expect(tokenA.par == a.par)
            #expect(try await f.tsp.detokenize(try PAN("6234560000000008")) == nil)
        }
    }

    @Test("tokens come from the bank's range, are Luhn-valid and unique, one per device per card")
    func issue() async throws {
        try await Self.each("issue") { (f: TSPFixture) async throws -> Void in
            let stored = try await f.tsp.storeCard(Self.card, expiry: "2912", bank: "BANKA")
            var numbers = Set<String>()
            for device in 0..<60 {
                let (record, number) = try await f.tsp.issueToken(vaultID: stored.vaultID, requestor: "WALLET00001", device: "dev-\(device)")
                #expect(number.digits.hasPrefix("62345600"))
                #expect(Luhn.isValid(number.digits))
                #expect(number != Self.card)
                #expect(record.state == .inactive)
                #expect(!String(describing: record).contains(number.digits))
                numbers.insert(number.digits)
            }
            #expect(numbers.count == 60)
            await #expect(throws: (any Error).self) {
                _ = try await f.tsp.issueToken(vaultID: stored.vaultID, requestor: "WALLET00001", device: "dev-3")
            }
        }
    }

    @Test("every lifecycle transition allowed and refused, with audit and notifications")
    func lifecycle() async throws {
        try await Self.each("life") { (f: TSPFixture) async throws -> Void in
            let stored = try await f.tsp.storeCard(Self.card, expiry: "2912", bank: "BANKA")
            let (token, _) = try await f.tsp.issueToken(vaultID: stored.vaultID, requestor: "BANKAPP0001", device: "phone-1")
            let id = token.id
            await #expect(throws: LifecycleError.notAllowed(action: .suspend, from: .inactive)) {
                try await f.tsp.change(tokenID: id, .suspend, actor: .cardholder, reason: .lost)
            }
            #expect(try await f.tsp.change(tokenID: id, .activate, actor: .requestor, reason: .verified, requestor: "BANKAPP0001").state == .active)
            await #expect(throws: LifecycleError.reasonNotAllowed(action: .suspend, reason: .found)) {
                try await f.tsp.change(tokenID: id, .suspend, actor: .cardholder, reason: .found)
            }
            await #expect(throws: LifecycleError.notYours) {
                try await f.tsp.change(tokenID: id, .suspend, actor: .requestor, reason: .lost, requestor: "WALLET00001")
            }
            await #expect(throws: LifecycleError.notYours) {
                try await f.tsp.change(tokenID: id, .suspend, actor: .issuer, reason: .lost, bank: "BANKB")
            }
            #expect(try await f.tsp.change(tokenID: id, .suspend, actor: .issuer, reason: .lost, bank: "BANKA").state == .suspended)
            let number = try await Self.tokenNumber(f, id)
            #expect(try await f.tsp.detokenize(number)?.state == .suspended)
            await #expect(throws: LifecycleError.notAllowed(action: .activate, from: .suspended)) {
                try await f.tsp.change(tokenID: id, .activate, actor: .issuer, reason: .issuer)
            }
            #expect(try await f.tsp.change(tokenID: id, .resume, actor: .cardholder, reason: .found).state == .active)
            #expect(try await f.tsp.change(tokenID: id, .delete, actor: .cardholder, reason: .cardholder).state == .deleted)
            for action in [LifecycleAction.activate, .suspend, .resume, .delete] {
                await #expect(throws: LifecycleError.self) {
                    try await f.tsp.change(tokenID: id, action, actor: .issuer, reason: .issuer)
                }
            }
            let history = try await f.tsp.history(tokenID: id)
            #expect(history.map(\.1) == [.inactive, .active, .suspended, .active, .deleted])
            #expect(history.map(\.2) == [.system, .requestor, .issuer, .cardholder, .cardholder])
            // The requestor hears of the three changes it did not make.
            let notes = try await f.tsp.pendingNotifications(requestor: "BANKAPP0001")
            #expect(notes.map(\.1) == ["suspend:lost", "resume:found", "delete:cardholder"])
        }
    }

    /// The token number of a token, through the vault (as only the switch and provisioning may).
    static func tokenNumber(_ f: TSPFixture, _ id: Int64) async throws -> PAN {
        try await f.tsp.tokenNumber(tokenID: id)
    }

    @Test("the database holds no clear card or token number")
    func noClearNumbers() async throws {
        let path = TestDatabases.sqlitePath("tsp-secrets")
        let f = try await TSPFixture.make(.sqlite(path: path))
        let stored = try await f.tsp.storeCard(Self.card, expiry: "2912", bank: "BANKA")
        let (_, token) = try await f.tsp.issueToken(vaultID: stored.vaultID, requestor: "BANKAPP0001", device: "d")
        await f.db.shutdown()
        var bytes = Data()
        for suffix in ["", "-wal"] { bytes += (try? Data(contentsOf: URL(fileURLWithPath: path + suffix))) ?? Data() }
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(!text.contains(Self.card.digits))
        #expect(!text.contains(token.digits))
    }
}
