import Foundation
@testable import IssuerHost
import PaymentCore
import PaymentCrypto
import Storage
import StorageTestSupport
import Testing

/// One bank with keys in a software key component, on a fresh database.
struct Fixture {
    let db: Database
    let host: IssuerHost
    let hsm: SoftwareHSM
    let zpk: [UInt8]
    let debitAccount: Int64
    let creditAccount: Int64
    let debitPAN = try! PAN("6210220110002707354")
    let creditPAN = try! PAN("6225880112345674")

    static func make(_ location: DatabaseLocation) async throws -> Fixture {
        let db = try await Database.open(location)
        do { return try await make(db) } catch {
            await db.shutdown()
            throw error
        }
    }

    static func make(_ db: Database) async throws -> Fixture {
        try await db.migrate(IssuerSchema.migrations)
        let hsm = try SoftwareHSM(masterKey: [UInt8](repeating: 0x42, count: 32))
        var rng = SeededRandomNumberGenerator(seed: 1)
        let zpk = KeyTools.oddParity(rng.bytes(16))
        _ = try hsm.importClearKey(name: "bank-a/zpk", usage: .pinEncryption, algorithm: .tdes, key: zpk)
        // A fixed PVK: under a random one a given wrong PIN shares the right one's four-digit PVV
        // about once in 10,000 keys, and the wrong-PIN tests would fail that often.
        var pvkSeed = SeededRandomNumberGenerator(seed: 71)
        _ = try hsm.importClearKey(name: "bank-a/pvk", usage: .pinVerificationVisaPVV, algorithm: .tdes, key: KeyTools.oddParity(pvkSeed.bytes(16)))
        _ = try hsm.generateKey(name: "bank-a/imk-ac", usage: .issuerMasterKeyAC, algorithm: .tdes, lengthBytes: 16)
        _ = try hsm.generateKey(name: "issuer-vault", usage: .dataEncryption, algorithm: .aes, lengthBytes: 32)
        _ = try hsm.generateKey(name: "issuer-lookup", usage: .dataEncryption, algorithm: .aes, lengthBytes: 32)
        let host = IssuerHost(database: db, keys: hsm)
        try await host.addBank(BankSetup(id: "BANKA", name: "Bank A", institutionID: "01020000", cardKeyName: "bank-a/imk-ac",
                                         pinKeyName: "bank-a/zpk", pvkName: "bank-a/pvk"))
        try await host.addBINRange(bank: "BANKA", low: "621022", high: "621022")
        let debit = try await host.openAccount(bank: "BANKA", product: .debit, openingBalance: 1_000_000)
        let credit = try await host.openAccount(bank: "BANKA", product: .credit, creditLimit: 300_000)
        let f = Fixture(db: db, host: host, hsm: hsm, zpk: zpk, debitAccount: debit, creditAccount: credit)
        _ = try await host.issueCard(bank: "BANKA", account: debit, pan: f.debitPAN, expiry: "2912", product: .debit, holderName: "ZHANG SAN",
                                     mobile: "13800000000", pinBlock: try f.pinBlock("135790", f.debitPAN))
        _ = try await host.issueCard(bank: "BANKA", account: credit, pan: f.creditPAN, expiry: "2912", product: .credit, holderName: "LI SI",
                                     mobile: "13900000000", pinBlock: try f.pinBlock("246802", f.creditPAN))
        return f
    }

    func pinBlock(_ pin: String, _ pan: PAN) throws -> EncryptedPINBlock {
        try ISO9564.encipher(PINBlock.encode(pin: pin, format: .iso0, pan: pan), key: zpk, pan: pan)
    }

    static let counter = Counter()
    func input(_ pan: PAN, _ amount: String, pin: String? = nil, key: String? = nil, date: Date = Date()) throws -> AuthorizationInput {
        AuthorizationInput(idempotencyKey: key ?? "ACQ01/TERM0001/\(Fixture.counter.next())", pan: pan, amount: try Amount(amount, currency: .cny),
                           pinBlock: try pin.map { try pinBlock($0, pan) }, date: date)
    }

