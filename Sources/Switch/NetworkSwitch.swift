import EMV
import Foundation
import ISO8583
import ISO8583Link
import IssuerHost
import Logging
import Metrics
import PaymentCore
import PaymentCrypto
import SQLKit
import Storage
import TokenService

/// A link to one issuer host, in the network dialect.
public protocol IssuerConnection: Sendable {
    func send(_ request: Message) async throws -> Message
}

extension ISO8583Client: IssuerConnection {}

/// An issuer in the same process (its gateway called directly).
public struct InProcessIssuer: IssuerConnection {
    let gateway: IssuerGateway
    public init(_ gateway: IssuerGateway) { self.gateway = gateway }
    public func send(_ request: Message) async throws -> Message { await gateway.handle(request) }
}

/// What the switch answers for a bank whose host is silent.
public enum StandInPolicy: Sendable, Hashable {
    /// Decline with 91 (issuer unavailable).
    case decline
    /// Approve amounts up to this many minor units, decline above.
    case approveUpTo(Int64)
}

public struct SwitchConfiguration: Sendable {
    /// DE33: this network's institution id.
    public var institutionID = "00090000"
    /// How long an issuer has to answer.
    public var issuerTimeout: Duration = .seconds(5)
    /// How long an issuer has to take an advice (nobody waits at a counter for it).
    public var adviceTimeout: Duration = .seconds(10)
    /// Terminal id → the name of its PIN key in the key component.
    public var terminalPINKeys: [String: String] = [:]
    /// Bank id → stand-in policy; a bank not named declines with 91.
    public var standIn: [String: StandInPolicy] = [:]
    /// The key (AES, data encryption) sealing the stand-in advices the switch holds for the
    /// issuers; without one, stand-in approval is refused (declined 91 like `decline`).
    public var storeKeyName: String?
    /// At or above this amount (minor units of the sale's currency) a token's sale needs a
    /// cardholder verification: online PIN (DE52) or the owner's verification on the phone
    /// (consumer device CVM, in the cryptogram's CVR). Without either it is declined 70, so a POS
    /// set with a higher CVM limit than the network's cannot take large sales without one. Nil:
    /// no such rule.
    public var noCVMLimit: Int64? = 100_000
    /// On SQLite, a sale at an issuer in this process goes as one unit while fewer units than
    /// this wait for the writer, else as two (see ``NetworkSwitch/authorizeInOneUnit``); 0: always two.
    public var sqliteOneUnitBacklog = 16
    /// The routing table (banks, their card and token ranges, zone PIN keys) is read again
    /// once it is this old, in the background (see ``NetworkSwitch/routing()``).
    public var routingRefresh: Duration = .seconds(2)
    /// A PostgreSQL batch whose write and commit take this long is logged as a warning (most
    /// often a stalled flush of the server's log, which every sale of the batch waited for).
    public var slowWrite: Duration = .milliseconds(100)
    public init() {}
}

/// The network switch: terminals' 0200 and 0400 in (terminal dialect), the token service for
/// cloud cards, PIN translation, routing by BIN to the issuers (network dialect), the answer
/// mapped back to the token. Every request is recorded by its key, so a duplicate gets the
/// first answer and a reversal finds what it reverses.
public final class NetworkSwitch: Sendable {
    let db: Database
    let tsp: TokenService
    let issuerHost: IssuerHost
    let keys: any KeyHolding
    let issuers: [String: any IssuerConnection]
    let configuration: SwitchConfiguration
    let logger: Logger
    let spec: MessageSpec?
    let terminalSpec: MessageSpec?
    /// The routing table, and whether a task is reading it again.
    let table = Locked<(current: RoutingTable?, refreshing: Bool)>((nil, false))
    /// Token sales on PostgreSQL, taken many at a time (see ``SaleBatcher``).
    let batcher: SaleBatcher
    /// The card behind each token batched sales have seen (see ``CardsBehindTokens``).
    let cardsBehindTokens = CardsBehindTokens()
    /// What batched sales last read and wrote for each token (see ``WarmToken``).
    let warmTokens = RecentlyUsed<WarmToken>(generation: 8_192)
    /// The cards behind those tokens, as their issuers decide from them (see ``WarmCard``).
    let warmCards = RecentlyUsed<WarmCard>(generation: 8_192)
    /// The highest counts of changes the token service's and the issuers' rows were read under
    /// (``TokenService/readingVersion``, ``IssuerHost/cardVersion``): an entry read under a
    /// lower one is read again, not tried (its write would fail).
    let changesSeen = Locked<(tokens: Int64, cards: Int64)>((0, 0))
    /// Record ids for sales decided without a statement.
    let recordIDs = RecordIDs()
    /// Requests whose record is not committed yet (see ``InFlight``).
    let inFlight = InFlight()

    public init(database: Database, tokenService: TokenService, issuerHost: IssuerHost, keys: any KeyHolding, issuers: [String: any IssuerConnection],
                configuration: SwitchConfiguration = SwitchConfiguration(), logger: Logger = Logger(label: "cloudtap.switch")) {
        self.db = database
        self.tsp = tokenService
        self.issuerHost = issuerHost
        self.keys = keys
        self.issuers = issuers
        self.configuration = configuration
        self.logger = logger
        self.spec = try? MessageSpec.dialect("network")
        self.terminalSpec = try? MessageSpec.dialect("terminal")
        // Sessions are opened when first used: only token sales on PostgreSQL use them.
        self.batcher = SaleBatcher(sessions: [database.heldSession(), database.heldSession()])
    }

    /// Answers one terminal message (counted and timed by MTI and response code).
    public func handle(_ message: Message) async -> Message {
        let start = ContinuousClock.now
        let response = await answer(message)
        let elapsed = ContinuousClock.now - start
        Counter(label: "cloudtap_switch_requests_total", dimensions: [("mti", message.mti), ("code", response[39] ?? "")]).increment()
        Timer(label: "cloudtap_switch_request_duration_seconds", dimensions: [("mti", message.mti)]).record(duration: elapsed)
        return response
    }

    func answer(_ message: Message) async -> Message {
        do {
            switch MessageType.original(of: message.mti) {
            case MessageType.financialRequest.rawValue, MessageType.authorizationRequest.rawValue:
                return try await authorize(message)
            case MessageType.reversalRequest.rawValue, MessageType.reversalAdvice.rawValue:
                return try await reverseFromTerminal(message)
            case MessageType.networkManagementRequest.rawValue:
                return IssuerGateway.answer(message, code: "00")
            default:
                return IssuerGateway.formatError(message)
            }
        } catch let error as ISO8583Error {
            logger.notice("format error from terminal", metadata: ["error": "\(error)"])
            return IssuerGateway.answer(message, code: "30")
        } catch {
            logger.error("switch failure", metadata: ["error": "\(error)"])
            return IssuerGateway.answer(message, code: "96")
        }
    }

    // MARK: Authorization

