import CloudWire
import Crypto
import EMV
import Foundation
import Logging
import ISO8583
import IssuerHost
@testable import Switch
import PaymentCore
import PaymentCrypto
import QR
import Server
import Storage
import StorageTestSupport
import Terminal
import Testing
import TokenService
import Wallet

/// The POS's link to the switch, in process, with every message packed and unpacked in the
/// terminal dialect on the way (so the bytes are exercised too).
struct SwitchLink: AuthorizationHost {
    let network: NetworkSwitch
    let spec = try! MessageSpec.dialect("terminal")
    /// Drop the answer (the POS then sees silence).
    var dropAnswers = false
    struct Lost: Error {}
    func send(_ request: Message) async throws -> Message {
        let answer = await network.handle(try spec.unpack(try spec.pack(request)))
        if dropAnswers { throw Lost() }
        return try spec.unpack(try spec.pack(answer))
    }
}

/// An issuer that answers, but late.
struct SlowIssuer: IssuerConnection {
    let inner: InProcessIssuer
    let delay: Duration
    func send(_ request: Message) async throws -> Message {
        try await Task.sleep(for: delay)
        return try await inner.send(request)
    }
}

/// An issuer whose host is down while `down` is set: requests fail after a moment.
struct FlakyIssuer: IssuerConnection {
    let inner: InProcessIssuer
    let down: DownFlag
    struct Down: Error {}
    func send(_ request: Message) async throws -> Message {
        if down.isDown { try await Task.sleep(for: .milliseconds(300)); throw Down() }
        return try await inner.send(request)
    }
}

final class DownFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var down = true
    var isDown: Bool { lock.withLock { down } }
    func set(_ value: Bool) { lock.withLock { down = value } }
}

/// What the customer keys next on the test PIN pad.
enum PINBox {
    nonisolated(unsafe) static var pin: String? = "135790"
    static let lock = NSLock()
    static func set(_ p: String?) { lock.withLock { pin = p } }
    static func next() -> String? { lock.withLock { pin } }
}

@Suite("The switch: token → cryptogram check → PIN translation → route by BIN → issuer → answer", .serialized)
struct SwitchTests {
    static let tpk = KeyTools.oddParity([UInt8](repeating: 0x7A, count: 16))
    static let shop = MerchantTerminal(terminalID: "TERM0001", merchantID: "MERCHANT0000001", acquirerID: "01020000",
                                       merchantNameLocation: "CLOUDTAP TEST SHOP       SHANGHAI     CN")

    struct Setup {
        let cloud: Cloud
        let network: NetworkSwitch
        let phone: Wallet
        let account: Int64
        let pos: PointOfSale
        /// A POS whose answers get lost on the way back.
        let deafPOS: PointOfSale
    }

    static func setUp(_ c: Cloud, issuerDelay: Duration? = nil, issuerTimeout: Duration? = nil, standIn: StandInPolicy? = nil, down: DownFlag? = nil,
                      oneUnit: Bool = true, slowWrite: Duration? = nil, logger: Logger = Logger(label: "cloudtap.switch")) async throws -> Setup {
        try await c.db.migrate(NetworkSchema.migrations)
        try await c.issuer.addBINRange(bank: "BANKA", low: "621022", high: "621022", kind: "card")
        _ = try c.hsm.importClearKey(name: "TERM0001/tpk", usage: .pinEncryption, algorithm: .tdes, key: tpk)
        _ = try c.hsm.generateKey(name: "switch-store", usage: .dataEncryption, algorithm: .aes, lengthBytes: 32)
        var configuration = SwitchConfiguration()
        configuration.storeKeyName = "switch-store"
        configuration.terminalPINKeys = ["TERM0001": "TERM0001/tpk"]
        if let issuerDelay { configuration.issuerTimeout = issuerTimeout ?? issuerDelay / 4 }
        // A down issuer fails each request after 300 ms (FlakyIssuer), as a dropped link does, so
        // the timeout only has to be long enough for an issuer that is up, on a loaded two-core
        // machine running every other test: at 100 ms one once missed it and its sale went to
        // stand-in. (The silent issuer's timeout is the issuerDelay tests'.)
        if down != nil { configuration.issuerTimeout = .seconds(5) }
        if let standIn { configuration.standIn = ["BANKA": standIn] }
        if !oneUnit { configuration.sqliteOneUnitBacklog = 0 }
        if let slowWrite { configuration.slowWrite = slowWrite }
        let gateway = InProcessIssuer(IssuerGateway(host: c.issuer))
        let connection: any IssuerConnection = down.map { FlakyIssuer(inner: gateway, down: $0) } ?? issuerDelay.map { SlowIssuer(inner: gateway, delay: $0) } ?? gateway
        let network = NetworkSwitch(database: c.db, tokenService: c.tsp, issuerHost: c.issuer, keys: c.hsm, issuers: ["BANKA": connection],
                                    configuration: configuration, logger: logger)
        let phone = try await Self.phone(c, device: "phone-1", card: c.card)
        let account = try await c.issuer.card(id: 1)?.accountID ?? 1
        func pos(_ drop: Bool, _ stan: UInt32) -> PointOfSale {
            PointOfSale(configuration: TerminalConfiguration(), merchant: shop, pinPad: SoftwarePINPad(terminalPINKey: tpk, keypad: { PINBox.next() }),
                        host: SwitchLink(network: network, dropAnswers: drop), firstSTAN: stan)
        }
        return Setup(cloud: c, network: network, phone: phone, account: account, pos: pos(false, 1), deafPOS: pos(true, 500))
    }

    /// A phone with `card` bound (enrolled with its one-time code) and five keys.
    static func phone(_ c: Cloud, device: String, card: PAN) async throws -> Wallet {
        let phone = try Wallet(store: MemorySecureStore(), deviceID: device)
        let cvn2 = try c.hsm.generateCVV(cvk: "BANKA/cvk", pan: card, expiry: "2912", serviceCode: "000")
        guard case .codeSent(let enrollment, _) = try await c.tsp.enroll(
            EnrollmentRequest(requestor: "BANKAPP0001", pan: card, expiry: "2912", cvn2: cvn2, holderName: "ZHANG SAN", deviceID: device,
                              devicePublicKey: phone.devicePublicKey), issuer: IssuerHostEligibility(host: c.issuer)),
              case .verified(let token) = try await c.tsp.verifyOTP(enrollmentID: enrollment, code: try await c.lastCode()) else {
            throw CancellationError()
        }
        try phone.addCloudCard(id: "bank-a", sealedProfile: try await c.tsp.sealedTokenProfile(tokenID: token.id))
        let keys = try await c.tsp.issueKeys(tokenID: token.id, count: 5)
        try phone.addKeys(cardID: "bank-a", keys.map { Wallet.SealedKey(index: $0.index, sealedKey: $0.sealedKey, limits: $0.limits) })
        return phone
    }

    static func sale(_ s: Setup, _ amount: String, pin: String? = "135790", drop: Bool = false) async throws -> SaleResult {
        PINBox.set(pin)
        return await (drop ? s.deafPOS : s.pos).sale(amount: try Amount(amount, currency: .cny), over: InProcessTransport { [card = SharedCardApplet(s.phone.applet())] in card.process($0) })
    }