    /// The books balance and every cached balance agrees with the ledger.
    func checkBooks() async throws {
        #expect(try await host.trialBalance() == 0)
        #expect(try await host.balanceMismatches().isEmpty)
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func next() -> Int { lock.withLock { n += 1; return n } }
}

@Suite("Issuer host on SQLite and PostgreSQL", .serialized)
struct IssuerHostTests {
    static func each(_ label: String, _ body: (Fixture) async throws -> Void) async throws {
        try await TestDatabases.withEach(label) { db in
            let f = try await Fixture.make(db)
            try await body(f)
            try await f.checkBooks()
        }
    }

    @Test("approval codes: six characters of the 34, numbered in base 34, every number its own code")
    func approvalCodes() {
        #expect(IssuerHost.approvalCode(0) == "000000")
        #expect(IssuerHost.approvalCode(33) == "00000Z")
        #expect(IssuerHost.approvalCode(34) == "000010")
        #expect(IssuerHost.approvalCode(IssuerHost.approvalCodes - 1) == "ZZZZZZ")
        let alphabet = Set("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ")
        for _ in 0..<200 {
            let code = IssuerHost.approvalCode()
            #expect(code.count == 6 && code.allSatisfy(alphabet.contains), "\(code)")
        }
    }

    @Test("approval posts the amount and a repeat of the same request gets the same answer, once")
    func approveAndRepeat() async throws {
        try await Self.each("approve") { (f: Fixture) async throws -> Void in
            let input = try f.input(f.debitPAN, "38.50", key: "ACQ01/TERM0001/000001/1126153045")
            let first = try await f.host.authorize(input)
            #expect(first.decision.isApproved)
            #expect(!first.isRepeat)
            let again = try await f.host.authorize(input)
            #expect(again.isRepeat)
            #expect(again.decision == first.decision)
            #expect(try await f.host.balance(account: f.debitAccount) == 1_000_000 - 3_850)
        }
    }

    @Test("online PIN: right, wrong, and blocked after three tries")
    func pin() async throws {
        try await Self.each("pin") { (f: Fixture) async throws -> Void in
            #expect(try await f.host.authorize(try f.input(f.debitPAN, "1288.00", pin: "135790")).decision.isApproved)
            #expect(try await f.host.authorize(try f.input(f.debitPAN, "10.00", pin: "000000")).decision.responseCode == .incorrectPIN)
            #expect(try await f.host.authorize(try f.input(f.debitPAN, "10.00", pin: "000000")).decision.responseCode == .incorrectPIN)
            #expect(try await f.host.authorize(try f.input(f.debitPAN, "10.00", pin: "000000")).decision.responseCode == .pinTriesExceeded)
            // Even the right PIN is refused once the tries are spent.
            #expect(try await f.host.authorize(try f.input(f.debitPAN, "10.00", pin: "135790")).decision.responseCode == .pinTriesExceeded)
            // Without a PIN (small amount) the card still works.
            #expect(try await f.host.authorize(try f.input(f.debitPAN, "10.00")).decision.isApproved)
        }
    }

    @Test("each decline reason")
    func declines() async throws {
        try await Self.each("declines") { (f: Fixture) async throws -> Void in
            #expect(try await f.host.authorize(try f.input(try PAN("6210220110002707396"), "1.00")).decision.responseCode == .invalidCardNumber)
            #expect(try await f.host.authorize(try f.input(f.debitPAN, "5000.01")).decision.responseCode == .exceedsAmountLimit)
            #expect(try await f.host.authorize(try f.input(f.creditPAN, "3000.01")).decision.responseCode == .insufficientFunds)
            #expect(try await f.host.authorize(try f.input(f.creditPAN, "3000.00")).decision.isApproved)
            let later = Date(timeIntervalSince1970: 2_000_000_000)  // 2033: past the 2912 expiry
            #expect(try await f.host.authorize(try f.input(f.debitPAN, "1.00", date: later)).decision.responseCode == .expiredCard)
            let usd = AuthorizationInput(idempotencyKey: "usd-1", pan: f.debitPAN, amount: Amount(minorUnits: 100, currency: .usd))
            #expect(try await f.host.authorize(usd).decision.responseCode == .invalidTransaction)
        }
    }