    func authorize(_ message: Message) async throws -> Message {
        let request = try AuthorizationRequest(message: message)
        let key = Self.requestKey(terminal: request.terminalID, stan: request.stan, transmission: request.transmissionDateTime)
        let now = Date()
        // The issuer is known from the BIN before anything else (a token's range belongs to the
        // bank that issued the card behind it), and the issuer-side key is made of the
        // acquirer, the switch's STAN (from the record's id) and the time forwarded: all of it is
        // recorded in the same unit as the request, so a reversal can always find the issuer's
        // authorization, even after a crash between the issuer's approval and the switch's answer.
        let bank = try await issuerBank(for: request.pan)
        let clock = UTCTime(now).mmddhhmmss
        // When the token service keeps its data in this database, a token's ATC and key use are
        // recorded in the request's unit: one durable write for both. On PostgreSQL the
        // cryptogram is read and verified before the unit, which is then one statement whose
        // writes check again what the reading saw. On SQLite the unit reads it on the writer's
        // connection: its page cache stays warm, while the read connection's is emptied by every
        // commit, so reading there first (the token here, the card in answerLocally) cost more
        // than it saved: 4–10 % more CPU a sale, 3–9 % fewer sales on a load run.
        let tokenCheck = try await isToken(request.pan) ? Self.prepareCheck(request, noCVMLimit: configuration.noCVMLimit) : nil
        let tsp = self.tsp, engine = db.engine, shared = tsp.uses(db)
        let check: CryptogramCheck? = if shared, case .check(let c)? = tokenCheck { c } else { nil }
        let lookup = try check.map { try tsp.lookupHash($0) }
        if let sale = batchable(message, request, key: key, now: now, clock: clock, bank: bank, check: check, lookup: lookup) {
            // A batch records the request with its answer: a reversal meanwhile waits for it.
            inFlight.begin(key)
            let submitted = await batcher.submit(sale, to: self)
            inFlight.end(key)
            if case .answered(let response) = submitted { return response }
        }
        let values = requestValues(request, key: key, now: now, bank: bank)
        // On SQLite, a sale at an issuer in this process on the same database is one unit —
        // unless the writer is the bottleneck (see authorizeInOneUnit).
        let checkedElsewhere = if case .check? = tokenCheck, !shared { true } else { false }
        if engine == .sqlite, !checkedElsewhere, let bank, let gateway = (issuers[bank] as? InProcessIssuer)?.gateway, gateway.host.uses(db) {
            if (db.writerBacklog ?? 0) < configuration.sqliteOneUnitBacklog,
               let answered = try await authorizeInOneUnit(message, request, key: key, values: values, clock: clock, bank: bank, tokenCheck: tokenCheck,
                                                           check: check, lookup: lookup) {
                Counter(label: "cloudtap_switch_sqlite_sales_total", dimensions: [("units", "1")]).increment()
                return answered
            }
            Counter(label: "cloudtap_switch_sqlite_sales_total", dimensions: [("units", "2")]).increment()
        }
        var reading: CryptogramReading?
        if engine == .postgres, let check, let lookup { reading = try await tsp.read(check, lookup: lookup) }
        let verified: VerifiedCryptogram? = if case .verified(let v)? = reading { v } else { nil }
        let early: CryptogramVerdict? = if case .declined(let code, let reason)? = reading { .declined(responseCode: code, reason: reason) } else { nil }
        // Until the request is recorded, a reversal of it waits (it would find nothing).
        inFlight.begin(key)
        var recording = true
        defer { if recording { inFlight.end(key) } }
        let inserted: (id: Int64, verdict: CryptogramVerdict?)?
        // On PostgreSQL, what an in-process issuer decides from (the card behind the token, its
        // account, its day, an earlier answer to the issuer-side key) is read in the request's
        // statement too: three round trips a sale instead of four. The booking checks again
        // whatever the decision was made from, as it does after a read of its own.
        var issuerRead: IssuerRead?
        if engine == .postgres {
            // One statement, which the server commits by itself: the id taken from the sequence
            // first, so the issuer-side key (made from it) is written with the row, and the
            // token's ATC and key use recorded only if the row is new. No row back: the key is
            // recorded already (a duplicate).
            let issuerKey: SQLQueryString = bank == nil ? "NULL" : """
                \(bind: request.acquirerID) || '/' || lpad((next.id % 1000000)::text, 6, '0') || '/' || \(bind: clock)
                """
            var statement: SQLQueryString = """
                WITH next AS (SELECT nextval(pg_get_serial_sequence('net_transactions', 'id')) AS id),
                request AS (
                    INSERT INTO net_transactions (id, request_key, terminal_id, stan, token_last4, amount, currency, state, reason,
                        created_at, merchant_id, acquirer_id, bank_id, issuer_key) OVERRIDING SYSTEM VALUE
                    SELECT next.id, \(values), \(issuerKey) FROM next ON CONFLICT (request_key) DO NOTHING RETURNING id, issuer_key)
                """
            if let verified { statement = statement + ", " + tsp.recording(verified, after: "request") }
            statement = statement + " SELECT request.id"
            if let verified { statement = statement + ", " + TokenService.recordingColumns(verified) }
            var final = statement + " FROM request"
            let day = UTCTime(now).isoDate
            let host = bank.flatMap { (issuers[$0] as? InProcessIssuer)?.gateway.host }.flatMap { $0.uses(db) ? $0 : nil }
            if let verified, let host {
                let read = IssuerHost.cardRead(hash: try host.lookupHash(verified.pan), day: day, key: "request.issuer_key")
                final = statement + ", issuer.* FROM request LEFT JOIN LATERAL (SELECT \(read)) issuer ON true"
            }
            let sql = final
            // With the issuer in process, nothing leaves the switch on the strength of this
            // statement alone: the answer's statement, which waits for its flush, comes before the
            // terminal hears anything and takes this one's WAL with it. So this one's commit does
            // not wait for the disk (one flush a sale instead of two). A remote issuer is told
            // of the request only once it is on disk.
            let (row, id): ((any SQLRow)?, Int64?) = try await db.statement(unflushed: host != nil) { tx in
                guard let row = try await tx.raw(sql).first() else { return (nil, nil) }
                return (row, try row.decode(column: "id", as: Int64.self))
            }
            if let row, let id {
                inserted = (id, try verified.map { try tsp.verdict($0, row: row) } ?? early)
                if host != nil, verified != nil, try !row.decodeNil(column: "card_id") { issuerRead = IssuerRead(card: row, day: day) }
            } else {
                inserted = nil
            }
        } else {
            inserted = try await db.transaction { tx in
                guard let id = try await Self.recordSQLite(values, acquirer: request.acquirerID, clock: clock, bank: bank, in: tx) else { return nil }
                if let check, let lookup { return (id, try await tsp.validate(check, lookup: lookup, in: tx)) }
                return (id, nil)
            }
        }
        recording = false
        inFlight.end(key)
        guard let (id, verdict) = inserted else { return try await duplicate(of: try await recorded(key)!, key: key, message: message) }
        let trace = Trace()
        trace.add("terminal → switch", message, terminalSpec)
        let response: Message, code: String, stillPending: Bool
        switch await route(request, id: id, bank: bank, clock: clock, tokenCheck: tokenCheck, verdict: verdict, trace: trace) {
        case .decided(let decided, let authCode, let arpc, let reason):
            response = try respond(message, code: decided, authCode: authCode, arpc: arpc)
            trace.add("switch → terminal", response, terminalSpec)
            stillPending = try await finish(id: id, code: decided, authCode: authCode, arpc: arpc, reason: reason, trace: trace)
            code = decided
        case .standIn(let decided, let authCode, let reason, let owed):
            // What the issuer is owed for the stand-in's answer is recorded with it. A reversal
            // is sent now: the issuer may still approve what the switch declined (the reversal
            // also undoes an approval still to come: the issuer declines a request whose
            // reversal came first).
            response = try respond(message, code: decided, authCode: authCode, arpc: nil)
            trace.add("switch → terminal", response, terminalSpec)
            stillPending = try await finish(id: id, code: decided, authCode: authCode, arpc: nil, reason: reason, trace: trace, owed: owed)
            code = decided
            if case .reversal = owed { Task { [self] in _ = try? await deliverReversal(id: id) } }
        case .local(let outbound, let forwarded, let gateway, let bank):
            (response, code, stillPending) = try await answerLocally(message, id: id, outbound: outbound, forwarded: forwarded, gateway: gateway,
                                                                     bank: bank, trace: trace, read: issuerRead)
        }
        if !stillPending, code == "00" {
            // The terminal reversed the request while the issuer was deciding: the approval came
            // after the reversal, so the issuer is owed it (again) and it is sent now.
            if let row = try await db.sql.raw("SELECT bank_id, issuer_key FROM net_transactions WHERE id = \(bind: id)").first(),
               let bank = try row.decode(column: "bank_id", as: String?.self), let issuerKey = try row.decode(column: "issuer_key", as: String?.self) {
                try await db.transaction { tx in
                    try await Self.oweReversal(id: id, bank: bank, issuerKey: issuerKey, terminal: request.terminalID, reason: "98", in: tx)
                }
                _ = try await deliverReversal(id: id)
            }
        }
        return response
    }

