import Foundation
import ISO8583
import IssuerHost
import Logging
import Metrics
import PaymentCore
import PaymentCrypto
import SQLKit
import Storage
import TokenService

/// Token sales on PostgreSQL, taken many at a time.
///
/// A sale with a token, at an issuer in this process that keeps its books in the switch's
/// database, is the network's common case; one at a time it costs PostgreSQL three statements
/// and two commits, and this process three round trips — work per statement and per commit,
/// not per row. Sales that arrive while earlier ones are at the database wait and go together:
/// the tokens, their keys and ATCs and a fresh record id each are read in one statement, with
/// the cards behind the tokens seen before (``CardsBehindTokens``), the cryptograms verified
/// and the requests forwarded here, any other cards read in a second statement, the sales
/// decided here, and everything the sales write — the requests with their answers, the
/// traces, the ATCs and key uses, the issuer's authorizations, ledger entries, balances, days
/// and PIN tries — is one statement and one commit. A token's next sale is verified and
/// decided from what its last one read and wrote (``WarmToken``), with no read: a batch of such
/// sales is its write alone. A sale waits for the statements of its batch; with nothing in
/// flight it goes at once, alone (batches form only under load).
///
/// The write checks again, in the database, everything the decisions were made from (the
/// token still active, the ATC unseen, the key within its limits, the balance, the day's totals
/// and the PIN tries unchanged, the request key new, and for a warm sale the counts of changes
/// its rows were read under); when any of it does not hold the statement fails whole, and the
/// batch is read and decided once more if it had warm sales, else its sales go the single way
/// (``NetworkSwitch/authorize(_:)``), which reads everything again. So do the sales of a batch
/// that the single way answers differently: a request key already recorded, a cryptogram or
/// token declined, an unknown card, a decision without a card, a PIN block without a key, and
/// two sales of one card or account in one batch (which the write finds as a change). Nothing
/// is written for a sale that goes the single way, and nothing is answered before the batch's
/// commit is on disk.
final class SaleBatcher: Sendable {
    /// A sale as ``NetworkSwitch/authorize(_:)`` has read it.
    struct Sale: Sendable {
        let message: Message
        let request: AuthorizationRequest
        let key: String
        let now: Date
        let clock: String
        let check: CryptogramCheck
        let lookup: Data
        let bank: String
        let gateway: IssuerGateway
    }

    /// The terminal's answer, or the single way.
    enum Outcome: Sendable {
        case answered(Message)
        case single
    }

    private struct Waiting: Sendable {
        let sale: Sale
        let continuation: CheckedContinuation<Outcome, Never>
        let since: ContinuousClock.Instant
    }

    /// A connection for each batch that may be at the database at once, held for the switch's
    /// life (``HeldSession``): a batch's statements and the work between them run on its
    /// connection's event loop, and so does the task that takes batches for it, so a batch waits
    /// for no lease from a pool and no thread hand-off. Against a connection leased for each
    /// batch, at 850 sales a second: the switch's time a sale 4.1 ms against 5.5, its wait for a
    /// batch 0.6 ms against 1.0 (docs/benchmarks.md).
    ///
    /// Two: one being written while another is read and decided keeps both this process and
    /// PostgreSQL busy. With two statements a batch (the cards read with the tokens), two against
    /// three: less CPU a sale in each of three alternating pairs at full load (0.64–0.68 ms
    /// against 0.68–0.72) and at half load (1.50–1.61 against 1.64–1.69), where batches are
    /// larger; throughput and the half-load tail within the noise. (With three statements a batch
    /// three had measured 3–10 % more sales a second.) With warm sales, a second batch started
    /// only when eight sales wait: less CPU a sale at half load, no shorter tail, a longer p50;
    /// three in flight: more CPU a sale, no shorter tail.
    let sessions: [HeldSession]
    /// Sales in one batch at most.
    let largest: Int
    /// The sales waiting, and the sessions no task is taking batches for.
    private let state: Locked<(waiting: [Waiting], idle: [Int])>

    init(sessions: [HeldSession], largest: Int = 64) {
        precondition(!sessions.isEmpty)
        self.sessions = sessions
        self.largest = largest
        state = Locked(([], Array(sessions.indices.reversed())))
    }

    /// How long a batch's stages took: `queued` a sale's wait for its batch to start, then the
    /// batch's `tokens` (statement, with the cards behind tokens seen before), `verify`
    /// (cryptograms, routing, PIN blocks, forwarding, the decisions on cards read with their
    /// tokens), `cards` (statement, the other cards), `decide` (on those) and `write`
    /// (statement and commit).
    static func stage(_ name: String) -> Timer {
        Timer(label: "cloudtap_switch_batch_stage_seconds", dimensions: [("stage", name)])
    }