    @Test("daily amount and count limits")
    func dailyLimits() async throws {
        try await Self.each("daily") { (f: Fixture) async throws -> Void in
            // A fresh card with a large balance shows the daily limit.
            let account = try await f.host.openAccount(bank: "BANKA", product: .debit, openingBalance: 10_000_000)
            let pan = try PAN("6210220110002707370")
            _ = try await f.host.issueCard(bank: "BANKA", account: account, pan: pan, expiry: "2912", product: .debit, holderName: "WANG WU",
                                           mobile: "13700000000", pinBlock: try f.pinBlock("1111", pan), limits: CardLimits(dailyCount: 5))
            for _ in 0..<4 { #expect(try await f.host.authorize(try f.input(pan, "5000.00")).decision.isApproved) }
            #expect(try await f.host.authorize(try f.input(pan, "0.01")).decision.responseCode == .exceedsAmountLimit)
            #expect(try await f.host.authorize(try f.input(pan, "0.00")).decision.isApproved)
            #expect(try await f.host.authorize(try f.input(pan, "0.00")).decision.responseCode == .exceedsFrequencyLimit)
            // A reversal gives its amount and its count back to the day; a repeat does not.
            let reversed = try f.input(pan, "5000.00", key: "ACQ01/TERM0001/000077/1126160000")
            #expect(try await !f.host.authorize(try f.input(pan, "1.00")).decision.isApproved)
            let keys = try await f.db.sql.raw("SELECT idempotency_key FROM issuer_authorizations WHERE state = 'approved' AND amount = 500000 ORDER BY id").all()
            let approvedKey = try keys[0].decode(column: "idempotency_key", as: String.self)
            #expect(try await f.host.reverse(idempotencyKey: approvedKey) == .approved)
            #expect(try await f.host.reverse(idempotencyKey: approvedKey) == .approved)
            #expect(try await f.host.authorize(reversed).decision.isApproved)
            #expect(try await !f.host.authorize(try f.input(pan, "0.01")).decision.isApproved)
            #expect(try await f.host.authorize(reversed).isRepeat)
        }
    }

    @Test("card status: lost, stolen, blocked")
    func status() async throws {
        try await Self.each("status") { (f: Fixture) async throws -> Void in
            let pan = try PAN("6210220110002707388")
            let card = try await f.host.issueCard(bank: "BANKA", account: f.debitAccount, pan: pan, expiry: "2912", product: .debit,
                                                  holderName: "ZHAO LIU", mobile: "13600000000", pinBlock: try f.pinBlock("2222", pan))
            for (status, code) in [(CardStatus.lost, ResponseCode.lostCard), (.stolen, .stolenCard), (.blocked, .restrictedCard)] {
                try await f.host.setCardStatus(card, status)
                #expect(try await f.host.authorize(try f.input(pan, "1.00")).decision.responseCode == code)
            }
        }
    }

    @Test("a reversal undoes the posting once; an unknown one is not found, and the request that arrives after its reversal is declined 12 and books nothing")
    func reversal() async throws {
        try await Self.each("reversal") { (f: Fixture) async throws -> Void in
            let input = try f.input(f.debitPAN, "100.00", key: "ACQ01/TERM0001/000009/1126160000")
            #expect(try await f.host.authorize(input).decision.isApproved)
            #expect(try await f.host.reverse(idempotencyKey: input.idempotencyKey) == .approved)
            #expect(try await f.host.reverse(idempotencyKey: input.idempotencyKey) == .approved)
            #expect(try await f.host.balance(account: f.debitAccount) == 1_000_000)
            // A timeout's reversal that overtook its request: the request is declined when it comes.
            let overtaken = try f.input(f.debitPAN, "100.00", key: "ACQ01/TERM0001/000010/1126160001")
            #expect(try await f.host.reverse(idempotencyKey: overtaken.idempotencyKey) == .unableToLocate)
            #expect(try await f.host.authorize(overtaken).decision == .declined(.invalidTransaction, reason: "reversed before its request arrived"))
            let prepared = try await f.host.prepare(overtaken, lookup: try f.host.lookupHash(overtaken.pan))
            #expect(!prepared.decision.isApproved)
            #expect(try await f.host.reverse(idempotencyKey: overtaken.idempotencyKey) == .approved)  // a repeat
            #expect(try await f.host.balance(account: f.debitAccount) == 1_000_000)
            #expect(try await f.host.trialBalance() == 0)
        }
    }

    @Test("concurrent authorizations never spend more than the balance")
    func concurrency() async throws {
        try await Self.each("concurrent") { (f: Fixture) async throws -> Void in
            let results = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<30 {
                    group.addTask { try await f.host.authorize(try f.input(f.debitPAN, "400.00")).decision.isApproved }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(results == 25)  // 25 × 400.00 = 10,000.00 = the balance
            #expect(try await f.host.balance(account: f.debitAccount) == 0)
        }
    }

    @Test("a decision made before its unit is booked only while what it was made from holds: balance, PIN tries, the key unanswered")
    func preparedDecisions() async throws {
        try await Self.each("prepared") { (f: Fixture) async throws -> Void in
            func prepare(_ input: AuthorizationInput) async throws -> PreparedAuthorization {
                try await f.host.prepare(input, lookup: try f.host.lookupHash(input.pan))
            }
            func book(_ prepared: PreparedAuthorization) async throws -> Bool {
                do {
                    _ = try await f.db.transaction { tx in try await f.host.book(prepared, in: tx) }
                    return true
                } catch where IssuerHost.isChange(error) {
                    return false
                }
            }
            // Nothing changed in between: booked, and booked once.
            let first = try f.input(f.debitPAN, "100.00")
            let prepared = try await prepare(first)
            #expect(prepared.decision.isApproved)
            #expect(try await book(prepared))
            #expect(try await f.host.balance(account: f.debitAccount) == 990_000)
            #expect(try await book(prepared) == false)  // its key is answered now
            #expect(try await f.host.balance(account: f.debitAccount) == 990_000)

            // The balance moved in between: refused, and nothing of it written.
            let second = try f.input(f.debitPAN, "200.00")
            let stale = try await prepare(second)
            #expect(try await f.host.authorize(try f.input(f.debitPAN, "50.00")).decision.isApproved)
            #expect(try await book(stale) == false)
            #expect(try await f.host.balance(account: f.debitAccount) == 985_000)
            // Decided again, it books; the same key afterwards is a repeat.
            #expect(try await book(try await prepare(second)))
            #expect(try await f.host.balance(account: f.debitAccount) == 965_000)
            #expect(try await prepare(second).isRepeat)

            // A wrong PIN counted in between: the stale count is not written over it.
            let wrong = try await prepare(try f.input(f.debitPAN, "10.00", pin: "000000"))
            #expect(try await f.host.authorize(try f.input(f.debitPAN, "10.00", pin: "000000")).decision.responseCode == .incorrectPIN)
            #expect(try await book(wrong) == false)
            #expect(try await f.host.authorize(try f.input(f.debitPAN, "10.00", pin: "000000")).decision.responseCode == .incorrectPIN)
            #expect(try await f.host.authorize(try f.input(f.debitPAN, "10.00", pin: "000000")).decision.responseCode == .pinTriesExceeded)
            try await f.checkBooks()
        }
    }

    @Test("the database holds no clear card number, PIN or key")
    func noSecretsAtRest() async throws {
        let path = TestDatabases.sqlitePath("secrets")
        let f = try await Fixture.make(.sqlite(path: path))
        _ = try await f.host.authorize(try f.input(f.debitPAN, "38.50", pin: "135790"))
        await f.db.shutdown()
        var bytes = Data()
        for suffix in ["", "-wal"] { bytes += (try? Data(contentsOf: URL(fileURLWithPath: path + suffix))) ?? Data() }
        let text = String(decoding: bytes, as: UTF8.self)
        for secret in [f.debitPAN.digits, f.creditPAN.digits, "135790", "246802", f.zpk.hexString] {
            #expect(!text.contains(secret), "found \(secret.prefix(4))… at rest")
        }
    }
}