    /// The columns of a new request's record, from `request_key` to `bank_id`.
    func requestValues(_ request: AuthorizationRequest, key: String, now: Date, bank: String?) -> Statement {
        """
        \(bind: key), \(bind: request.terminalID), \(bind: request.stan), \(bind: request.pan.lastFour), \(bind: request.amount.minorUnits),
        \(bind: Int(request.amount.currency.numericCode)), 'pending', '', \(bind: UTCTime(now).iso8601), \(bind: request.merchantID),
        \(bind: request.acquirerID), \(bind: bank)
        """
    }

    /// Records a request on SQLite, in the caller's unit; its id, or nil when its key is
    /// recorded already. The id AUTOINCREMENT would give (one past the larger of the table's
    /// sequence and its largest id) is taken in the statement, so the issuer-side key made from
    /// it (as issuerSTAN and IssuerGateway.key make it) is written with the row. The unit runs on
    /// SQLite's only writer: nothing takes an id in between. One row of VALUES, its id from the
    /// connection: an INSERT from a SELECT, or one with RETURNING, goes through a temporary
    /// table, and with both the statement had cost twice as much.
    static func recordSQLite(_ values: Statement, acquirer: String, clock: String, bank: String?, in tx: any SQLDatabase) async throws -> Int64? {
        let next: Statement = """
            (SELECT max(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'net_transactions'), 0),
                        COALESCE((SELECT MAX(id) FROM net_transactions), 0)) + 1)
            """
        let issuerKey: Statement = bank == nil ? "NULL" : """
            \(bind: acquirer) || '/' || printf('%06d', \(next) % 1000000) || '/' || \(bind: clock)
            """
        return try await tx.insertedID("""
            INSERT INTO net_transactions (id, request_key, terminal_id, stan, token_last4, amount, currency, state, reason, created_at,
                merchant_id, acquirer_id, bank_id, issuer_key)
            VALUES (\(next), \(values), \(issuerKey)) ON CONFLICT (request_key) DO NOTHING
            """)
    }

    /// How a sale in one unit came out.
    enum OneUnit: Sendable {
        case answered(Message)
        case duplicate
    }

    /// A sale at an issuer in this process that keeps its books in the switch's SQLite database,
    /// as one unit: the request recorded, the token's cryptogram checked and its use recorded,
    /// the request routed and forwarded, the issuer's decision booked, the answer and the trace
    /// recorded — one commit, and one turn at SQLite's only writer instead of two (the wait for
    /// the writer is most of a sale's time once the writer is busy). Nothing of it is durable,
    /// or visible, before the commit, and nothing leaves the switch before: a crash leaves no
    /// trace of the sale, and the POS, which heard nothing, reverses a request the switch never
    /// had (25). A reversal that arrives meanwhile waits for the unit (``InFlight``).
    ///
    /// Only while the writer keeps up (``SwitchConfiguration/sqliteOneUnitBacklog``): one unit
    /// does on the writer what two units do off it (routing, the forwarded message and its trace
    /// line) — a turn at the writer fewer, which is what a sale waits for while the writer keeps
    /// up, but more of the writer's time a sale, which is what the rate is bound by once it does
    /// not (at full load, one unit for every sale reached 12 % fewer sales a second).
    ///
    /// Nil when the unit failed and left nothing: the sale then goes the two-unit way, which
    /// records the request first and answers a failure after it 96.
    func authorizeInOneUnit(_ message: Message, _ request: AuthorizationRequest, key: String, values: Statement, clock: String, bank: String,
                            tokenCheck: PreparedCheck?, check: CryptogramCheck?, lookup: Data?) async throws -> Message? {
        inFlight.begin(key)
        defer { inFlight.end(key) }
        // The request's line of the trace is made before the unit: the writer is the one
        // thread every sale waits for.
        let trace = Trace()
        trace.add("terminal → switch", message, terminalSpec)
        let outcome: OneUnit
        do {
            outcome = try await db.transaction { [self] tx in
                guard let id = try await Self.recordSQLite(values, acquirer: request.acquirerID, clock: clock, bank: bank, in: tx) else { return .duplicate }
                let verdict = if let check, let lookup { try await tsp.validate(check, lookup: lookup, in: tx) } else { CryptogramVerdict?.none }
                let response: Message, record: AnswerRecord
                switch await route(request, id: id, bank: bank, clock: clock, tokenCheck: tokenCheck, verdict: verdict, trace: trace) {
                case .decided(let code, let authCode, let arpc, let reason):
                    response = try respond(message, code: code, authCode: authCode, arpc: arpc)
                    trace.add("switch → terminal", response, terminalSpec)
                    record = try answerRecord(id: id, code: code, authCode: authCode, arpc: arpc, reason: reason, trace: trace)
                case .local(let outbound, let forwarded, let gateway, let bank):
                    let start = ContinuousClock.now
                    let (input, lookup) = try gateway.prepare(forwarded)
                    let decided = try await gateway.decide(outbound, input: input, lookup: lookup, in: tx)
                    (response, record) = try answer(message, id: id, decided: decided, bank: bank, trace: trace)
                    Timer(label: "cloudtap_switch_issuer_duration_seconds", dimensions: [("bank", bank)]).record(duration: ContinuousClock.now - start)
                case .standIn:
                    // Not for an issuer in this process; the two-unit way answers it.
                    throw StorageError("a stand-in answer for an issuer in process")
                }
                // Nothing else could have answered the record: it is the unit's own.
                _ = try await record.write(tx, engine: .sqlite)
                return .answered(response)
            }
        } catch {
            logger.notice("a sale's unit failed; it goes the two-unit way", metadata: ["error": "\(error)"])
            return nil
        }
        switch outcome {
        case .answered(let response): return response
        case .duplicate:
            guard let earlier = try await recorded(key) else { throw StorageError("a request key found in the unit is not recorded after it") }
            return try await duplicate(of: earlier, key: key, message: message)
        }
    }

    /// Where a request stands after routing: answered (code, authorization code, ARPC, reason);
    /// answered in stand-in while the issuer was silent (code, authorization code, reason, and
    /// what the issuer is owed for it); or to be booked by an in-process issuer that keeps its
    /// books in the switch's database.
    enum Routed {
        case decided(String, String?, [UInt8]?, String)
        case standIn(String, String?, String, owed: Owed)
        case local(outbound: Message, forwarded: AuthorizationRequest, gateway: IssuerGateway, bank: String)
    }