    /// Waits for the sale's batch; `owner` runs it.
    func submit(_ sale: Sale, to owner: NetworkSwitch) async -> Outcome {
        await withCheckedContinuation { continuation in
            let idle = state.withLock { s -> Int? in
                s.waiting.append(Waiting(sale: sale, continuation: continuation, since: .now))
                return s.idle.popLast()
            }
            if let idle {
                Task(executorPreference: sessions[idle].executor) { await self.drain(owner, on: idle) }
            }
        }
    }

    /// Runs batches on session `index` until nobody waits.
    private func drain(_ owner: NetworkSwitch, on index: Int) async {
        while true {
            let batch: [Waiting]? = state.withLock { s in
                guard !s.waiting.isEmpty else {
                    s.idle.append(index)
                    return nil
                }
                let n = min(largest, s.waiting.count)
                defer { s.waiting.removeFirst(n) }
                return Array(s.waiting.prefix(n))
            }
            guard let batch else { return }
            let started = ContinuousClock.now
            for waiting in batch { SaleBatcher.stage("queued").record(duration: started - waiting.since) }
            let outcomes = await owner.run(batch.map(\.sale), on: sessions[index])
            for (waiting, outcome) in zip(batch, outcomes) { waiting.continuation.resume(returning: outcome) }
        }
    }
}

/// Entries kept by a key, the most recently used: two generations of `generation` entries at
/// most. Reading an entry of the previous generation moves it to the current one; when the
/// current one fills it becomes the previous, and entries not used for a whole generation are
/// dropped.
final class RecentlyUsed<Value: Sendable>: Sendable {
    let generation: Int
    private let state = Locked<(current: [Data: Value], previous: [Data: Value])>(([:], [:]))

    init(generation: Int) { self.generation = generation }

    subscript(key: Data) -> Value? {
        state.withLock { s in
            if let value = s.current[key] { return value }
            guard let value = s.previous[key] else { return nil }
            Self.insert(value, for: key, into: &s, generation: generation)
            return value
        }
    }

    func set(_ value: Value, for key: Data) {
        state.withLock { s in Self.insert(value, for: key, into: &s, generation: generation) }
    }

    /// Drops the entry, and gives it back.
    @discardableResult
    func remove(_ key: Data) -> Value? {
        state.withLock { s in
            // (An entry read from the previous generation is in both.)
            let previous = s.previous.removeValue(forKey: key)
            return s.current.removeValue(forKey: key) ?? previous
        }
    }

    private static func insert(_ value: Value, for key: Data, into s: inout (current: [Data: Value], previous: [Data: Value]), generation: Int) {
        if s.current[key] == nil, s.current.count >= generation { s = ([:], s.current) }
        s.current[key] = value
    }
}

/// The card behind each token the switch has seen, as its issuer finds it: the token's lookup
/// hash (the token service's keyed hash of the token) to the card's (the issuer's keyed hash of
/// the card number) — no card number, no token. With it a batch reads its cards in the statement
/// that reads its tokens, one round trip fewer; a sale's card row is used only when the hash it
/// was read by is the one the issuer makes of the card number the token service de-tokenized,
/// so an entry that is wrong costs the second read and nothing else. A token is bound to one
/// card for its life, so entries are not invalidated; the most recently used are kept.
typealias CardsBehindTokens = RecentlyUsed<Data>

extension RecentlyUsed where Value == Data {
    convenience init() { self.init(generation: 65_536) }

    func remember(_ card: Data, for token: Data) {
        if self[token] != card { set(card, for: token) }
    }
}

/// What the switch last read and wrote for a token's sales, by the token's lookup hash: the
/// token's row as its reading reads it, the limited-use keys it may name next (the one last
/// used and up to eight issued after it), the card behind it (its ``WarmCard``, by the card's
/// lookup hash: the tokens of one card share it), and the counts of changes to what no sale
/// writes that they were read under (``TokenService/readingVersion``,
/// ``IssuerHost/cardVersion``). After a batch's commit the rows are brought to what it wrote —
/// the key's uses and amount; the card's balance, day and PIN tries — so the
/// token's next sale with one of those keys on the card's day is verified and decided from them
/// without reading anything (a warm sale). Its write checks that all of it still holds: the
/// counts and amounts by the writes' own conditions, the rest by the counts of changes, compared
/// with the counts then; if anything changed — another process's sale, a reversal, a blocked
/// card, a new bank key — the statement fails whole, the batch's entries are dropped and its
/// sales decided again from what they read. Rows hold the sealed card number (as the vault
/// does), never a clear one.
struct WarmToken: Sendable {
    /// The token statement's row: token, vault entry, bank key, `token_version`.
    let token: CapturedRow
    /// The count of changes it was read under.
    var version: Int64? { NetworkSwitch.changeCount(token, "token_version") }
    /// The keys it may name next, in the order a phone uses them, and the last ATC verified.
    let keys: [LimitedUseKeyRow], atc: Int
    /// The card's lookup hash at its issuer (``WarmCard``).
    let cardHash: Data
}