    @Test("a request recorded under the earlier key layout keeps being found after the upgrade")
    func requestKeyUpgrade() async throws {
        try await TestDatabases.withEach("request-key") { db in
            try await db.migrate(NetworkSchema.migrations.filter { $0.id < 3007 })
            try await db.transaction { tx in
                try await tx.raw("""
                    INSERT INTO net_transactions (request_key, terminal_id, stan, token_last4, amount, currency, state, reason, created_at)
                    VALUES ('TERM0001/000123/1127101500', 'TERM0001', '000123', '1234', 3850, 156, 'approved', 'issuer', '2026-11-27T10:15:00Z'),
                           ('a key of another shape', 'TERM0002', '000001', '1234', 100, 156, 'approved', 'issuer', '2026-11-27T10:15:00Z')
                    """).run()
            }
            try await db.migrate(NetworkSchema.migrations)
            let keys = try await db.sql.raw("SELECT request_key FROM net_transactions ORDER BY id").all().map { try $0.decode(column: "request_key", as: String.self) }
            #expect(keys == [NetworkSwitch.requestKey(terminal: "TERM0001", stan: "000123", transmission: "1127101500"), "a key of another shape"])
        }
    }

    @Test("the routing table is read again in the background: a request finding it old goes on with it, and the operator's change arrives soon after")
    func routingRefresh() async throws {
        try await CloudFlowTests.each("switch-routing") { (c: Cloud) async throws -> Void in
            let s = try await Self.setUp(c)
            var configuration = SwitchConfiguration()
            configuration.routingRefresh = .zero
            let network = NetworkSwitch(database: c.db, tokenService: c.tsp, issuerHost: c.issuer, keys: c.hsm, issuers: [:], configuration: configuration)
            let first = try await network.routing()
            #expect(first.cardRanges.map(\.low) == ["621022"])
            try await c.issuer.addBINRange(bank: "BANKA", low: "622888", high: "622888", kind: "card")
            // Old at once: this request has the table in hand, and starts a reading.
            #expect(try await network.routing().cardRanges.map(\.low) == ["621022"])
            var seen = false
            for _ in 0..<100 where !seen {
                seen = try await network.routing().cardRanges.contains { $0.low == "622888" }
                if !seen { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(seen, "the new range arrives")
            #expect(try await network.bank(for: PAN(unchecked: "6228880000000001")) == "BANKA")
            _ = s
        }
    }

    @Test("a trace is one record a transaction; one kept a row a line, as before, reads the same; a damaged record is an error")
    func traceRecord() async throws {
        try await CloudFlowTests.each("switch-trace-record") { (c: Cloud) async throws -> Void in
            let s = try await Self.setUp(c)
            guard case .approved = try await Self.sale(s, "38.50").outcome else { Issue.record("not approved"); return }
            let now = try #require(try await s.network.trace(transactionID: 1))
            #expect(now.lines.count == 5)
            let record = try #require(try await c.db.sql.raw("SELECT lines FROM net_traces WHERE transaction_id = 1").first()?.decode(column: "lines", as: Data.self))
            let lines = try #require(Trace.lines(Array(record)))
            #expect(lines.map(\.direction) == now.lines.map(\.direction))
            #expect(Trace.record(lines) == Array(record))
            #expect(Trace.lines(Array(record.dropLast())) == nil)
            // The same trace the earlier way: a row a line, described.
            try await c.db.transaction { tx in
                try await tx.raw("DELETE FROM net_traces").run()
                for (i, line) in now.lines.enumerated() {
                    try await tx.raw("""
                        INSERT INTO net_messages (transaction_id, seq, direction, mti, described, created_at)
                        VALUES (1, \(bind: i), \(bind: line.direction), \(bind: line.mti), \(bind: line.text), '2026-11-27T00:00:00Z')
                        """).run()
                }
            }
            #expect(try await s.network.trace(transactionID: 1)?.lines == now.lines)
            // A record that is not one.
            try await c.db.transaction { tx in
                try await tx.raw("INSERT INTO net_traces (transaction_id, lines, created_at) VALUES (1, \(bind: Data(record.prefix(10))), '2026-11-27T00:00:00Z')").run()
            }
            await #expect(throws: StorageError.self) { _ = try await s.network.trace(transactionID: 1) }
        }
    }

    @Test("the issuer-side key is written with the request, made from its id; ids are not reused after the last row is deleted")
    func issuerKeyWithRequest() async throws {
        try await CloudFlowTests.each("switch-issuer-key") { (c: Cloud) async throws -> Void in
            let s = try await Self.setUp(c)
            guard case .approved = try await Self.sale(s, "38.50").outcome else { Issue.record("not approved"); return }
            // A row with a higher id, gone again: the next request still comes after it.
            try await c.db.transaction { tx in
                try await tx.raw("""
                    INSERT INTO net_transactions (id, request_key, terminal_id, stan, token_last4, amount, currency, state, reason, created_at)
                    \(unsafeRaw: c.db.engine == .postgres ? "OVERRIDING SYSTEM VALUE" : "")
                    VALUES (1000041, 'gone', 'TERM0001', '000001', '1234', 100, 156, 'declined', 'test', '2026-11-27T00:00:00Z')
                    """).run()
                try await tx.raw("DELETE FROM net_transactions WHERE request_key = 'gone'").run()
            }
            if c.db.engine == .postgres { try await c.db.sql.raw("SELECT setval(pg_get_serial_sequence('net_transactions', 'id'), 1000041)").run() }
            guard case .approved = try await Self.sale(s, "12.00").outcome else { Issue.record("not approved"); return }
            let rows = try await c.db.sql.raw("SELECT id, issuer_key FROM net_transactions ORDER BY id").all()
            #expect(try rows.map { try $0.decode(column: "id", as: Int64.self) } == [1, 1_000_042])
            for row in rows {
                let id = try row.decode(column: "id", as: Int64.self)
                let key = try #require(try row.decode(column: "issuer_key", as: String?.self))
                #expect(key.hasPrefix("\(Self.shop.acquirerID)/\(NetworkSwitch.issuerSTAN(id))/"))
                #expect(key.count == IssuerGateway.key(acquirer: Self.shop.acquirerID, stan: "000000", transmission: "0000000000").count)
                // The issuer booked the sale under the same key.
                #expect(try await c.db.sql.raw("SELECT state FROM issuer_authorizations WHERE idempotency_key = \(bind: key)").first()?
                    .decode(column: "state", as: String.self) == "approved")
            }
        }
    }

    @Test("38.50 without PIN and 1,288.00 with PIN are approved and booked; a wrong PIN is declined 55 (on SQLite as one unit a sale, and as two)",
          arguments: [true, false])
    func approvals(oneUnit: Bool) async throws {
        try await CloudFlowTests.each("switch-approve-\(oneUnit ? 1 : 2)") { (c: Cloud) async throws -> Void in
            let s = try await Self.setUp(c, oneUnit: oneUnit)
            let small = try await Self.sale(s, "38.50")
            guard case .approved = small.outcome else { Issue.record("\(small.outcome)"); return }
            #expect(small.response?.echoed[2] == small.request?.pan.digits)  // the POS sees the token, never the card
            #expect(small.request?.pan.digits.hasPrefix("623456") == true)
            #expect(try await c.issuer.balance(account: s.account) == 500_000 - 3850)
            // The trace: the four messages masked, the token service's check, balanced postings.
            let trace = try #require(try await s.network.trace(transactionID: 1))
            #expect(trace.lines.map(\.direction) == ["terminal → switch", "note", "switch → issuer BANKA", "issuer BANKA → switch", "switch → terminal"])
            #expect(trace.lines.allSatisfy { !$0.text.contains(c.card.digits) && !$0.text.contains(small.request?.pan.digits ?? "-") })
            #expect(trace.lines[1].text.contains("cryptogram verified"))
            #expect(trace.postings.reduce(0) { $0 + $1.amount } == 0)
            #expect(trace.postings.contains { $0.amount == 3850 })
            #expect(trace.issuerDecision == "00 (approved)")
            let big = try await Self.sale(s, "1288.00")
            guard case .approved = big.outcome else { Issue.record("\(big.outcome)"); return }
            #expect(big.request?.posEntryMode == "071")
            #expect(try await c.issuer.balance(account: s.account) == 500_000 - 3850 - 128_800)
            #expect(try await Self.sale(s, "1500.00", pin: "000000").outcome == .declined(responseCode: "55"))
            #expect(try await c.issuer.balance(account: s.account) == 500_000 - 3850 - 128_800)
        }
    }

    @Test("record ids for warm sales: a batch short of them waits for a block; half a block left, the next is taken in the background, not in the batch's way; every id once, lowest first")
    func recordIDsAhead() async throws {
        try await CloudFlowTests.each("record-ids") { (c: Cloud) async throws -> Void in
            guard c.db.engine == .postgres else { return }
            _ = try await Self.setUp(c)  // the network's tables
            let ids = RecordIDs(block: 8)
            let logger = Logger(label: "test")
            /// Waits (up to 5 s) for the background block to arrive.
            func settled(at least: Int) async throws {
                for _ in 0..<500 where ids.count < least { try await Task.sleep(for: .milliseconds(10)) }
                #expect(ids.count >= least)
            }
            // None on hand: the batch waits for a block, and another is taken in the background.
            try await ids.refill(for: 3, on: c.db.sql, ahead: c.db.sql, logger: logger)
            #expect(ids.count >= 8)
            try await settled(at: 16)
            var taken: [Int64] = []
            for _ in 0..<12 { taken.append(try #require(ids.take())) }
            #expect(ids.count == 4)
            // The background's block is taken after the batch's, so the batch's ids are the lower.
            #expect(try #require(taken.prefix(8).max()) < (try #require(taken.dropFirst(8).min())))
            // Enough for the batch, but under half a block once it takes them: no wait, a block ahead.
            try await ids.refill(for: 1, on: c.db.sql, ahead: c.db.sql, logger: logger)
            try await settled(at: 12)
            while let id = ids.take() { taken.append(id) }
            #expect(Set(taken).count == taken.count)
            #expect(taken.count == 24)
            // Lowest first within what was on hand: the first block's ids before the later ones'.
            #expect(Array(taken.prefix(8)) == taken.prefix(8).sorted())
        }
    }

    @Test("on PostgreSQL a batch whose write and commit take the slow-write time or longer is logged as a warning with its sales; under it, nothing is",
          arguments: [true, false])
    func slowWrite(slow: Bool) async throws {
        try await CloudFlowTests.each("switch-slow-write") { (c: Cloud) async throws -> Void in
            guard c.db.engine == .postgres else { return }  // SQLite's sales go by its own group commit
            let logs = CapturedLogs()
            let logger = Logger(label: "cloudtap.switch") { _ in CapturingLogHandler(sink: logs) }
            // Zero: every write is "slow"; a minute: none is.
            let s = try await Self.setUp(c, slowWrite: slow ? .zero : .seconds(60), logger: logger)
            let caught = Caught()
            let pos = PointOfSale(configuration: TerminalConfiguration(), merchant: Self.shop, pinPad: nil, host: caught, firstSTAN: 100)
            _ = await pos.sale(amount: try Amount("38.50", currency: .cny), over: InProcessTransport { [card = SharedCardApplet(s.phone.applet())] in card.process($0) })
            let message = try #require(caught.requests.last { $0.mti == "0200" })
            let request = try AuthorizationRequest(message: message)
            guard case .check(let check) = NetworkSwitch.prepareCheck(request, noCVMLimit: 100_000) else { Issue.record("no cryptogram check"); return }
            let now = Date()
            let sale = try #require(s.network.batchable(message, request, key: NetworkSwitch.requestKey(terminal: request.terminalID, stan: request.stan, transmission: request.transmissionDateTime),
                                                        now: now, clock: UTCTime(now).mmddhhmmss, bank: "BANKA", check: check, lookup: try c.tsp.lookupHash(check)))
            let answers = await s.network.run([sale], on: s.network.batcher.sessions[0]).map { outcome -> String? in if case .answered(let m) = outcome { m[39] } else { nil } }
            #expect(answers == ["00"])
            let warnings = logs.text.split(separator: "\n").filter { $0.hasPrefix("warning") && $0.contains("to write and commit a batch") }
            #expect(warnings.count == (slow ? 1 : 0), "\(logs.text)")
            if slow { #expect(warnings.first?.contains("\"sales\": 1") == true, "\(warnings)") }
        }
    }

    @Test("on PostgreSQL sales go many to a batch: two cards approved and a decline booked by one write; two sales of one card, a duplicate and a replay go the single way, written only there; the cards behind tokens seen are read with the tokens; a token's next sale is decided from what its last one left, and a card changed since has its batch read and decided again; entries read before a change are read again; the counts of changes move with any statement that sets what no sale writes")
    func batches() async throws {
        try await CloudFlowTests.each("switch-batch") { (c: Cloud) async throws -> Void in
            let s = try await Self.setUp(c)
            // Two more cards, each on its own account (the third's short of a 1,288.00 sale) and phone.
            func card(_ digits: String, balance: Int64, device: String) async throws -> (account: Int64, phone: Wallet, card: Int64) {
                let pan = try PAN(digits)
                let account = try await c.issuer.openAccount(bank: "BANKA", product: .debit, openingBalance: balance)
                let id = try await c.issuer.issueCard(bank: "BANKA", account: account, pan: pan, expiry: "2912", product: .debit, holderName: "LI SI", mobile: "13812345678",
                                                 pinBlock: try ISO9564.encipher(PINBlock.encode(pin: "135790", format: .iso0, pan: pan), key: c.zpk, pan: pan))
                return (account, try await Self.phone(c, device: device, card: pan), id)
            }
            let (account2, phone2, card2) = try await card("6210220110002707362", balance: 200_000, device: "phone-2")
            let (account3, phone3, _) = try await card("6210220110002707370", balance: 1_000, device: "phone-3")
            // The POS's requests, caught on their way (the POS hears nothing back).
            let caught = Caught()
            let pos = PointOfSale(configuration: TerminalConfiguration(), merchant: Self.shop, pinPad: SoftwarePINPad(terminalPINKey: Self.tpk, keypad: { PINBox.next() }),
                                  host: caught, firstSTAN: 100)
            func tap(_ phone: Wallet, _ amount: String) async throws -> Message {
                PINBox.set("135790")
                let sent = await pos.sale(amount: try Amount(amount, currency: .cny), over: InProcessTransport { [card = SharedCardApplet(phone.applet())] in card.process($0) })
                #expect(sent.outcome == .noAnswer(reason: "no answer from the host: Silent()"))
                let request = try #require(caught.requests.last { $0.mti == "0200" })
                #expect(try AuthorizationRequest(message: request).amount == Amount(amount, currency: .cny))
                return request
            }
            func sale(_ message: Message) throws -> SaleBatcher.Sale? {
                let request = try AuthorizationRequest(message: message)
                guard case .check(let check) = NetworkSwitch.prepareCheck(request, noCVMLimit: 100_000) else { return nil }
                let now = Date()
                return s.network.batchable(message, request, key: NetworkSwitch.requestKey(terminal: request.terminalID, stan: request.stan, transmission: request.transmissionDateTime),
                                           now: now, clock: UTCTime(now).mmddhhmmss, bank: "BANKA", check: check, lookup: try c.tsp.lookupHash(check))
            }
            let first = try await tap(s.phone, "38.50"), second = try await tap(phone2, "12.00"), declined = try await tap(phone3, "1288.00")
            guard c.db.engine == .postgres else {
                #expect(try sale(first) == nil)  // SQLite has its own group commit
                return
            }
            let batch = try [first, second, declined].map { try #require(try sale($0)) }
            let answers = await s.network.run(batch, on: s.network.batcher.sessions[0]).map { outcome -> String? in if case .answered(let m) = outcome { m[39] } else { nil } }
            #expect(answers == ["00", "00", "51"])
            #expect(try await c.issuer.balance(account: s.account) == 500_000 - 3850)
            #expect(try await c.issuer.balance(account: account2) == 200_000 - 1200)
            #expect(try await c.issuer.balance(account: account3) == 1_000)
            // Each written once, with its trace: the duplicate gets the batch's answer.
            #expect(await s.network.handle(first)[39] == "00")
            #expect(await s.network.handle(declined)[39] == "51")
            #expect(try await c.db.sql.raw("SELECT COUNT(*) AS n FROM net_traces").first()?.decode(column: "n", as: Int.self) == 3)
            // A duplicate (the request key recorded) and a replayed cryptogram: the single way.
            var replay = try AuthorizationRequest(message: first)
            replay.stan = "999999"
            let again = await s.network.run([try #require(try sale(first)), try #require(try sale(replay.message))], on: s.network.batcher.sessions[0])
            #expect(again.allSatisfy { if case .single = $0 { true } else { false } })
            #expect(await s.network.handle(replay.message)[39] == "05")
            // Two sales of one card in one batch: the write finds the balance changed under the
            // second, writes nothing, and both go the single way, where both are approved.
            let third = try await tap(s.phone, "20.00"), fourth = try await tap(s.phone, "30.00")
            let pair = await s.network.run([try #require(try sale(third)), try #require(try sale(fourth))], on: s.network.batcher.sessions[0])
            #expect(pair.allSatisfy { if case .single = $0 { true } else { false } })
            #expect(try await c.issuer.balance(account: s.account) == 500_000 - 3850)
            #expect(await s.network.handle(third)[39] == "00")
            #expect(await s.network.handle(fourth)[39] == "00")
            #expect(try await c.issuer.balance(account: s.account) == 500_000 - 3850 - 2000 - 3000)
            #expect(try await c.db.sql.raw("SELECT COUNT(*) AS n FROM net_transactions WHERE state = 'approved'").first()?.decode(column: "n", as: Int.self) == 4)
            // The cards behind the batched tokens are remembered, so the next sales of those
            // tokens read their cards with their tokens; a card remembered wrong costs only the
            // second read, and is corrected.
            let cards2 = try c.issuer.lookupHash(PAN("6210220110002707362")), cards3 = try c.issuer.lookupHash(PAN("6210220110002707370"))
            let token2 = try #require(try sale(second)).lookup, token3 = try #require(try sale(declined)).lookup
            #expect(s.network.cardsBehindTokens[token2] == cards2 && s.network.cardsBehindTokens[token3] == cards3)
            s.network.cardsBehindTokens.remember(Data(repeating: 7, count: cards3.count), for: token3)
            // (Without what their last sales left, which would spare both reads.)
            s.network.warmTokens.remove(token2)
            s.network.warmTokens.remove(token3)
            let fifth = try await tap(phone2, "1.00"), sixth = try await tap(phone3, "2.00")
            let next = try [fifth, sixth].map { try #require(try sale($0)) }
            let decided = try await s.network.batcher.sessions[0].run { try await s.network.decide(next, on: $0) }
            #expect(decided.map(\.source) == [.withToken, .cardStatement])
            #expect(decided.map(\.decision.code) == ["00", "00"])
            #expect(s.network.cardsBehindTokens[token3] == cards3)
            let written = await s.network.run(next, on: s.network.batcher.sessions[0]).map { outcome -> String? in if case .answered(let m) = outcome { m[39] } else { nil } }
            #expect(written == ["00", "00"])
            #expect(try await c.issuer.balance(account: account2) == 200_000 - 1200 - 100)
            #expect(try await c.issuer.balance(account: account3) == 1_000 - 200)
            // What those sales left for their tokens: the key used and the four issued after it,
            // the key's use counted.
            let entry2 = try #require(s.network.warmTokens[token2])
            #expect(entry2.keys.count == 5 && entry2.keys.map(\.sequence) == entry2.keys.map(\.sequence).sorted())
            #expect(entry2.keys.first?.uses == 2 && entry2.keys.dropFirst().allSatisfy { $0.uses == 0 })
            // The tokens' next sales are decided from what those sales left, with no read: the
            // write alone, which finds everything as they were decided from.
            let seventh = try await tap(phone2, "3.00"), eighth = try await tap(phone3, "4.00")
            let warm = try [seventh, eighth].map { try #require(try sale($0)) }
            let warmDecided = try await s.network.batcher.sessions[0].run { try await s.network.decide(warm, on: $0) }
            #expect(warmDecided.map(\.source) == [.warm, .warm])
            #expect(warmDecided.map(\.decision.code) == ["00", "00"])
            let warmWritten = await s.network.run(warm, on: s.network.batcher.sessions[0]).map { outcome -> String? in if case .answered(let m) = outcome { m[39] } else { nil } }
            #expect(warmWritten == ["00", "00"])
            #expect(try await c.issuer.balance(account: account2) == 200_000 - 1200 - 100 - 300)
            #expect(try await c.issuer.balance(account: account3) == 1_000 - 200 - 400)
            // The third card's next sale, past its balance, is not decided warm: declines are
            // read again.
            let short = try await tap(phone3, "5.00")
            let shortSale = [try #require(try sale(short))]
            let shortDecided = try await s.network.batcher.sessions[0].run { try await s.network.decide(shortSale, on: $0) }
            #expect(shortDecided.map(\.source) == [.withToken])
            #expect(shortDecided.map(\.decision.code) == ["51"])
            // The second card blocked at its issuer after its last sale: its next sale is still
            // decided warm, as approved, but the write finds the card changed and writes nothing;
            // the batch's entries are dropped and its sales decided again from what they read:
            // that one declined (62), the other approved, in one write.
            func changes(_ table: String) async throws -> Int64 {
                try #require(try await c.db.sql.raw("SELECT n FROM \(unsafeRaw: table)").first()?.decode(column: "n", as: Int64.self))
            }
            let issuerChanges = try await changes("issuer_changes")
            try await c.issuer.setCardStatus(card2, .blocked)
            let ninth = try await tap(phone2, "1.00"), tenth = try await tap(s.phone, "1.00")
            let changed = try [ninth, tenth].map { try #require(try sale($0)) }
            #expect(try await s.network.batcher.sessions[0].run { try await s.network.decide(changed, on: $0) }.first?.source == .warm)
            let reread = await s.network.run(changed, on: s.network.batcher.sessions[0]).map { outcome -> String? in if case .answered(let m) = outcome { m[39] } else { nil } }
            #expect(reread == ["62", "00"])
            #expect(try await c.issuer.balance(account: account2) == 200_000 - 1200 - 100 - 300)
            #expect(try await c.issuer.balance(account: s.account) == 500_000 - 3850 - 2000 - 3000 - 100)
            // What the reading left is kept: the card as blocked.
            #expect(s.network.warmCards[cards2]?.card["status"] == .text("blocked"))
            // Each written once: the repeats get the batch's answers.
            #expect(await s.network.handle(ninth)[39] == "62")
            #expect(await s.network.handle(tenth)[39] == "00")
            #expect(try await c.issuer.balance(account: s.account) == 500_000 - 3850 - 2000 - 3000 - 100)
            // The block moved the issuers' count of changes once; the bookings since, none. The
            // third card's entry, read under the lower count, is read again rather than tried.
            #expect(try await changes("issuer_changes") == issuerChanges + 1)
            let stale = [try #require(try sale(try await tap(phone3, "1.00")))]
            #expect(try await s.network.batcher.sessions[0].run { try await s.network.decide(stale, on: $0) }.map(\.source) == [.withToken])
            // A card's tokens on two devices share what is kept of the card: after a sale with a
            // second phone's token, the first phone's next sale is decided warm from the card as
            // that sale left it, and its write holds.
            let phone3b = try await Self.phone(c, device: "phone-3b", card: PAN("6210220110002707370"))
            #expect(await s.network.run([try #require(try sale(try await tap(phone3b, "1.00")))], on: s.network.batcher.sessions[0]).count == 1)
            #expect(try await c.issuer.balance(account: account3) == 1_000 - 200 - 400 - 100)
            let shared = [try #require(try sale(try await tap(phone3, "2.00")))]
            let sharedDecided = try await s.network.batcher.sessions[0].run { session in
                let decided = try await s.network.decide(shared, on: session)
                try await s.network.write(decided, on: session)
                return decided
            }
            #expect(sharedDecided.map(\.source) == [.warm])
            #expect(try await c.issuer.balance(account: account3) == 1_000 - 200 - 400 - 100 - 200)
            // The counts move with any statement that sets what a reading or a decision reads
            // and no sale writes, whoever runs it; not with a token's state, which writes check.
            let tokenChanges = try await changes("tsp_changes")
            try await c.db.sql.raw("UPDATE tsp_tokens SET state = state").run()
            #expect(try await changes("tsp_changes") == tokenChanges)
            try await c.db.sql.raw("UPDATE tsp_bank_keys SET profile = profile").run()
            try await c.db.sql.raw("UPDATE tsp_vault SET par = par WHERE false").run()
            #expect(try await changes("tsp_changes") == tokenChanges + 2)
            try await c.db.sql.raw("UPDATE issuer_accounts SET credit_limit = credit_limit").run()
            #expect(try await changes("issuer_changes") == issuerChanges + 2)
        }
    }

    /// A host that keeps what the POS sends and answers nothing.
    final class Caught: AuthorizationHost, @unchecked Sendable {
        private let lock = NSLock()
        private var kept: [Message] = []
        var requests: [Message] { lock.withLock { kept } }
        struct Silent: Error {}
        func send(_ request: Message) async throws -> Message {
            lock.withLock { kept.append(request) }
            throw Silent()
        }
    }

    @Test("a duplicate 0200 gets the first answer and is charged once; another sale under its key 94; a replayed cryptogram is declined (on SQLite as one unit a sale, and as two)",
          arguments: [true, false])
    func duplicates(oneUnit: Bool) async throws {
        try await CloudFlowTests.each("switch-duplicate-\(oneUnit ? 1 : 2)") { (c: Cloud) async throws -> Void in
            let s = try await Self.setUp(c, oneUnit: oneUnit)
            let first = try await Self.sale(s, "38.50")
            let request = try #require(first.request)
            let again = await s.network.handle(request.message)
            #expect(again[39] == "00")
            #expect(again[38] == first.response?.authorizationCode)
            // Sent as a repeat (0201): the same, answered 0210.
            var repeated = request.message
            repeated.mti = MessageType.financialRequestRepeat.rawValue
            let echoed = await s.network.handle(repeated)
            #expect(echoed.mti == "0210" && echoed[39] == "00" && echoed[38] == first.response?.authorizationCode)
            #expect(try await c.issuer.balance(account: s.account) == 500_000 - 3850)
            // Another sale under the same key (a terminal reusing its STAN within the second):
            // not a repeat — declined 94, nothing charged, the first answer not handed out.
            var other = request
            other.amount = try Amount("99.00", currency: .cny)
            let clash = await s.network.handle(other.message)
            #expect(clash[39] == "94")
            #expect(clash[38] == nil)
            #expect(try await c.issuer.balance(account: s.account) == 500_000 - 3850)
            // The same card data under a new STAN: the cloud has seen the ATC.
            var replay = request
            replay.stan = "999999"
            let declined = await s.network.handle(replay.message)
            #expect(declined[39] == "05")
            #expect(try await c.issuer.balance(account: s.account) == 500_000 - 3850)
        }
    }

    @Test("each issuer decline end to end: 51 funds, 61 amount limit, 65 count limit, 54 expired, 41 lost, 43 stolen, 62 blocked card, 55 then 75 blocked PIN; 15 no issuer for the BIN (on SQLite as one unit a sale, and as two)",
          arguments: [true, false])
    func declineReasons(oneUnit: Bool) async throws {
        try await CloudFlowTests.each("switch-declines-\(oneUnit ? 1 : 2)") { (c: Cloud) async throws -> Void in
            let s = try await Self.setUp(c, oneUnit: oneUnit)
            let card = try #require(try await c.issuer.card(id: 1))
            func declined(_ amount: String, pin: String? = "135790") async throws -> String? {
                if case .declined(let code) = try await Self.sale(s, amount, pin: pin).outcome { return code }
                return nil
            }
            func cardSQL(_ set: String) async throws {
                try await c.db.sql.raw("UPDATE issuer_cards SET \(unsafeRaw: set) WHERE id = \(bind: card.id)").run()
            }
            // The cardholder takes 4,970.00 in cash at the branch (posted like any ledger entry).
            try await c.db.transaction { tx in
                try await tx.raw("UPDATE issuer_accounts SET balance = balance - 497000 WHERE id = \(bind: s.account)").run()
                for (account, amount) in [("acct:\(s.account)", Int64(497_000)), ("bank:BANKA:cash", -497_000)] {
                    try await tx.raw("""
                        INSERT INTO issuer_ledger (bank_id, authorization_id, account, amount, currency, memo, created_at)
                        VALUES ('BANKA', NULL, \(bind: account), \(bind: amount), 156, 'cash withdrawal', '2026-11-26T00:00:00Z')
                        """).run()
                }
            }
            #expect(try await declined("38.50") == "51")
            try await cardSQL("per_transaction_limit = 2000")
            #expect(try await declined("25.00") == "61")
            try await cardSQL("per_transaction_limit = 500000, daily_count_limit = 0")
            #expect(try await declined("10.00") == "65")
            try await cardSQL("daily_count_limit = 50, expiry = '2001'")
            #expect(try await declined("10.00") == "54")
            try await cardSQL("expiry = '2912'")
            for (status, code) in [(CardStatus.lost, "41"), (.stolen, "43"), (.blocked, "62")] {
                try await c.issuer.setCardStatus(card.id, status)
                #expect(try await declined("10.00") == code, "\(status)")
            }
            try await c.issuer.setCardStatus(card.id, .active)
            #expect(try await Self.sale(s, "10.00").outcome != .declined(responseCode: "51"))
            // Wrong PIN twice (55), a third time blocks it (75); then even the right PIN is refused.
            try await cardSQL("per_transaction_limit = 500000")
            try await c.db.transaction { tx in
                try await tx.raw("UPDATE issuer_accounts SET balance = balance + 497000 WHERE id = \(bind: s.account)").run()
                for (account, amount) in [("acct:\(s.account)", Int64(-497_000)), ("bank:BANKA:cash", 497_000)] {
                    try await tx.raw("""
                        INSERT INTO issuer_ledger (bank_id, authorization_id, account, amount, currency, memo, created_at)
                        VALUES ('BANKA', NULL, \(bind: account), \(bind: amount), 156, 'cash deposit', '2026-11-26T00:00:00Z')
                        """).run()
                }
            }
            #expect(try await declined("1288.00", pin: "000000") == "55")
            #expect(try await declined("1288.00", pin: "000001") == "55")
            #expect(try await declined("1288.00", pin: "000002") == "75")
            #expect(try await declined("1288.00", pin: "135790") == "75")
            #expect(try await c.issuer.balanceMismatches().isEmpty)
            // A card number in no bank's range: the switch has no issuer to route to.
            let sample = try #require(try await Self.sale(s, "10.00").request)
            var stray = sample
            stray.pan = try PAN("9999990000000006")
            stray.track2 = "9999990000000006=30012010000000000000"
            stray.iccData = nil
            stray.stan = "777777"
            #expect(await s.network.handle(stray.message)[39] == "15")
        }
    }

    @Test("a consumer-presented QR code: the POS scans it and authorizes (DE22 032), approved and booked; the same code again is declined 05; a stale code is refused at the POS")
    func consumerPresentedQR() async throws {
        try await CloudFlowTests.each("switch-cpm") { (c: Cloud) async throws -> Void in
            let s = try await Self.setUp(c)
            let code = try s.phone.consumerPresentedCode(cardID: "bank-a")
            // What the POS scans is the base64 text.
            let scanned = try ConsumerPresentedCode(base64: code.base64)
            let first = await s.pos.sale(amount: try Amount("64.00", currency: .cny), presented: scanned)
            guard case .approved = first.outcome else { Issue.record("\(first.outcome)"); return }
            #expect(first.request?.posEntryMode == "032")
            #expect(first.request?.pan.digits.hasPrefix("623456") == true)
            #expect(try await c.issuer.balance(account: s.account) == 500_000 - 6400)
            // The same code shown to another sale: the cloud has seen its ATC.
            #expect(await s.pos.sale(amount: try Amount("64.00", currency: .cny), presented: scanned).outcome == .declined(responseCode: "05"))
            // A code made ten minutes ago is refused before it goes online.
            let old = try s.phone.consumerPresentedCode(cardID: "bank-a", now: Date().addingTimeInterval(-600))
            guard case .declinedOffline = await s.pos.sale(amount: try Amount("10.00", currency: .cny), presented: old).outcome else { Issue.record("stale code accepted"); return }
            #expect(try await c.issuer.balance(account: s.account) == 500_000 - 6400)
            // The phone's log carries the QR payments too; replenishment reconciles them.
            let request = try s.phone.replenishmentRequest(cardID: "bank-a", tokenID: try #require(try await c.tsp.tokens(requestor: "BANKAPP0001").first).id)
            guard case .issued = try await c.tsp.replenish(request) else { Issue.record("replenishment refused after QR payments"); return }
        }
    }

    @Test("a sale for another amount or currency than the cryptogram covers (9F02, 5F2A) is declined 13 and books nothing; the tap's own sale then goes through")
    func amountNotCovered() async throws {
        try await CloudFlowTests.each("switch-amount") { (c: Cloud) async throws -> Void in
            let s = try await Self.setUp(c)
            // The phone is asked for 38.50, no PIN; the POS sends 1,288.00 with its cryptogram.
            var kernel = ContactlessKernel(configuration: TerminalConfiguration(), transaction: TransactionInput(amount: 3850))
            guard case .onlineRequest(let online) = await Reader.tap(&kernel, over: InProcessTransport { [card = SharedCardApplet(s.phone.applet())] in card.process($0) }).0 else {
                Issue.record("no online request"); return
            }
            func request(_ amount: Amount, stan: UInt32) -> AuthorizationRequest {
                OnlineAuthorization.request(for: online, amount: amount, stan: stan, at: Date(), terminal: Self.shop, pinBlock: nil)
            }
            #expect(await s.network.handle(request(try Amount("1288.00", currency: .cny), stan: 101).message)[39] == "13")
            #expect(await s.network.handle(request(try Amount("38.50", currency: .usd), stan: 102).message)[39] == "13")
            #expect(try await c.issuer.balance(account: s.account) == 500_000)
            let declined = try await c.db.sql.raw("SELECT COUNT(*) AS n FROM net_transactions WHERE response_code = '13'").first()?.decode(column: "n", as: Int.self)
            #expect(declined == 2)
            #expect(await s.network.handle(request(try Amount("38.50", currency: .cny), stan: 103).message)[39] == "00")
            #expect(try await c.issuer.balance(account: s.account) == 500_000 - 3850)
            #expect(try await c.issuer.trialBalance() == 0)
        }
    }

    @Test("at or above the network's no-CVM limit a token's sale without PIN or verification on the phone is declined 70; with the owner verified on the phone it is approved")
    func noCVMLimit() async throws {
        try await CloudFlowTests.each("switch-cvm") { (c: Cloud) async throws -> Void in
            let s = try await Self.setUp(c)
            // A POS set to ask for PIN only from 10,000.00: it takes 1,288.00 without one.
            let lax = TerminalConfiguration(cvmLimit: 1_000_000)
            func tap(_ amount: Int64, stan: UInt32) async throws -> String? {
                var kernel = ContactlessKernel(configuration: lax, transaction: TransactionInput(amount: amount))
                guard case .onlineRequest(let online) = await Reader.tap(&kernel, over: InProcessTransport { [card = SharedCardApplet(s.phone.applet())] in card.process($0) }).0 else {
                    throw CloudFlowError("no online request")
                }
                #expect(!online.onlinePINRequired)
                let request = OnlineAuthorization.request(for: online, amount: Amount(minorUnits: amount, currency: .cny), stan: stan, at: Date(), terminal: Self.shop, pinBlock: nil)
                return await s.network.handle(request.message)[39]
            }
            #expect(try await tap(128_800, stan: 201) == "70")
            #expect(try await tap(99_999, stan: 202) == "00")  // under the limit: no verification needed
            #expect(try await c.issuer.balance(account: s.account) == 500_000 - 99_999)
            s.phone.ownerVerified = true
            #expect(try await tap(128_800, stan: 203) == "00")
            #expect(try await c.issuer.balance(account: s.account) == 500_000 - 99_999 - 128_800)
        }
    }

    /// The 0200 a POS would send for a tap of 38.50 (not sent).
    static func tapped(_ s: Setup, stan: UInt32) async throws -> AuthorizationRequest? {
        var kernel = ContactlessKernel(configuration: TerminalConfiguration(), transaction: TransactionInput(amount: 3850))
        guard case .onlineRequest(let online) = await Reader.tap(&kernel, over: InProcessTransport { [card = SharedCardApplet(s.phone.applet())] in card.process($0) }).0 else {
            return nil
        }
        return OnlineAuthorization.request(for: online, amount: try Amount("38.50", currency: .cny), stan: stan, at: Date(), terminal: Self.shop, pinBlock: nil)
    }

    /// A terminal's 0400 for `request` (terminal dialect: DE61 names the original), reason 98.
    static func terminalReversal(of request: AuthorizationRequest, stan: String) -> Message {
        var reversal = Message(mti: "0400")
        reversal[3] = request.message[3]
        reversal[4] = request.message[4]
        reversal[11] = stan
        reversal[39] = "98"
        reversal[41] = request.terminalID
        reversal[42] = request.merchantID
        reversal[61] = "000000" + request.stan + request.transmissionDateTime
        return reversal
    }

    @Test("a reversal that overtakes its own request (the issuer still deciding): the record stays reversed and the late approval is undone at the issuer")
    func reversalOvertakesRequest() async throws {
        try await CloudFlowTests.each("switch-overtake") { (c: Cloud) async throws -> Void in
            // The issuer takes 400 ms; the switch waits up to 2 s, so no stand-in.
            let s = try await Self.setUp(c, issuerDelay: .milliseconds(400), issuerTimeout: .seconds(2))
            guard let request = try await Self.tapped(s, stan: 4242) else { Issue.record("no online request"); return }
            let network = s.network
            let sale = Task { await network.handle(request.message) }
            try await Task.sleep(for: .milliseconds(100))
            // The terminal gives up and reverses (terminal dialect: DE61 names the original).
            #expect(await network.handle(Self.terminalReversal(of: request, stan: "004243"))[39] == "00")
            let answer = await sale.value
            #expect(answer[39] == "00")  // the issuer approved, late
            let state = try await c.db.sql.raw("SELECT state FROM net_transactions WHERE stan = '004242'").first()?.decode(column: "state", as: String.self)
            #expect(state == "reversed")
            #expect(try await c.issuer.balance(account: s.account) == 500_000)
            #expect(try await c.issuer.trialBalance() == 0)
        }
    }

    @Test("a sale recorded only with its answer (one SQLite unit, a PostgreSQL batch): a reversal sent while it waits for the database waits for it, then reverses it at the issuer")
    func reversalWaitsForUnit() async throws {
        try await CloudFlowTests.each("switch-inflight") { (c: Cloud) async throws -> Void in
            let s = try await Self.setUp(c)
            guard let request = try await Self.tapped(s, stan: 4343) else { Issue.record("no online request"); return }
            // On SQLite the writer is held for 400 ms, so the sale's unit waits behind it; the
            // reversal reads on the other connection and would find nothing there yet.
            let db = c.db
            let holder = Task { try await db.transaction { _ in try await Task.sleep(for: .milliseconds(400)) } }
            try await Task.sleep(for: .milliseconds(50))
            let network = s.network
            let sale = Task { await network.handle(request.message) }
            try await Task.sleep(for: .milliseconds(100))
            #expect(await network.handle(Self.terminalReversal(of: request, stan: "004344"))[39] == "00")
            #expect(await sale.value[39] == "00")
            try await holder.value
            let state = try await c.db.sql.raw("SELECT state FROM net_transactions WHERE stan = '004343'").first()?.decode(column: "state", as: String.self)
            #expect(state == "reversed")
            #expect(try await c.issuer.balance(account: s.account) == 500_000)
        }
    }

    @Test("the POS hears nothing and reverses; the switch reverses at the issuer; a suspended token is declined")
    func reversalAndSuspension() async throws {
        try await CloudFlowTests.each("switch-reverse") { (c: Cloud) async throws -> Void in
            let s = try await Self.setUp(c)
            let lost = try await Self.sale(s, "38.50", drop: true)
            guard case .noAnswer = lost.outcome else { Issue.record("\(lost.outcome)"); return }
            #expect(lost.reversal != nil)
            #expect(try await c.issuer.balance(account: s.account) == 500_000)
            // Lost phone: the bank suspends the token; the next tap is declined in the cloud.
            let token = try #require(try await c.tsp.tokens(requestor: "BANKAPP0001").first)
            try await c.tsp.change(tokenID: token.id, .suspend, actor: .issuer, reason: .lost, bank: "BANKA")
            #expect(try await Self.sale(s, "38.50").outcome == .declined(responseCode: "62"))
        }
    }

    @Test("a silent issuer: stand-in 91 and its late approval reversed; stand-in approval under the limit, booked by the issuer from the 0120 advice, also after the issuer was down")
    func standIn() async throws {
        try await CloudFlowTests.each("switch-standin") { (c: Cloud) async throws -> Void in
            let s = try await Self.setUp(c, issuerDelay: .milliseconds(400))
            #expect(try await Self.sale(s, "38.50").outcome == .declined(responseCode: "91"))
            // The issuer approves late; the switch's reversal advice gives the money back.
            var restored = false
            for _ in 0..<100 where !restored {
                try await Task.sleep(for: .milliseconds(20))
                let balance = try await c.issuer.balance(account: s.account)
                let trial = try await c.issuer.trialBalance()
                restored = balance == 500_000 && trial == 0
            }
            #expect(restored)
        }
        try await CloudFlowTests.each("switch-standin-approve") { (c: Cloud) async throws -> Void in
            let s = try await Self.setUp(c, issuerDelay: .milliseconds(400), standIn: .approveUpTo(10_000))
            guard case .approved(let code) = try await Self.sale(s, "38.50").outcome else { Issue.record("not approved in stand-in"); return }
            #expect(code.hasPrefix("S"))
            try await Task.sleep(for: .milliseconds(500))
            // The issuer answered late and approved; the advice changes nothing: booked once.
            #expect(try await s.network.deliverAdvices() == 1)
            #expect(try await c.issuer.balance(account: s.account) == 500_000 - 3850)
        }
        try await CloudFlowTests.each("switch-standin-advice") { (c: Cloud) async throws -> Void in
            // The issuer is down: stand-in approves; the advice waits until the issuer is back,
            // then the issuer books the sale — so the issuer's ledger and settlement agree.
            let down = DownFlag()
            let s = try await Self.setUp(c, standIn: .approveUpTo(10_000), down: down)
            guard case .approved(let code) = try await Self.sale(s, "38.50").outcome else { Issue.record("not approved in stand-in"); return }
            #expect(try await c.issuer.balance(account: s.account) == 500_000)
            #expect(try await s.network.deliverAdvices() == 0)
            // A sale under the limit with a PIN: only the issuer can verify it, so no stand-in approval.
            PINBox.set("135790")
            let pinPOS = PointOfSale(configuration: TerminalConfiguration(cvmLimit: 1_000), merchant: Self.shop,
                                     pinPad: SoftwarePINPad(terminalPINKey: Self.tpk, keypad: { PINBox.next() }), host: SwitchLink(network: s.network, dropAnswers: false),
                                     firstSTAN: 900)
            let withPIN = await pinPOS.sale(amount: try Amount("20.00", currency: .cny), over: InProcessTransport { [card = SharedCardApplet(s.phone.applet())] in card.process($0) })
            #expect(withPIN.request?.pinBlock != nil)
            #expect(withPIN.outcome == .declined(responseCode: "91"))
            down.set(false)
            // The advice goes, and the PIN sale's timeout reversal (the issuer never had that
            // request: it answers 25) — the latter perhaps already from the switch's own try.
            // (An issuer slower than this setup's 5 s timeout would take one in a later round.)
            func due() async throws -> Int {
                var n = 0
                for table in ["net_advices", "net_issuer_reversals"] {
                    n += try await c.db.sql.raw("SELECT COUNT(*) AS n FROM \(unsafeRaw: table) WHERE state = 'due'").first()?.decode(column: "n", as: Int.self) ?? 0
                }
                return n
            }
            var delivered = 0
            for _ in 0..<10 where try await due() > 0 { delivered += try await s.network.deliverAdvices() }
            #expect((1...2).contains(delivered))
            #expect(try await due() == 0)
            #expect(try await c.issuer.balance(account: s.account) == 500_000 - 3850)
            let issued = try await c.db.sql.raw("SELECT auth_code, reason FROM issuer_authorizations WHERE state = 'approved'").all()
            #expect(issued.count == 1)
            #expect(try issued.first?.decode(column: "auth_code", as: String.self) == code)
            let report = try await Settlement(database: c.db, issuerHost: c.issuer).run()
            #expect(report.total == 3850 && report.balances)
            #expect(try await c.issuer.balanceMismatches().isEmpty)
        }
    }

    @Test("a terminal's reversal while the issuer is down is taken (0410 00) and delivered when the issuer is back; one of a stand-in approval goes after its advice")
    func reversalOwed() async throws {
        try await CloudFlowTests.each("switch-reversal-owed") { (c: Cloud) async throws -> Void in
            let down = DownFlag()
            down.set(false)
            let s = try await Self.setUp(c, standIn: .approveUpTo(10_000), down: down)
            let sale = try await Self.sale(s, "38.50")
            guard case .approved(let code) = sale.outcome, let request = sale.request else { Issue.record("sale not approved"); return }
            // The issuer's own approval, not a stand-in's (whose code is S and five digits; the
            // issuer's may start with S too).
            let approvedByIssuer = try await c.db.sql.raw("SELECT auth_code FROM issuer_authorizations WHERE state = 'approved'").all()
                .map { row in try row.decode(column: "auth_code", as: String.self) }
            #expect(approvedByIssuer == [code], "approved in stand-in: the issuer, which is up, took longer than the timeout")
            #expect(try await c.issuer.balance(account: s.account) == 500_000 - 3850)
            // The issuer goes down; the POS reverses: the network takes it.
            down.set(true)
            let reversal = ReversalRequest(original: request.message, stan: "000801", transmissionDateTime: UTCTime(Date()).mmddhhmmss)
            #expect(await s.network.handle(PointOfSale.terminalForm(reversal))[39] == "00")
            #expect(try await c.issuer.balance(account: s.account) == 500_000 - 3850)
            #expect(try await s.network.deliverAdvices() == 0)
            // The POS heard nothing and sends it again as a repeat (0401): answered 0410 00.
            var repeated = reversal
            repeated.mti = .reversalRequestRepeat
            let again = await s.network.handle(PointOfSale.terminalForm(repeated))
            #expect(again.mti == "0410" && again[39] == "00")
            // A stand-in approval while the issuer is down, reversed before its advice went.
            let standIn = try await Self.sale(s, "20.00")
            guard case .approved = standIn.outcome, let standInRequest = standIn.request, let second = try await c.db.sql.raw(
                "SELECT id FROM net_transactions WHERE amount = 2000").first()?.decode(column: "id", as: Int64.self) else {
                Issue.record("no stand-in approval"); return
            }
            let standInReversal = ReversalRequest(original: standInRequest.message, stan: "000802", transmissionDateTime: UTCTime(Date()).mmddhhmmss)
            #expect(await s.network.handle(PointOfSale.terminalForm(standInReversal))[39] == "00")
            // Back up: the first reversal, the advice, then its reversal — the issuer ends where it began.
            // (An issuer slower than this setup's 5 s timeout would take one in a later round.)
            down.set(false)
            var delivered = 0
            for _ in 0..<5 {
                let round = try await s.network.deliverAdvices()
                delivered += round
                if round == 0 { break }
            }
            #expect(delivered == 3)
            #expect(try await c.issuer.balance(account: s.account) == 500_000)
            #expect(try await c.issuer.trialBalance() == 0)
            let states = try await c.db.sql.raw("SELECT state FROM issuer_authorizations ORDER BY id").all().map { try $0.decode(column: "state", as: String.self) }
            #expect(states == ["reversed", "reversed"])
            // The transaction's trace says what the issuer was owed and that it took it.
            let trace = try #require(try await s.network.trace(transactionID: second))
            #expect(trace.followUps.count == 2)
            #expect(trace.followUps.first?.hasPrefix("0120 stand-in advice to BANKA: delivered, ") == true)
            #expect(trace.followUps.last?.hasPrefix("0400 reversal to BANKA (DE39 98): delivered, ") == true)
        }
    }

    @Test("end of day: approved, unreversed transactions cleared once; positions and fees balance to the fen")
    func settlement() async throws {
        try await CloudFlowTests.each("switch-settle") { (c: Cloud) async throws -> Void in
            let s = try await Self.setUp(c)
            guard case .approved = try await Self.sale(s, "38.50").outcome, case .approved = try await Self.sale(s, "1288.00").outcome else {
                Issue.record("sales not approved"); return
            }
            guard case .noAnswer = try await Self.sale(s, "20.00", drop: true).outcome else { Issue.record("not reversed"); return }  // reversed: not cleared
            #expect(try await Self.sale(s, "2000.00", pin: "000000").outcome == .declined(responseCode: "55"))
            let settlement = Settlement(database: c.db, issuerHost: c.issuer)
            let report = try await settlement.run(cutoff: Date().addingTimeInterval(1))
            #expect(report.transactions == 2)
            #expect(report.total == 132_650)
            #expect(report.balances)
            // Bank A is issuer and acquirer here: it pays the network both fees (3 + 3 basis points).
            #expect(report.positions.map(\.bank) == ["BANKA"])
            #expect(report.positions.first?.net == -(FeeSchedule.fee(3850, 3) * 2 + FeeSchedule.fee(128_800, 3) * 2))
            #expect(report.networkIncome == FeeSchedule.fee(3850, 3) * 2 + FeeSchedule.fee(128_800, 3) * 2)
            let merchant = try #require(report.merchants.first)
            #expect(merchant.merchant == "MERCHANT0000001")
            #expect(merchant.gross == 132_650)
            #expect(merchant.discount == 23 + 773)
            #expect(merchant.net == 132_650 - 796)
            #expect(report.merchantCSV.hasPrefix("batch,acquirer,merchant,transactions,gross,discount,net\n"))
            #expect(report.positionsCSV.contains(",BANKA,132650,132650,0,"))
            // A second run finds nothing new.
            let empty = try await settlement.run(cutoff: Date().addingTimeInterval(1))
            #expect(empty.transactions == 0 && empty.reversals == 0 && empty.total == 0)
        }
    }

    @Test("a reversal after its sale was cleared: the next batch takes the sale back — amount, interchange and fees — once, and the two batches net to zero")
    func reversalAfterClearing() async throws {
        try await CloudFlowTests.each("switch-late-reversal") { (c: Cloud) async throws -> Void in
            let s = try await Self.setUp(c)
            let sale = try await Self.sale(s, "38.50")
            guard case .approved = sale.outcome, let request = sale.request else { Issue.record("sale not approved"); return }
            let settlement = Settlement(database: c.db, issuerHost: c.issuer)
            let first = try await settlement.run(cutoff: Date().addingTimeInterval(1))
            #expect(first.transactions == 1 && first.reversals == 0 && first.total == 3850)
            // The POS's reversal arrives after the cut-off: the issuer gives the money back.
            let reversal = ReversalRequest(original: request.message, stan: "000777", transmissionDateTime: UTCTime(Date()).mmddhhmmss)
            #expect(await s.network.handle(reversal.message)[39] == "00")
            #expect(try await c.issuer.balance(account: s.account) == 500_000)
            try await Task.sleep(for: .milliseconds(1100))  // the reversal's second is before the next cut-off
            let second = try await settlement.run(cutoff: Date())
            #expect(second.transactions == 0 && second.reversals == 1 && second.total == -3850)
            #expect(second.balances)
            #expect(second.positions.map(\.net) == first.positions.map { -$0.net })
            #expect(second.networkIncome == -first.networkIncome)
            #expect(second.merchants.map(\.net) == first.merchants.map { -$0.net })
            #expect(second.merchants.first?.transactions == -1)
            // Taken back once only.
            let third = try await settlement.run(cutoff: Date())
            #expect(third.reversals == 0 && third.total == 0)
            #expect(try await settlement.batches().map(\.reversals) == [0, 1, 0])
        }
    }

    @Test("sales through the switch, logged at trace level and stored in SQLite, leave no card or token number, PIN, PIN block or key")
    func noSecrets() async throws {
        let logs = CapturedLogs()
        let logger = Logger(label: "cloudtap.test") { _ in
            var h = CapturingLogHandler(sink: logs)
            h.logLevel = .trace
            return h
        }
        let path = TestDatabases.sqlitePath("switch-scan")
        let db = try await Database.open(.sqlite(path: path), logger: logger)
        var secrets: [String] = []
        do {
            let c = try await Cloud.make(db)
            let s = try await Self.setUp(c, logger: logger)
            let small = try await Self.sale(s, "38.50")
            let big = try await Self.sale(s, "1288.00")
            guard case .approved = small.outcome, case .approved = big.outcome else { Issue.record("not approved"); await db.shutdown(); return }
            let token = try #require(s.phone.cards.first?.profile.pan)
            secrets = [c.card.digits, token, "135790", Self.tpk.hexString, c.zpk.hexString, (big.request?.pinBlock ?? []).hexString]
        } catch {
            await db.shutdown()
            throw error
        }
        await db.shutdown()
        #expect(logs.text.contains("issuer"))
        expectNoSecrets(secrets, inDatabase: path, logs: logs)
    }
}