    /// Everything between the terminal's request and the issuer's answer.
    func route(_ request: AuthorizationRequest, id: Int64, bank: String?, clock: String, tokenCheck: PreparedCheck?, verdict: CryptogramVerdict?,
               trace: Trace) async -> Routed {
        do {
            var pan = request.pan
            if let prepared = tokenCheck {
                let check: CryptogramCheck
                switch prepared {
                case .refuse(let code, let reason): return .decided(code, nil, nil, reason)
                case .check(let c): check = c
                }
                let data = check.data
                let outcome: CryptogramVerdict
                if let verdict { outcome = verdict } else { outcome = try await tsp.validate(check) }
                switch outcome {
                case .declined(let code, let reason):
                    Counter(label: "cloudtap_switch_token_checks_total", dimensions: [("result", code)]).increment()
                    return .decided(code, nil, nil, "token service: \(reason)")
                case .valid(let real, let tokenID, let keyIndex):
                    Counter(label: "cloudtap_switch_token_checks_total", dimensions: [("result", "valid")]).increment()
                    pan = real
                    trace.noteVerified(token: tokenID, key: keyIndex, atc: data.atc, card: real)
                }
            }
            guard let bank, let connection = issuers[bank] else { return .decided("15", nil, nil, "no issuer for this BIN") }
            guard try await self.bank(for: pan) == bank else { return .decided("96", nil, nil, "the token's bank is not the card's") }
            guard let forward = try await forwarded(request, pan: pan, id: id, bank: bank, clock: clock) else {
                return .decided("96", nil, nil, "no PIN key for terminal")
            }
            let outbound = forward.message  // built once: the message is made anew on each read
            log("→ issuer \(bank)", outbound)
            trace.add("switch → issuer \(bank)", outbound, spec)
            if let local = connection as? InProcessIssuer, local.gateway.host.uses(db) {
                return .local(outbound: outbound, forwarded: forward, gateway: local.gateway, bank: bank)
            }
            let issuerStart = ContinuousClock.now
            let call = Task { try await connection.send(outbound) }
            let answered = await Self.value(of: call, within: configuration.issuerTimeout)
            Timer(label: "cloudtap_switch_issuer_duration_seconds", dimensions: [("bank", bank)]).record(duration: ContinuousClock.now - issuerStart)
            guard let answer = answered else { return standIn(bank: bank, amount: request.amount.minorUnits, forward: outbound) }
            log("← issuer \(bank)", answer)
            trace.add("issuer \(bank) → switch", answer, spec)
            let response = try AuthorizationResponse(message: answer)
            return .decided(response.responseCode, response.authorizationCode, response.issuerAuthenticationData, "issuer")
        } catch {
            logger.error("routing failed", metadata: ["error": "\(error)"])
            return .decided("96", nil, nil, "switch error")
        }
    }

    /// The request as the switch forwards it to the issuer: the card number for a token (which
    /// goes in private data, TK), the PIN block translated from the terminal's key and the
    /// token to the bank's zone key and the card number, the switch's STAN (from the record's
    /// id), time and institution. Nil when a PIN block has no key to be translated with.
    func forwarded(_ request: AuthorizationRequest, pan: PAN, id: Int64, bank: String, clock: String) async throws -> AuthorizationRequest? {
        var pinBlock: [UInt8]?
        if let block = request.pinBlock {
            guard let tpk = configuration.terminalPINKeys[request.terminalID], let zonePINKey = try await routing().pinKeys[bank] else { return nil }
            pinBlock = try keys.translatePIN(EncryptedPINBlock(format: .iso0, bytes: block),
                                             from: PINZone(keyName: tpk, format: .iso0, pan: request.pan),
                                             to: PINZone(keyName: zonePINKey, format: .iso0, pan: pan)).bytes
        }
        var forward = request
        forward.pan = pan
        forward.track2 = request.track2.map { pan.digits + $0.drop { $0 != "=" } }
        forward.stan = Self.issuerSTAN(id)
        forward.transmissionDateTime = clock
        forward.forwardingID = configuration.institutionID
        forward.pinBlock = pinBlock
        forward.privateData = [("TK", request.pan.digits)]
        return forward
    }

    /// The issuer did not answer in time: answer by the bank's stand-in policy. A decline owes
    /// the issuer a reversal (see ``authorize(_:)``); an approval owes it a 0120 advice.
    func standIn(bank: String, amount: Int64, forward: Message) -> Routed {
        let policy = configuration.standIn[bank] ?? .decline
        // A PIN only the issuer can verify: no stand-in approval without it (and no PIN block
        // is kept for an advice).
        let approve: Bool = if case .approveUpTo(let limit) = policy, configuration.storeKeyName != nil, forward[52] == nil { amount <= limit } else { false }
        Counter(label: "cloudtap_switch_stand_in_total", dimensions: [("bank", bank), ("decision", approve ? "approved" : "declined")]).increment()
        if !approve {
            return .standIn("91", nil, forward[52] == nil ? "stand-in: issuer silent" : "stand-in: issuer silent, and only the issuer can verify the PIN",
                            owed: .reversal)
        }
        // The issuer books it from the 0120 advice, held (sealed) with the answer until it is taken.
        let code = "S" + String(format: "%05d", Int.random(in: 0..<100_000))
        var advice = forward
        advice.mti = MessageType.authorizationAdvice.rawValue
        advice[38] = code
        advice[39] = "00"
        return .standIn("00", code, "stand-in: approved under the limit; advice to \(bank) owed", owed: .advice(bank: bank, message: advice))
    }

    // MARK: Reversal from a terminal

    func reverseFromTerminal(_ message: Message) async throws -> Message {
        // The original: DE90 (MTI, STAN, transmission time, …) or, in the terminal dialect,
        // DE61 (batch, STAN, transmission time).
        let originalSTAN: String, originalTime: String
        if let original = message[90], original.count >= 20 {
            let chars = Array(original)
            (originalSTAN, originalTime) = (String(chars[4..<10]), String(chars[10..<20]))
        } else if let original = message[61], original.count >= 22 {
            let chars = Array(original)
            (originalSTAN, originalTime) = (String(chars[6..<12]), String(chars[12..<22]))
        } else {
            throw ISO8583Error(.invalidValue("a reversal names its original in DE90 or DE61"), path: "DE90", offset: 0)
        }
        guard let terminal = message[41] else { throw ISO8583Error(.invalidValue("a reversal needs DE41"), path: "DE41", offset: 0) }
        let key = Self.requestKey(terminal: terminal, stan: originalSTAN, transmission: originalTime)
        // A sale recorded only with its answer (one unit, or a batch) is waited for.
        await inFlight.wait(for: key)
        guard let row = try await db.sql.raw("SELECT id, state, bank_id, issuer_key FROM net_transactions WHERE request_key = \(bind: key)").first() else {
            return IssuerGateway.answer(message, code: "25")
        }
        let id = try row.decode(column: "id", as: Int64.self)
        let state = try row.decode(column: "state", as: String.self)
        // Pending is what a crash leaves (the issuer may have approved before the switch could
        // record the answer) or a request still in flight; either way the issuer is told. The
        // reversal is recorded with the reversal owed to the issuer before the terminal hears
        // 00, then sent; an issuer that cannot take it now gets it from ``deliverAdvices(limit:)``
        // — the terminal's part is done once the network has it.
        if state == "approved" || state == "pending" {
            let bank = try row.decode(column: "bank_id", as: String?.self), issuerKey = try row.decode(column: "issuer_key", as: String?.self)
            let reason = message[39] ?? "98"
            try await db.transaction { tx in
                try await tx.raw("""
                    UPDATE net_transactions SET state = 'reversed', reversed_at = \(bind: UTCTime(Date()).iso8601)
                    WHERE id = \(bind: id) AND state IN ('approved', 'pending')
                    """).run()
                if let bank, let issuerKey { try await Self.oweReversal(id: id, bank: bank, issuerKey: issuerKey, terminal: terminal, reason: reason, in: tx) }
            }
            if bank != nil, issuerKey != nil { _ = try await deliverReversal(id: id) }
        }
        return IssuerGateway.answer(message, code: "00")
    }

    /// Records, in the caller's unit, that the issuer is owed a reversal of request `id` — again
    /// if one was delivered before (the approval it must undo came after it).
    static func oweReversal(id: Int64, bank: String, issuerKey: String, terminal: String, reason: String, in tx: any SQLDatabase) async throws {
        try await tx.raw(owedReversal("""
            VALUES (\(bind: id), \(bind: bank), \(bind: issuerKey), \(bind: terminal), \(bind: reason), 'due', 1, 0, \(bind: UTCTime(Date()).iso8601))
            """)).run()
    }