/// The card behind warm tokens, as its issuer decides from it: its row
/// (``IssuerHost/cardRead(hash:day:key:)``, with the count of changes
/// ``IssuerHost/cardVersion`` as `card_version`) as the last batch that booked for it left it,
/// on that day.
struct WarmCard: Sendable {
    let card: CapturedRow
    let day: String
    /// The count of changes it was read under.
    var version: Int64? { NetworkSwitch.changeCount(card, "card_version") }
}

/// Record ids taken from the sequence ahead of their sales, for sales decided without a
/// statement: a batch of only warm sales runs only its write. A block is taken in the
/// background when half of one is left, so a batch seldom waits for one; ids taken and not
/// used leave gaps, as a sequence's do.
final class RecordIDs: Sendable {
    private let state = Locked<(ids: [Int64], refilling: Bool)>(([], false))
    /// Ids taken at once.
    let block: Int

    init(block: Int = 512) { self.block = block }

    /// The lowest id not yet used, if any.
    func take() -> Int64? { state.withLock { $0.ids.popLast() } }

    /// Takes a block from the sequence on `db` (the batch's connection) when fewer than
    /// `needed` are left, and the batch waits for it; when fewer than half a block are left,
    /// starts taking one on `ahead` (the pool) without waiting — after the batch's own block,
    /// when there is one, so that the batch's ids are the lower (taken at once, the background's
    /// block could come first from the sequence and last to hand, and the batch would take the
    /// higher ids).
    func refill(for needed: Int, on db: any SQLDatabase, ahead: any SQLDatabase, logger: Logger) async throws {
        let (short, low) = state.withLock { s -> (Bool, Bool) in
            let low = s.ids.count - needed < block / 2 && !s.refilling
            if low { s.refilling = true }
            return (s.ids.count < needed, low)
        }
        if short {
            do {
                try await take(max(block, needed), on: db)
            } catch {
                if low { state.withLock { $0.refilling = false } }
                throw error
            }
        }
        if low {
            Task {
                do {
                    try await self.take(block, on: ahead)
                } catch {
                    logger.debug("record ids not taken ahead", metadata: ["error": "\(error)"])
                }
                self.state.withLock { $0.refilling = false }
            }
        }
    }

    /// The records' sequence as `ids.record_sequence`, for `nextval`: looked up by name once a
    /// statement, not once a row (OFFSET 0 keeps the planner from pulling the look-up into the
    /// rows it is joined with; 512 ids took an idle server 1.8–2.2 ms that way, 0.5–1.0 this one).
    static let sequence: SQLQueryString = "(SELECT pg_get_serial_sequence('net_transactions', 'id')::regclass AS record_sequence OFFSET 0) ids"

    private func take(_ count: Int, on db: any SQLDatabase) async throws {
        let taken = try await db.raw("""
            SELECT nextval(ids.record_sequence) AS id FROM \(RecordIDs.sequence) CROSS JOIN generate_series(1, \(bind: count))
            """).all().map { try $0.decode(column: "id", as: Int64.self) }
        state.withLock { $0.ids = (taken + $0.ids).sorted(by: >) }
    }

    /// Ids on hand (for tests).
    var count: Int { state.withLock { $0.ids.count } }
}

extension NetworkSwitch {
    /// The sale as the batcher takes it, when it is one it takes: a token's cryptogram to check
    /// on PostgreSQL, the token service and the issuer in this process on the switch's database,
    /// and text that travels in the batch's arrays.
    func batchable(_ message: Message, _ request: AuthorizationRequest, key: String, now: Date, clock: String, bank: String?,
                   check: CryptogramCheck?, lookup: Data?) -> SaleBatcher.Sale? {
        guard db.engine == .postgres, tsp.uses(db), let check, let lookup, let bank,
              let gateway = (issuers[bank] as? InProcessIssuer)?.gateway, gateway.host.uses(db),
              [key, request.terminalID, request.stan, request.merchantID, request.acquirerID].allSatisfy(PostgresArray.canHold) else { return nil }
        return SaleBatcher.Sale(message: message, request: request, key: key, now: now, clock: clock, check: check, lookup: lookup, bank: bank, gateway: gateway)
    }