    /// The statement that records a reversal owed from `source` (a VALUES or SELECT giving
    /// transaction, bank, issuer key, terminal, reason, 'due', 1, 0 and the time), or owes an
    /// earlier one again under a new generation.
    static func owedReversal(_ source: SQLQueryString) -> SQLQueryString {
        "INSERT INTO net_issuer_reversals (transaction_id, bank_id, issuer_key, terminal_id, reason, state, generation, attempts, created_at) "
            + source + " ON CONFLICT (transaction_id) DO UPDATE SET state = 'due', generation = net_issuer_reversals.generation + 1, delivered_at = NULL"
    }

    /// Sends the reversal owed for request `id`, unless a stand-in advice for it is still owed
    /// (the issuer must book the approval before it can reverse it; the advice goes first).
    /// True when the issuer took it.
    func deliverReversal(id: Int64) async throws -> Bool {
        guard let row = try await db.sql.raw("""
            SELECT r.bank_id, r.issuer_key, r.terminal_id, r.reason, r.generation FROM net_issuer_reversals r
            WHERE r.transaction_id = \(bind: id) AND r.state = 'due'
              AND NOT EXISTS (SELECT 1 FROM net_advices a WHERE a.transaction_id = r.transaction_id AND a.state = 'due')
            """).first() else { return false }
        let bank = try row.decode(column: "bank_id", as: String.self), generation = try row.decode(column: "generation", as: Int.self)
        let taken = try await reverseAtIssuer(id: id, bank: bank, issuerKey: try row.decode(column: "issuer_key", as: String.self),
                                              terminal: try row.decode(column: "terminal_id", as: String.self), reason: try row.decode(column: "reason", as: String.self))
        let now = UTCTime(Date()).iso8601
        try await db.transaction { tx in
            if taken {
                try await tx.raw("""
                    UPDATE net_issuer_reversals SET state = 'delivered', attempts = attempts + 1, delivered_at = \(bind: now)
                    WHERE transaction_id = \(bind: id) AND state = 'due' AND generation = \(bind: generation)
                    """).run()
            } else {
                try await tx.raw("UPDATE net_issuer_reversals SET attempts = attempts + 1 WHERE transaction_id = \(bind: id)").run()
            }
        }
        Counter(label: "cloudtap_switch_issuer_reversals_total", dimensions: [("bank", bank), ("result", taken ? "taken" : "not_taken")]).increment()
        if taken { logger.info("reversal delivered", metadata: ["bank": "\(bank)", "transaction": "\(id)"]) }
        return taken
    }

    /// Sends the issuer a 0400 for the authorization the switch forwarded under `issuerKey`;
    /// true when the issuer reversed it or never had it (25).
    func reverseAtIssuer(id: Int64, bank: String, issuerKey: String, terminal: String, reason: String) async throws -> Bool {
        guard let connection = issuers[bank] else { return false }
        let parts = issuerKey.split(separator: "/").map(String.init)
        guard parts.count == 3 else { return false }
        var reversal = Message(mti: MessageType.reversalRequest.rawValue)
        reversal[7] = Self.clock()
        reversal[11] = String(format: "%06d", (id + 500_000) % 1_000_000)
        reversal[32] = parts[0]
        reversal[33] = configuration.institutionID
        reversal[39] = reason
        reversal[41] = terminal
        var originalMessage = Message(mti: MessageType.financialRequest.rawValue)
        originalMessage[11] = parts[1]
        originalMessage[7] = parts[2]
        originalMessage[32] = parts[0]
        originalMessage[33] = configuration.institutionID
        reversal[90] = ReversalRequest.originalDataElements(of: originalMessage)
        let outbound = reversal
        guard let answer = await Self.value(of: Task { try await connection.send(outbound) }, within: configuration.issuerTimeout) else { return false }
        return answer[39] == "00" || answer[39] == "25"
    }

    // MARK: Stand-in advices

    /// Sends the advices still owed (oldest first, up to `limit`), then the reversals owed
    /// whose advice, if any, has gone; returns how many of both the issuers took. An issuer that
    /// is still silent keeps what it is owed for the next round.
    @discardableResult
    public func deliverAdvices(limit: Int = 100) async throws -> Int {
        var delivered = 0
        // Advices exist only where a store key sealed them.
        let due = spec == nil || configuration.storeKeyName == nil ? [] : try await db.sql.raw("""
            SELECT transaction_id, bank_id, sealed FROM net_advices WHERE state = 'due' ORDER BY transaction_id LIMIT \(bind: limit)
            """).all()
        for row in due {
            guard let spec, let keyName = configuration.storeKeyName else { break }
            let id = try row.decode(column: "transaction_id", as: Int64.self)
            let bank = try row.decode(column: "bank_id", as: String.self)
            let advice = try spec.unpack(try keys.open(Array(try row.decode(column: "sealed", as: Data.self)), keyName: keyName,
                                                         authenticating: Array("net-advice/\(id)".utf8)))
            guard let connection = issuers[bank] else { continue }
            let answer = await Self.value(of: Task { try await connection.send(advice) }, within: configuration.adviceTimeout)
            let taken = answer?[39] == "00"
            let now = UTCTime(Date()).iso8601
            try await db.transaction { tx in
                if taken {
                    try await tx.raw("UPDATE net_advices SET state = 'delivered', attempts = attempts + 1, delivered_at = \(bind: now) WHERE transaction_id = \(bind: id)").run()
                } else {
                    try await tx.raw("UPDATE net_advices SET attempts = attempts + 1 WHERE transaction_id = \(bind: id)").run()
                }
            }
            if taken {
                delivered += 1
                logger.info("stand-in advice delivered", metadata: ["bank": "\(bank)", "transaction": "\(id)"])
            }
        }
        let reversals = try await db.sql.raw("""
            SELECT transaction_id FROM net_issuer_reversals WHERE state = 'due' ORDER BY transaction_id LIMIT \(bind: limit)
            """).all()
        for row in reversals where try await deliverReversal(id: try row.decode(column: "transaction_id", as: Int64.self)) { delivered += 1 }
        return delivered
    }

    /// Delivers owed advices every `interval` until the task is cancelled.
    public func runAdvices(every interval: Duration = .seconds(1)) async {
        while !Task.isCancelled {
            do { try await deliverAdvices() } catch { logger.error("advice delivery failed", metadata: ["error": "\(error)"]) }
            try? await Task.sleep(for: interval)
        }
    }

    // MARK: Records

    struct Recorded { let state: String; let code: String?; let authCode: String?; let arpc: [UInt8]?; let amount: Int64; let lastFour: String }

    func recorded(_ key: String) async throws -> Recorded? {
        guard let row = try await db.sql.raw("SELECT state, response_code, auth_code, arpc, amount, token_last4 FROM net_transactions WHERE request_key = \(bind: key)").first() else { return nil }
        return Recorded(state: try row.decode(column: "state", as: String.self), code: try row.decode(column: "response_code", as: String?.self),
                        authCode: try row.decode(column: "auth_code", as: String?.self), arpc: try row.decode(column: "arpc", as: Data?.self).map(Array.init),
                        amount: try row.decode(column: "amount", as: Int64.self), lastFour: try row.decode(column: "token_last4", as: String.self))
    }

    /// A repeat of a request: the first answer again (waiting for it while it is in flight).
    /// A different sale under the same key (a terminal that reused its STAN within the second)
    /// is not a repeat: it is declined 94 and nothing else happens.
    func duplicate(of earlier: Recorded, key: String, message: Message) async throws -> Message {
        if let request = try? AuthorizationRequest(message: message), request.amount.minorUnits != earlier.amount || request.pan.lastFour != earlier.lastFour {
            logger.notice("a different request under a recorded key declined", metadata: ["key": "\(key)"])
            return try respond(message, code: "94", authCode: nil, arpc: nil)
        }
        var current = earlier
        let clock = ContinuousClock()
        let deadline = clock.now + configuration.issuerTimeout + .seconds(1)
        while current.state == "pending", clock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
            current = try await recorded(key) ?? current
        }
        logger.info("duplicate request answered from the record", metadata: ["key": "\(key)"])
        return try respond(message, code: current.code ?? "96", authCode: current.authCode, arpc: current.arpc)
    }

    /// Records the answer and the trace; false when the row was no longer pending (a reversal
    /// arrived first), in which case only the answer's fields and the trace are kept.
    @discardableResult
    func finish(id: Int64, code: String, authCode: String?, arpc: [UInt8]?, reason: String, trace: Trace, owed: Owed? = nil) async throws -> Bool {
        let answer = try answerRecord(id: id, code: code, authCode: authCode, arpc: arpc, reason: reason, trace: trace, owed: owed)
        if db.engine == .postgres {
            // One statement, which the server commits by itself.
            let wasPending = try await db.statement { tx in try await answer.write(tx, engine: .postgres) }
            if !wasPending { try await db.statement { tx in try await tx.run(answer.late) } }
            return wasPending
        }
        return try await db.transaction { tx in try await answer.write(tx, engine: .sqlite) }
    }

    /// What an in-process issuer decides from, read in the request's statement on PostgreSQL.
    struct IssuerRead: Sendable {
        let card: any SQLRow
        let day: String
    }

    /// An in-process issuer that keeps its books in the switch's database: its decision and the
    /// switch's answer are one durable unit — the issuer's booking, the record's answer and the
    /// trace commit together or not at all (two units a sale instead of three). No stand-in:
    /// the issuer is this process. A unit that fails is answered 96, as a failed route is.
    ///
    /// On PostgreSQL the issuer decides before the unit, from what is committed (`read`, made in
    /// the request's statement, or else a read of its own), and the unit is
    /// one statement whose writes each check what the decision was made from; if the card's
    /// account, day or PIN tries changed in between, or the key was answered, it fails whole and
    /// the issuer decides again inside a unit that locks the card. On SQLite the issuer decides
    /// inside the unit, on the writer's connection (see ``authorize(_:)``).
    func answerLocally(_ message: Message, id: Int64, outbound: Message, forwarded: AuthorizationRequest, gateway: IssuerGateway, bank: String,
                       trace: Trace, read: IssuerRead? = nil) async throws -> (Message, String, Bool) {
        let start = ContinuousClock.now
        defer { Timer(label: "cloudtap_switch_issuer_duration_seconds", dimensions: [("bank", bank)]).record(duration: ContinuousClock.now - start) }
        let engine = db.engine
        let mark = trace.count
        do {
            let (input, lookup) = try gateway.prepare(forwarded)
            if engine == .postgres {
                let host = gateway.host
                let prepared = if let read { try host.decide(input, card: read.card, day: read.day) } else { try await host.prepare(input, lookup: lookup) }
                let decided = try gateway.decision(outbound, prepared.decision)
                let (response, record) = try answer(message, id: id, decided: decided, bank: bank, trace: trace)
                do {
                    let wasPending = try await db.statement { tx in
                        try await record.write(tx, engine: .postgres, booking: (host.booking(prepared), IssuerHost.bookedColumn(prepared)))
                    }
                    if !wasPending { try await db.statement { tx in try await tx.run(record.late) } }
                    gateway.count(decided)
                    return (response, decided.code, wasPending)
                } catch where IssuerHost.isChange(error) {
                    trace.truncate(to: mark)
                    logger.debug("issuer decision changed before booking; deciding again under lock", metadata: ["bank": "\(bank)"])
                }
            }
            return try await db.transaction { tx in
                let decided = try await gateway.decide(outbound, input: input, lookup: lookup, in: tx)
                let (response, record) = try self.answer(message, id: id, decided: decided, bank: bank, trace: trace)
                let wasPending = try await record.write(tx, engine: engine)
                if !wasPending, engine == .postgres { try await tx.run(record.late) }
                return (response, decided.code, wasPending)
            }
        } catch {
            logger.error("booking at the in-process issuer failed", metadata: ["error": "\(error)"])
            trace.truncate(to: mark)
            let response = try respond(message, code: "96", authCode: nil, arpc: nil)
            trace.add("switch → terminal", response, terminalSpec)
            return (response, "96", try await finish(id: id, code: "96", authCode: nil, arpc: nil, reason: "switch error", trace: trace))
        }
    }

    /// The issuer's answer and the switch's to the terminal added to the trace, and the record
    /// of both.
    func answer(_ message: Message, id: Int64, decided: IssuerGateway.Decision, bank: String, trace: Trace) throws -> (Message, AnswerRecord) {
        let response = try response(to: message, decided: decided, bank: bank, trace: trace)
        return (response, try answerRecord(id: id, code: decided.code, authCode: decided.authorizationCode, arpc: nil, reason: "issuer", trace: trace))
    }

    /// The terminal's answer to an in-process issuer's decision, with the issuer's answer and
    /// the terminal's logged and added to the trace.
    func response(to message: Message, decided: IssuerGateway.Decision, bank: String, trace: Trace) throws -> Message {
        log("← issuer \(bank)", decided.answer)
        trace.add("issuer \(bank) → switch", decided.answer, spec)
        let response = try respond(message, code: decided.code, authCode: decided.authorizationCode, arpc: nil)
        trace.add("switch → terminal", response, terminalSpec)
        return response
    }

    /// The statements that record the switch's answer to request `id`, with its trace and any
    /// stand-in advice it owes. The answer moves the record on only from `pending` (the row lock
    /// of the UPDATE orders it against a reversal); a record a reversal reached first keeps its
    /// state and gets the late answer's details only.
    struct AnswerRecord {
        let answer: Statement
        let late: Statement
        let trail: Statement?
        let owed: Statement?
        let reversal: SQLQueryString?

        /// Writes the record; true when it was still pending. On PostgreSQL one statement (the
        /// answer, the trace and the advice as parts of one WITH, with an in-process issuer's
        /// `booking` parts and the column that checks them), leaving a late answer's details to
        /// ``late``; on SQLite, which has no INSERT or UPDATE inside WITH, one statement each.
        func write(_ tx: any SQLDatabase, engine: Engine, booking: (parts: SQLQueryString?, check: SQLQueryString)? = nil) async throws -> Bool {
            if engine == .postgres {
                var statement: SQLQueryString = "WITH answered AS (\(answer) RETURNING id)"
                if let trail { statement = statement + ", trail AS (\(trail))" }
                if let owed { statement = statement + ", owed AS (\(owed))" }
                if let reversal { statement = statement + ", reversal AS (" + reversal + ")" }
                var columns: SQLQueryString = "(SELECT COUNT(*) FROM answered) AS n"
                if let parts = booking?.parts { statement = statement + ", " + parts }
                if let booking { columns = columns + ", " + booking.check }
                return try await tx.raw(statement + " SELECT " + columns).first()!.decode(column: "n", as: Int.self) > 0
            }
            let wasPending = try await tx.changes(answer) > 0
            if !wasPending { try await tx.run(late) }
            if let trail { try await tx.run(trail) }
            if let owed { try await tx.run(owed) }
            if let reversal { try await tx.raw(reversal).run() }
            return wasPending
        }
    }

    /// What the issuer is owed for an answer the switch gave in its stead: the 0120 advice of a
    /// stand-in approval, or the reversal of a request the switch declined while the issuer was
    /// silent.
    enum Owed {
        case advice(bank: String, message: Message)
        case reversal
    }

    func answerRecord(id: Int64, code: String, authCode: String?, arpc: [UInt8]?, reason: String, trace: Trace, owed: Owed? = nil) throws -> AnswerRecord {
        let now = UTCTime(Date()).iso8601
        let state = code == "00" ? "approved" : "declined"
        let lines = trace.lines
        var advice: (bank: String, bytes: [UInt8])?, owingReversal = false
        switch owed {
        case .advice(let bank, let message)?:
            guard let spec, let keyName = configuration.storeKeyName else { break }
            advice = (bank, try keys.seal(try spec.pack(message), keyName: keyName, authenticating: Array("net-advice/\(id)".utf8)))
        case .reversal?: owingReversal = true
        case nil: break
        }
        return AnswerRecord(
            answer: """
                UPDATE net_transactions SET response_code = \(bind: code), auth_code = \(bind: authCode), arpc = \(bind: arpc.map { Data($0) }),
                    state = \(bind: state), reason = \(bind: reason), answered_at = \(bind: now) WHERE id = \(bind: id) AND state = 'pending'
                """,
            late: """
                UPDATE net_transactions SET response_code = \(bind: code), auth_code = \(bind: authCode), arpc = \(bind: arpc.map { Data($0) }),
                    reason = \(bind: reason), answered_at = \(bind: now) WHERE id = \(bind: id)
                """,
            // The whole trace as one record in one row (a row per line cost the writer a row and
            // an index entry each, and PostgreSQL a foreign-key check each).
            trail: lines.isEmpty ? nil : """
                INSERT INTO net_traces (transaction_id, lines, created_at) VALUES (\(bind: id), \(bind: Data(Trace.record(lines))), \(bind: now))
                """,
            owed: advice.map { sealed in
                """
                INSERT INTO net_advices (transaction_id, bank_id, sealed, state, attempts, created_at)
                VALUES (\(bind: id), \(bind: sealed.bank), \(bind: Data(sealed.bytes)), 'due', 0, \(bind: now))
                """
            },
            // A timeout's reversal (DE39 68, response received too late), to the issuer the
            // request was forwarded to.
            reversal: !owingReversal ? nil : Self.owedReversal("""
                SELECT id, bank_id, issuer_key, terminal_id, '68', 'due', 1, 0, \(bind: now) FROM net_transactions
                WHERE id = \(bind: id) AND bank_id IS NOT NULL AND issuer_key IS NOT NULL
                """))
    }

    func respond(_ message: Message, code: String, authCode: String?, arpc: [UInt8]?) throws -> Message {
        try AuthorizationResponse(responding: message, responseCode: code, authorizationCode: authCode, iccData: arpc.map { [TLV(0x91, $0)] }).message
    }

    // MARK: Routing tables

    /// Banks, their card and token ranges and zone PIN keys, read from the database at most
    /// every two seconds (``SwitchConfiguration/routingRefresh``), so the operator's changes
    /// arrive within about two seconds without a query per request.
    struct RoutingTable: Sendable {
        var tokenRanges: [(bank: String, low: String, high: String)] = []
        var cardRanges: [(bank: String, low: String, high: String)] = []
        var pinKeys: [String: String] = [:]
        var loaded: ContinuousClock.Instant?
    }

    /// The routing table. Once one is loaded, a request never waits for a reading: the first
    /// request to find it two seconds old starts one in the background and goes on with the
    /// table it has, and so do the requests after it until the new table is in. (Every request
    /// that found the table old used to read it again itself, five statements one after
    /// another: every two seconds, all the sales arriving in those milliseconds waited for
    /// them — at 850 sales a second on PostgreSQL the sales started in the first 50 ms of a
    /// second took 6.2–6.5 ms on average, against 4.9 over the rest.)
    func routing() async throws -> RoutingTable {
        let now = ContinuousClock.now
        let (cached, refresh) = table.withLock { s -> (RoutingTable?, Bool) in
            guard let current = s.current, let loaded = current.loaded else { return (nil, false) }
            guard now - loaded >= configuration.routingRefresh, !s.refreshing else { return (current, false) }
            s.refreshing = true
            return (current, true)
        }
        guard let cached else { return try await loadRouting() }
        if refresh {
            Task {
                do {
                    _ = try await self.loadRouting()
                } catch {
                    // The table in hand stays; the next request after two seconds tries again.
                    self.table.withLock { $0.refreshing = false }
                    self.logger.warning("the routing table could not be read again; the last one stays", metadata: ["error": "\(error)"])
                }
            }
        }
        return cached
    }

    /// Reads the routing table and keeps it.
    private func loadRouting() async throws -> RoutingTable {
        var fresh = RoutingTable(loaded: ContinuousClock.now)
        for bank in try await issuerHost.banks() {
            fresh.pinKeys[bank.id] = bank.pinKeyName
            fresh.tokenRanges += try await tsp.tokenRanges(bank: bank.id).map { (bank.id, $0.low, $0.high) }
            fresh.cardRanges += try await issuerHost.binRanges(bank: bank.id).filter { $0.kind == "card" }.map { (bank.id, $0.low, $0.high) }
        }
        table.withLock { $0 = (fresh, false) }
        return fresh
    }

    func isToken(_ pan: PAN) async throws -> Bool {
        try await routing().tokenRanges.contains { Self.inRange(pan, $0.low, $0.high) }
    }

    /// The issuer of a card number or token: the bank owning the token range that holds it, else
    /// the bank whose card range holds it (longest prefix).
    func issuerBank(for pan: PAN) async throws -> String? {
        if let token = try await routing().tokenRanges.first(where: { Self.inRange(pan, $0.low, $0.high) }) { return token.bank }
        return try await bank(for: pan)
    }

    /// A token's cryptogram check as the request carries it, or why it cannot be made.
    enum PreparedCheck: Sendable {
        case check(CryptogramCheck)
        case refuse(code: String, reason: String)
    }

    static func prepareCheck(_ request: AuthorizationRequest, noCVMLimit: Int64? = nil) -> PreparedCheck {
        guard let icc = request.iccData, let arqc = icc.find(0x9F26)?.value else { return .refuse(code: "05", reason: "no cryptogram for a token") }
        var values: [UInt32: [UInt8]] = [:]
        for tlv in icc { values[tlv.tag.rawValue] = tlv.value }
        guard let data = try? TransactionData(values: values) else { return .refuse(code: "30", reason: "DE55 lacks the cryptogram data") }
        // The cryptogram covers the amount and currency the phone was asked for (9F02, 5F2A); the
        // sale must be for those. A POS that sent a different DE4 (a no-PIN tap's cryptogram under
        // a larger sale) is refused. A consumer-presented code's cryptogram is made before the
        // amount is known (9F02 zero): its key's limits count DE4 instead.
        let covered = data.amountAuthorised
        if covered != 0, covered != request.amount.minorUnits {
            return .refuse(code: "13", reason: "DE4 differs from the amount the cryptogram covers (9F02)")
        }
        if data.transactionCurrency != 0, data.transactionCurrency != request.amount.currency.numericCode {
            return .refuse(code: "13", reason: "DE49 differs from the currency the cryptogram covers (5F2A)")
        }
        // No PIN and no verification on the phone at or above the network's no-CVM limit. (A CVR
        // that claims a verification the phone did not make fails the ARQC after this.)
        if let noCVMLimit, request.amount.minorUnits >= noCVMLimit, request.pinBlock == nil,
           let iad = try? CloudIAD(bytes: data.iad), !iad.cardholderVerifiedOnDevice {
            return .refuse(code: "70", reason: "no PIN and no cardholder verification on the phone at or above the no-CVM limit")
        }
        let psn = request.cardSequenceNumber.map { String($0.suffix(2)) } ?? "01"
        return .check(CryptogramCheck(token: request.pan, psn: psn, data: data, arqc: arqc, transactionAmount: request.amount.minorUnits))
    }

    /// The switch's STAN toward the issuer, from its record's id.
    /// The key a terminal's request is known by (duplicates, reversals): its transmission time,
    /// terminal and STAN — the time first, so that new keys land together at the end of the
    /// index rather than at each terminal's place in it (one index page written per commit
    /// instead of one per sale).
    public static func requestKey(terminal: String, stan: String, transmission: String) -> String { "\(transmission)/\(terminal)/\(stan)" }

    static func issuerSTAN(_ id: Int64) -> String {
        let digits = String(id % 1_000_000)
        return String(repeating: "0", count: 6 - digits.count) + digits
    }

    /// The bank whose card range holds the PAN, by longest prefix.
    func bank(for pan: PAN) async throws -> String? {
        try await routing().cardRanges.filter { Self.inRange(pan, $0.low, $0.high) }.max { $0.low.count < $1.low.count }?.bank
    }

    static func inRange(_ pan: PAN, _ low: String, _ high: String) -> Bool {
        let prefix = String(pan.digits.prefix(low.count))
        return prefix.count == low.count && low <= prefix && prefix <= high
    }

    func log(_ what: String, _ message: Message) {
        guard logger.logLevel <= .debug, let spec else { return }
        logger.debug("\(what)", metadata: ["message": "\(message.describe(spec: spec, reveal: false))"])
    }

    static func clock() -> String { UTCTime(Date()).mmddhhmmss }

    /// The task's value if it arrives within `timeout`; nil when it fails or is late (the task
    /// goes on, so a late answer can still be handled).
    static func value<T: Sendable>(of task: Task<T, any Error>, within timeout: Duration) async -> T? {
        let once = ResumeOnce<T?>()
        return await withCheckedContinuation { continuation in
            once.set(continuation)
            Task { once.resume(try? await task.value) }
            Task {
                try? await Task.sleep(for: timeout)
                once.resume(nil)
            }
        }
    }
}