    /// What a ``WarmToken`` keeps of the token's row and of the card's: what a reading and a
    /// decision read, and the counts of changes they were read under.
    static let warmTokenColumns = TokenService.tokenColumnNames.union(["token_version"])
    static let warmCardColumns = IssuerHost.cardColumnNames.union(["card_version"])

    /// One batch: what each sale gets (see ``SaleBatcher``).
    func run(_ sales: [SaleBatcher.Sale], on held: HeldSession) async -> [SaleBatcher.Outcome] {
        var outcomes = [SaleBatcher.Outcome](repeating: .single, count: sales.count)
        do {
            // On one connection, on its event loop: the batch's statements wait for no
            // connection and no thread hand-off (4 % more sales a second at full load, p50 0.7 ms
            // less at half), and keep one plan each (half-load p99 9.2–9.4 ms against 11–12).
            // The decisions between them run there too, about 0.1 ms a sale.
            let decided = try await held.run { session in
                let (decided, failure) = try await self.decideAndWrite(sales, on: session)
                guard let failure else { return decided }
                // A warm sale's rows changed since (a sale elsewhere, a reversal, a blocked card):
                // the batch's entries go, and its sales are decided once more from what they read.
                self.forget(sales, decided)
                guard IssuerHost.isChange(failure), decided.contains(where: { $0.source == .warm }) else { throw failure }
                Counter(label: "cloudtap_switch_batch_rereads_total").increment()
                let (again, second) = try await self.decideAndWrite(sales, on: session)
                if let second { throw second }
                return again
            }
            remember(decided)
            for sale in decided {
                Counter(label: "cloudtap_switch_token_checks_total", dimensions: [("result", "valid")]).increment()
                sale.gateway.count(sale.decision)
                outcomes[sale.index] = .answered(sale.response)
            }
            if !decided.isEmpty {
                Counter(label: "cloudtap_switch_batched_sales_total", dimensions: [("way", "batch")]).increment(by: Int64(decided.count))
                let warm = decided.filter { $0.source == .warm }.count
                if warm > 0 { Counter(label: "cloudtap_switch_batched_sales_total", dimensions: [("way", "warm")]).increment(by: Int64(warm)) }
                Recorder(label: "cloudtap_switch_batch_size").record(decided.count)
            }
        } catch where IssuerHost.isChange(error) || postgresSQLState(error) == "21000" {
            // 21000: an upsert met one row twice (two sales of one card's day).
            logger.debug("a batch's reading changed before its write; its sales go one by one", metadata: ["sales": "\(sales.count)"])
        } catch {
            // The error's description and SQLSTATE only: a server error's debug description
            // carries the statement, whose arguments are the batch's data.
            logger.warning("a batch failed; its sales go one by one",
                           metadata: ["sales": "\(sales.count)", "error": "\(error)", "sqlstate": "\(postgresSQLState(error) ?? "-")"])
        }
        // What the single way writes for a token and its card is not known here: their entries go.
        let single = sales.indices.filter { if case .single = outcomes[$0] { true } else { false } }.map { sales[$0] }
        forget(single, [])
        if !single.isEmpty { Counter(label: "cloudtap_switch_batched_sales_total", dimensions: [("way", "single")]).increment(by: Int64(single.count)) }
        return outcomes
    }

    /// Decides the batch and writes it: the sales decided, and the write's error if it failed
    /// (nothing written).
    private func decideAndWrite(_ sales: [SaleBatcher.Sale], on session: any SQLDatabase) async throws -> ([DecidedSale], (any Error)?) {
        let decided = try await decide(sales, on: session)
        guard !decided.isEmpty else { return (decided, nil) }
        let start = ContinuousClock.now
        do {
            try await write(decided, on: session)
        } catch {
            return (decided, error)
        }
        let took = ContinuousClock.now - start
        SaleBatcher.stage("write").record(duration: took)
        if took >= configuration.slowWrite {
            // Most often the commit's flush: a disk's flush can stall for hundreds of
            // milliseconds, and every batch committing meanwhile waits for it (docs/switch.md).
            logger.warning("PostgreSQL took \(took.formatted(.units(allowed: [.milliseconds]))) to write and commit a batch; its sales waited for it",
                           metadata: ["sales": "\(decided.count)"])
        }
        return (decided, nil)
    }

    /// Keeps what a written batch leaves for its tokens and cards (``WarmToken``, ``WarmCard``);
    /// not for a token or card with two sales in the batch, whose second was decided from the
    /// rows as they were before the first.
    private func remember(_ decided: [DecidedSale]) {
        var tokens: [Data: Int] = [:], cards: [Data: Int] = [:]
        for sale in decided {
            tokens[sale.sale.lookup, default: 0] += 1
            cards[sale.cardHash, default: 0] += 1
        }
        for sale in decided {
            guard let (token, card) = sale.written else { continue }
            if tokens[sale.sale.lookup] == 1 { warmTokens.set(token, for: sale.sale.lookup) } else { warmTokens.remove(sale.sale.lookup) }
            if cards[sale.cardHash] == 1 { warmCards.set(card, for: sale.cardHash) } else { warmCards.remove(sale.cardHash) }
        }
    }