/// Resumes a continuation with the first value given, ignores the rest.
final class ResumeOnce<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, Never>?
    private var early: T??

    func set(_ c: CheckedContinuation<T, Never>) {
        lock.lock()
        if let early { lock.unlock(); c.resume(returning: early!); return }
        continuation = c
        lock.unlock()
    }

    func resume(_ value: T) {
        lock.lock()
        if let c = continuation {
            continuation = nil
            early = .some(value)
            lock.unlock()
            c.resume(returning: value)
        } else {
            if early == nil { early = .some(value) }
            lock.unlock()
        }
    }
}

/// A value behind a lock (Foundation's, so the module builds wherever Foundation does).
/// The requests this process is answering whose record is not committed yet: a sale in one
/// SQLite unit, or in a PostgreSQL batch, is recorded together with its answer. A terminal's
/// reversal of one waits until it is (``NetworkSwitch/reverseFromTerminal(_:)``) — otherwise
/// it would find no record, answer 25, and the sale would then be approved and stay charged.
final class InFlight: @unchecked Sendable {  // state behind the lock
    private let lock = NSLock()
    /// Request key → how many of its requests are in flight (a duplicate may be), and who waits.
    private var keys: [String: (count: Int, waiting: [CheckedContinuation<Void, Never>])] = [:]

    func begin(_ key: String) {
        lock.withLock { keys[key, default: (0, [])].count += 1 }
    }

    func end(_ key: String) {
        let waiting: [CheckedContinuation<Void, Never>] = lock.withLock {
            guard var entry = keys[key] else { return [] }
            entry.count -= 1
            if entry.count > 0 {
                keys[key] = entry
                return []
            }
            keys[key] = nil
            return entry.waiting
        }
        for waiter in waiting { waiter.resume() }
    }

    /// Returns once no request under `key` is in flight.
    func wait(for key: String) async {
        if lock.withLock({ keys[key] == nil }) { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = lock.withLock { () -> Bool in
                guard keys[key] != nil else { return true }
                keys[key]!.waiting.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }
}

final class Locked<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// What crossed the switch for one request, masked, kept with the transaction for `trace`. A
/// message is kept as its masked record and described only when the trace is read.
final class Trace: @unchecked Sendable {
    struct Line: Sendable {
        let direction: String
        let mti: String
        /// The description, for notes and for messages without a masked record.
        let text: String
        /// The message's masked record and the dialect that describes it.
        var masked: (dialect: String, record: [UInt8])? = nil
    }
    private let lock = NSLock()
    private var items: [Line] = []

    func add(_ direction: String, _ message: Message, _ spec: MessageSpec?) {
        let line: Line
        if let spec, let record = message.masked(spec: spec) {
            line = Line(direction: direction, mti: message.mti, text: "", masked: (spec.name, record))
        } else {
            line = Line(direction: direction, mti: message.mti, text: spec.map { message.describe(spec: $0, reveal: false) } ?? "MTI \(message.mti)")
        }
        lock.withLock { items.append(line) }
    }

    func note(_ text: String) { lock.withLock { items.append(Line(direction: "note", mti: "", text: text)) } }

    /// The token service's verdict on a cryptogram that verified.
    func noteVerified(token: Int64, key: LimitedUseKeyIndex, atc: [UInt8], card: PAN) {
        note("token service: cryptogram verified, token \(token), limited-use key \(key), ATC \(atc.hexString) first seen; card ending \(card.lastFour)")
    }

    var count: Int { lock.withLock { items.count } }

    /// The lines as one record ("CTT1"): per line its direction, MTI and text (each a length and
    /// UTF-8: 2, 1 and 4 bytes of length) and the masked record's dialect (1 byte of length, 0
    /// for none) and record (4 bytes of length, all ones for none); big-endian.
    static func record(_ lines: [Line]) -> [UInt8] {
        var out: [UInt8] = Array("CTT1".utf8)
        out.reserveCapacity(lines.reduce(4) { $0 + 16 + $1.direction.utf8.count + $1.text.utf8.count + ($1.masked?.record.count ?? 0) })
        func put<I: FixedWidthInteger>(_ value: I) { withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) } }
        for line in lines {
            let direction = Array(line.direction.utf8.prefix(Int(UInt16.max))), mti = Array(line.mti.utf8.prefix(255))
            put(UInt16(direction.count)); out += direction
            put(UInt8(mti.count)); out += mti
            put(UInt32(line.text.utf8.count)); out += line.text.utf8
            if let masked = line.masked {
                let dialect = Array(masked.dialect.utf8.prefix(254))
                put(UInt8(dialect.count)); out += dialect
                put(UInt32(masked.record.count)); out += masked.record
            } else {
                put(UInt8(0))
                put(UInt32.max)
            }
        }
        return out
    }

    /// The lines of a ``record(_:)``; nil when the bytes are not one.
    static func lines(_ bytes: [UInt8]) -> [Line]? {
        guard bytes.starts(with: Array("CTT1".utf8)) else { return nil }
        var i = 4
        func take(_ n: Int) -> ArraySlice<UInt8>? {
            guard n >= 0, n <= bytes.count - i else { return nil }
            defer { i += n }
            return bytes[i..<i + n]
        }
        func integer<I: FixedWidthInteger>(_: I.Type) -> I? { take(MemoryLayout<I>.size).map { $0.reduce(I.zero) { $0 << 8 | I($1) } } }
        func text(_ n: Int?) -> String? { n.flatMap { take($0) }.flatMap { String(validating: $0, as: UTF8.self) } }
        var out: [Line] = []
        while i < bytes.count {
            guard let direction = text(integer(UInt16.self).map(Int.init)), let mti = text(integer(UInt8.self).map(Int.init)),
                  let body = text(integer(UInt32.self).map(Int.init)), let dialectCount = integer(UInt8.self),
                  let dialect = text(Int(dialectCount)), let recordCount = integer(UInt32.self) else { return nil }
            var line = Line(direction: direction, mti: mti, text: body)
            if recordCount != UInt32.max {
                guard let record = take(Int(recordCount)) else { return nil }
                line.masked = (dialect, Array(record))
            }
            out.append(line)
        }
        return out
    }

    /// Drops what was added after the first `count` lines (an answer that was not kept).
    func truncate(to count: Int) { lock.withLock { if items.count > count { items.removeLast(items.count - count) } } }

    var lines: [Line] { lock.withLock { items } }
}