    /// Drops the entries of these sales' tokens and of their cards, as far as they are known.
    private func forget(_ sales: [SaleBatcher.Sale], _ decided: [DecidedSale]) {
        for sale in sales {
            if let card = warmTokens.remove(sale.lookup)?.cardHash ?? cardsBehindTokens[sale.lookup] { warmCards.remove(card) }
        }
        for sale in decided { warmCards.remove(sale.cardHash) }
    }

    /// A sale of the batch decided: what its write needs and what its terminal is answered.
    struct DecidedSale {
        /// Where its rows came from: ``WarmToken`` (no statement), the token statement (its
        /// card read with it, by the card hash remembered) or the card statement after it.
        enum Source: Equatable { case warm, withToken, cardStatement }

        let index: Int
        let sale: SaleBatcher.Sale
        let id: Int64
        let verified: VerifiedCryptogram
        let prepared: PreparedAuthorization
        let booking: PreparedAuthorization.BookingValues
        let decision: IssuerGateway.Decision
        let response: Message
        let trace: Trace
        let source: Source
        /// The rows it was verified and decided from, as kept (nil when a row could not be),
        /// and the token's keys as they were.
        let token: CapturedRow?, keys: [LimitedUseKeyRow], card: CapturedRow?
        /// The card's lookup hash, and the day it was decided on.
        let cardHash: Data, day: String
        var gateway: IssuerGateway { sale.gateway }

        /// The token's and the card's entries as this sale's write leaves them: the key used
        /// once more; the balance, the card's day and its PIN tries as booked.
        var written: (WarmToken, WarmCard)? {
            guard let token, var card else { return nil }
            let named = TokenService.cryptogramKeys(sale.check)
            // The key used once more; the keys before it are not used again.
            var keys = self.keys.filter { ($0.hour, $0.sequence) >= (named.hour, named.sequence) }
            if let i = keys.firstIndex(where: { ($0.hour, $0.sequence) == (named.hour, named.sequence) }) {
                keys[i].uses += 1
                keys[i].cumulative += verified.recordingValues.spend
            }
            if let after = booking.pinAfter { card = card.setting("pin_tries", to: .integer(after)) }
            if booking.approved {
                card = card.setting("balance", to: .integer(booking.balance - booking.amount))
                    .setting("today_total", to: .integer(booking.todayTotal + booking.amount))
                    .setting("today_approvals", to: .integer(booking.todayApprovals + 1))
            }
            return (WarmToken(token: token, keys: keys, atc: Int(named.atc), cardHash: cardHash), WarmCard(card: card, day: day))
        }
    }

    /// The count of changes in `column` of a row (selected as text); nil when there is none.
    static func changeCount(_ row: any SQLRow, _ column: String) -> Int64? {
        (try? row.decode(column: column, as: String?.self)).flatMap { Int64($0) }
    }

    /// Keeps the highest counts of changes `rows` were read under (``changesSeen``).
    private func noteChanges(_ rows: [any SQLRow]) {
        let tokens = rows.compactMap { Self.changeCount($0, "token_version") }.max() ?? 0
        let cards = rows.compactMap { Self.changeCount($0, "card_version") }.max() ?? 0
        changesSeen.withLock { $0 = (max($0.tokens, tokens), max($0.cards, cards)) }
    }

    /// Reads and decides the batch, writing nothing; the sales the single way answers
    /// differently are left out.
    func decide(_ sales: [SaleBatcher.Sale], on db: any SQLDatabase) async throws -> [DecidedSale] {
        var clock = ContinuousClock.now
        /// Records the stage that ends now.
        func lap(_ stage: String) {
            let now = ContinuousClock.now
            SaleBatcher.stage(stage).record(duration: now - clock)
            clock = now
        }
        var decided: [DecidedSale] = []
        /// Decides a forwarded sale from its card's row (`card`; `kept`, the rows kept for the
        /// token's next sales); a sale the single way answers differently (no card, a repeat, a
        /// PIN block without a key) is left out, and so is a warm sale that is not approved (its
        /// rows are read again: what declines it may have changed since). True when it was
        /// decided.
        @discardableResult
        func decideForwarded(_ index: Int, id: Int64, verified: VerifiedCryptogram, outbound: Message, input: AuthorizationInput, card: any SQLRow,
                             kept: (token: CapturedRow?, keys: [LimitedUseKeyRow], card: CapturedRow?), cardHash: Data, day: String,
                             source: DecidedSale.Source) throws -> Bool {
            let sale = sales[index]
            guard let prepared = try? sale.gateway.host.decide(input, card: card, day: day),
                  source != .warm || prepared.decision.isApproved, let booking = prepared.bookingValues else { return false }
            let decision = try sale.gateway.decision(outbound, prepared.decision)
            let trace = Trace()
            trace.add("terminal → switch", sale.message, terminalSpec)
            trace.noteVerified(token: verified.tokenID, key: verified.keyIndex, atc: sale.check.data.atc, card: verified.pan)
            log("→ issuer \(sale.bank)", outbound)
            trace.add("switch → issuer \(sale.bank)", outbound, spec)
            let response = try self.response(to: sale.message, decided: decision, bank: sale.bank, trace: trace)
            decided.append(DecidedSale(index: index, sale: sale, id: id, verified: verified, prepared: prepared, booking: booking, decision: decision,
                                       response: response, trace: trace, source: source, token: kept.token, keys: kept.keys, card: kept.card,
                                       cardHash: cardHash, day: day))
            return true
        }

        /// Verifies and decides sale `index` from its token's entry and its card's, when the
        /// token's holds the key its cryptogram names and its ATC is not the one last verified,
        /// and the card's is of the sale's day; false when the sale is to be read (an id taken
        /// meanwhile is left unused).
        func decideWarm(_ index: Int, _ warm: WarmToken) async throws -> Bool {
            let sale = sales[index]
            let named = TokenService.cryptogramKeys(sale.check)
            guard Int(named.atc) != warm.atc, let card = warmCards[warm.cardHash], UTCTime(sale.now).isoDate == card.day,
                  let version = card.version, version >= seen.cards,
                  let key = warm.keys.first(where: { ($0.hour, $0.sequence) == (named.hour, named.sequence) }),
                  case .verified(let verified) = try await tsp.reading(sale.check, row: warm.token.setting(key.columns), on: db),
                  try await bank(for: verified.pan) == sale.bank, let id = recordIDs.take(),
                  let forward = try await forwarded(sale.request, pan: verified.pan, id: id, bank: sale.bank, clock: sale.clock) else { return false }
            let (input, lookup) = try sale.gateway.prepare(forward)
            let day = UTCTime(input.date).isoDate
            guard lookup == warm.cardHash, day == card.day else { return false }
            return try decideForwarded(index, id: id, verified: verified, outbound: forward.message, input: input, card: card.card,
                                       kept: (warm.token, warm.keys, card.card), cardHash: lookup, day: day, source: .warm)
        }

        // Warm sales: verified and decided from the rows the token's last sale left, with an id
        // taken ahead. Any other sale, and a token's second sale in the batch, is read.
        var cold: [Int] = []
        var tokensSeen = Set<Data>()
        let seen = changesSeen.withLock { $0 }
        let warm = sales.map { sale -> WarmToken? in
            guard tokensSeen.insert(sale.lookup).inserted, let entry = warmTokens[sale.lookup],
                  let version = entry.version, version >= seen.tokens else { return nil }
            return entry
        }
        let candidates = warm.count { $0 != nil }
        if candidates > 0 { try await recordIDs.refill(for: candidates, on: db, ahead: self.db.sql, logger: logger) }
        for index in sales.indices {
            do {
                if let warm = warm[index], try await decideWarm(index, warm) { continue }
            } catch {
                logger.debug("a warm sale is read", metadata: ["error": "\(error)"])
            }
            cold.append(index)
        }
        lap("warm")
        guard !cold.isEmpty else { return decided }

        // The tokens, each with its key and whether its ATC was seen, a fresh record id and
        // whether the request key is recorded already; with them the cards behind the tokens
        // seen before, by the card hash remembered and on the sale's day (any earlier answer to
        // the issuer's key is not looked for: the key is made of the record id this statement
        // takes, so there is none, and the write would find one).
        let reading = cold.map { sales[$0] }
        let cryptograms = reading.map { TokenService.cryptogramKeys($0.check) }
        let behind = reading.map { cardsBehindTokens[$0.lookup] }
        let readDays = reading.map { UTCTime($0.now).isoDate }
        let tokens = try await db.raw("""
            SELECT q.n, nextval(ids.record_sequence) AS record_id,
                   (SELECT true FROM net_transactions x WHERE x.request_key = q.request_key LIMIT 1) IS NOT NULL AS recorded,
                   \(TokenService.cryptogramColumns), \(TokenService.readingVersion) AS token_version,
                   \(TokenService.nextKeysColumn) AS next_keys, card.*
            FROM unnest(\(bind: PostgresArray(reading.map(\.lookup))), \(bind: PostgresArray(cryptograms.map(\.atc))),
                        \(bind: PostgresArray(cryptograms.map(\.hour))), \(bind: PostgresArray(cryptograms.map(\.sequence))),
                        \(bind: PostgresArray(reading.map(\.key))), \(bind: PostgresArray(behind)),
                        \(bind: PostgresArray(readDays))) WITH ORDINALITY AS q(hash, atc, hour, sequence, request_key, card, day, n)
            CROSS JOIN \(RecordIDs.sequence)
            \(TokenService.cryptogramJoins)
            LEFT JOIN LATERAL (SELECT \(IssuerHost.cardVersion) AS card_version,
                                      \(IssuerHost.cardRead(hash: "q.card", day: "q.day", key: "NULL::text"))) card ON true
            """).all()
        lap("tokens")
        noteChanges(tokens)
        struct Forwarded {
            let index: Int, id: Int64, verified: VerifiedCryptogram, outbound: Message, input: AuthorizationInput, lookup: Data, day: String
            let token: CapturedRow?, keys: [LimitedUseKeyRow]
        }
        var unread: [Forwarded] = []
        for row in tokens {
            let n = Int(try row.decode(column: "n", as: Int64.self)) - 1
            let index = cold[n], sale = sales[index]
            // A sale whose reading or forwarding fails (a PIN block that does not decipher, say)
            // goes the single way, which answers it; the others stay in the batch.
            do {
                guard try !row.decode(column: "recorded", as: Bool.self),
                      case .verified(let verified) = try await tsp.reading(sale.check, row: row, on: db),
                      try await bank(for: verified.pan) == sale.bank else { continue }
                let id = try row.decode(column: "record_id", as: Int64.self)
                guard let forward = try await self.forwarded(sale.request, pan: verified.pan, id: id, bank: sale.bank, clock: sale.clock) else { continue }
                let (input, lookup) = try sale.gateway.prepare(forward)
                let named = cryptograms[n], captured = CapturedRow(capturing: row, columns: Self.warmTokenColumns)
                let keys = (LimitedUseKeyRow(row: row, hour: named.hour, sequence: named.sequence).map { [$0] } ?? [])
                    + LimitedUseKeyRow.list(try row.decode(column: "next_keys", as: String?.self))
                let f = Forwarded(index: index, id: id, verified: verified, outbound: forward.message, input: input, lookup: lookup,
                                  day: UTCTime(input.date).isoDate, token: captured, keys: keys)
                if behind[n] == lookup, f.day == readDays[n], try row.decode(column: "card_id", as: Int64?.self) != nil {
                    try decideForwarded(index, id: id, verified: verified, outbound: f.outbound, input: input, card: row,
                                        kept: (captured, keys, CapturedRow(capturing: row, columns: Self.warmCardColumns)), cardHash: lookup, day: f.day,
                                        source: .withToken)
                } else {
                    cardsBehindTokens.remember(lookup, for: sale.lookup)
                    unread.append(f)
                }
            } catch {
                logger.debug("a sale leaves its batch", metadata: ["error": "\(error)"])
            }
        }
        lap("verify")
        guard !unread.isEmpty else { return decided }

        // The cards not read with the tokens, as the issuer decides from them.
        let cards = try await db.raw("""
            SELECT q.n, card.* FROM unnest(\(bind: PostgresArray(unread.map(\.lookup))), \(bind: PostgresArray(unread.map(\.day))),
                                           \(bind: PostgresArray(unread.map(\.input.idempotencyKey)))) WITH ORDINALITY AS q(hash, day, key, n),
            LATERAL (SELECT \(IssuerHost.cardVersion) AS card_version, \(IssuerHost.cardRead(hash: "q.hash", day: "q.day", key: "q.key"))) card
            """).all()
        lap("cards")
        noteChanges(cards)
        for row in cards {
            let f = unread[Int(try row.decode(column: "n", as: Int64.self)) - 1]
            try decideForwarded(f.index, id: f.id, verified: f.verified, outbound: f.outbound, input: f.input, card: row,
                                kept: (f.token, f.keys, CapturedRow(capturing: row, columns: Self.warmCardColumns)), cardHash: f.lookup, day: f.day,
                                source: .cardStatement)
        }
        lap("decide")
        return decided
    }

    /// Everything the decided sales write, in one statement that the server commits by itself
    /// (on `db`, a ``HeldSession``'s): it fails whole (SQLSTATE 40001) unless every sale
    /// was written as decided.
    func write(_ sales: [DecidedSale], on db: any SQLDatabase) async throws {
        let answered = UTCTime(Date()).iso8601
        let tokens = sales.map(\.verified.recordingValues), books = sales.map(\.booking)
        // A warm sale's counts of changes, to compare; a read sale's rows are as fresh as the single way's.
        let versions = sales.map { sale -> (token: String?, card: String?) in
            guard sale.source == .warm else { return (nil, nil) }
            return (try? sale.token?.decode(column: "token_version", as: String.self), try? sale.card?.decode(column: "card_version", as: String.self))
        }
        let warm = sales.filter { $0.source == .warm }.count
        let rows = PostgresArray.rows([
            ("record_id", PostgresArray(sales.map(\.id))), ("request_key", PostgresArray(sales.map(\.sale.key))),
            ("terminal_id", PostgresArray(sales.map(\.sale.request.terminalID))), ("stan", PostgresArray(sales.map(\.sale.request.stan))),
            ("token_last4", PostgresArray(sales.map(\.sale.request.pan.lastFour))), ("requested_at", PostgresArray(sales.map { UTCTime($0.sale.now).iso8601 })),
            ("merchant_id", PostgresArray(sales.map(\.sale.request.merchantID))), ("acquirer_id", PostgresArray(sales.map(\.sale.request.acquirerID))),
            ("trace", PostgresArray(sales.map { Data(Trace.record($0.trace.lines)) })),
            ("token_id", PostgresArray(tokens.map(\.tokenID))), ("atc", PostgresArray(tokens.map(\.atc))), ("stamp", PostgresArray(tokens.map(\.stamp))),
            ("amount_authorised", PostgresArray(tokens.map(\.amountAuthorised))), ("key_sequence", PostgresArray(tokens.map(\.keySequence))),
            ("key_id", PostgresArray(tokens.map(\.keyID))), ("spend", PostgresArray(tokens.map(\.spend))),
            ("bank_id", PostgresArray(books.map(\.bank))), ("idempotency_key", PostgresArray(books.map(\.idempotencyKey))), ("card_id", PostgresArray(books.map(\.card))),
            ("amount", PostgresArray(books.map(\.amount))), ("currency", PostgresArray(books.map(\.currency))), ("response_code", PostgresArray(books.map(\.responseCode))),
            ("auth_code", PostgresArray(books.map(\.authCode))), ("reason", PostgresArray(books.map(\.reason))), ("day", PostgresArray(books.map(\.day))),
            ("state", PostgresArray(books.map(\.state))), ("created_at", PostgresArray(books.map(\.createdAt))), ("approved", PostgresArray(books.map(\.approved))),
            ("account_id", PostgresArray(books.map(\.account))), ("balance", PostgresArray(books.map(\.balance))), ("today_total", PostgresArray(books.map(\.todayTotal))),
            ("today_approvals", PostgresArray(books.map(\.todayApprovals))), ("pin_before", PostgresArray(books.map(\.pinBefore))), ("pin_after", PostgresArray(books.map(\.pinAfter))),
            ("token_version", PostgresArray(versions.map(\.token))), ("card_version", PostgresArray(versions.map(\.card))),
        ])
        let source: Statement = """
            WITH s AS (\(rows)),
            -- The warm sales' rows unchanged in all that no sale writes (the rest the writes check):
            -- the counts of changes the same as when they were read.
            fresh AS (SELECT COUNT(*) AS n FROM s WHERE s.token_version = \(TokenService.readingVersion) AND s.card_version = \(IssuerHost.cardVersion)),
            request AS (
                INSERT INTO net_transactions (id, request_key, terminal_id, stan, token_last4, amount, currency, state, reason, created_at,
                    merchant_id, acquirer_id, bank_id, issuer_key, response_code, auth_code, answered_at) OVERRIDING SYSTEM VALUE
                SELECT record_id, request_key, terminal_id, stan, token_last4, amount, currency, state, 'issuer', requested_at,
                    merchant_id, acquirer_id, bank_id, idempotency_key, response_code, auth_code, \(bind: answered) FROM s
                ON CONFLICT (request_key) DO NOTHING RETURNING id),
            trail AS (INSERT INTO net_traces (transaction_id, lines, created_at) SELECT request.id, s.trace, \(bind: answered) FROM request JOIN s ON s.record_id = request.id),
            """
        let statement = source + TokenService.recordingMany(from: "s") + ", " + IssuerHost.bookingMany(from: "s") + """
             SELECT issuer_unchanged((SELECT COUNT(*) FROM request) = \(bind: sales.count) AND (SELECT n FROM fresh) = \(bind: warm)
                                     AND \(TokenService.recordedManyCheck(count: sales.count))) AS recorded,
                \(IssuerHost.bookedManyCheck(sales.map(\.prepared)))
            """
        _ = try await db.all(statement)
    }
}
