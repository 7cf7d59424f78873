import Foundation
import ISO8583
import IssuerHost
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
/// and PIN tries — is one statement and one commit. A sale waits for the statements of its
/// batch; with nothing in flight it goes at once, alone (batches form only under load).
///
/// The write checks again, in the database, everything the decisions were made from (the
/// token still active, the ATC unseen, the key within its limits, the balance, the day's totals
/// and the PIN tries unchanged, the request key new); when any of it does not hold the statement
/// fails whole and the batch's sales go the single way (``NetworkSwitch/authorize(_:)``), which
/// reads everything again. So do the sales of a batch that the single way answers differently:
/// a request key already recorded, a cryptogram or token declined, an unknown card, a decision
/// without a card, a PIN block without a key, and two sales of one card or account in one
/// batch (which the write finds as a change). Nothing is written for a sale that goes the
/// single way, and nothing is answered before the batch's commit is on disk.
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

    /// Batches at the database at once: one being written while another is read and decided
    /// keeps both this process and PostgreSQL busy. With two statements a batch (the cards read
    /// with the tokens), two against three: less CPU a sale in each of three alternating pairs at
    /// full load (0.64–0.68 ms against 0.68–0.72) and at half load (1.50–1.61 against
    /// 1.64–1.69), where batches are larger; throughput and the half-load tail within the noise.
    /// (With three statements a batch three had measured 3–10 % more sales a second.)
    let concurrent: Int
    /// Sales in one batch at most.
    let largest: Int
    private let state = Locked<(waiting: [Waiting], running: Int)>(([], 0))

    init(concurrent: Int = 2, largest: Int = 64) {
        self.concurrent = concurrent
        self.largest = largest
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
            let start = state.withLock { s -> Bool in
                s.waiting.append(Waiting(sale: sale, continuation: continuation, since: .now))
                guard s.running < concurrent else { return false }
                s.running += 1
                return true
            }
            if start { Task { await self.drain(owner) } }
        }
    }

    /// Runs batches until nobody waits.
    private func drain(_ owner: NetworkSwitch) async {
        while true {
            let batch: [Waiting]? = state.withLock { s in
                guard !s.waiting.isEmpty else {
                    s.running -= 1
                    return nil
                }
                let n = min(largest, s.waiting.count)
                defer { s.waiting.removeFirst(n) }
                return Array(s.waiting.prefix(n))
            }
            guard let batch else { return }
            let started = ContinuousClock.now
            for waiting in batch { SaleBatcher.stage("queued").record(duration: started - waiting.since) }
            let outcomes = await owner.run(batch.map(\.sale))
            for (waiting, outcome) in zip(batch, outcomes) { waiting.continuation.resume(returning: outcome) }
        }
    }
}

/// The card behind each token the switch has seen, as its issuer finds it: the token's lookup
/// hash (the token service's keyed hash of the token) to the card's (the issuer's keyed hash of
/// the card number) — no card number, no token. With it a batch reads its cards in the statement
/// that reads its tokens, one round trip fewer; a sale's card row is used only when the hash it
/// was read by is the one the issuer makes of the card number the token service de-tokenized,
/// so an entry that is wrong costs the second read and nothing else. A token is bound to one
/// card for its life, so entries are not invalidated; the most recently used are kept, two
/// generations of `generation` entries at most.
final class CardsBehindTokens: Sendable {
    let generation: Int
    private let state = Locked<(current: [Data: Data], previous: [Data: Data])>(([:], [:]))

    init(generation: Int = 65_536) { self.generation = generation }

    subscript(token: Data) -> Data? {
        state.withLock { s in
            if let card = s.current[token] { return card }
            guard let card = s.previous[token] else { return nil }
            Self.insert(card, for: token, into: &s, generation: generation)
            return card
        }
    }

    func remember(_ card: Data, for token: Data) {
        state.withLock { s in if s.current[token] != card { Self.insert(card, for: token, into: &s, generation: generation) } }
    }

    /// Entries not used for a whole generation are dropped when the current one fills.
    private static func insert(_ card: Data, for token: Data, into s: inout (current: [Data: Data], previous: [Data: Data]), generation: Int) {
        if s.current.count >= generation { s = ([:], s.current) }
        s.current[token] = card
    }
}

extension NetworkSwitch {
    /// The sale as the batcher takes it, when it is one it takes: a token's cryptogram to check
    /// on PostgreSQL, the token service and the issuer in this process on the switch's database,
    /// and text that travels in the batch's arrays.
    func batchable(_ message: Message, _ request: AuthorizationRequest, key: String, now: Date, clock: String, bank: String?,
                   check: CryptogramCheck?, lookup: Data?) -> SaleBatcher.Sale? {
        guard db.engine == .postgres, tsp.uses(db), let check, let lookup, let bank,
              let gateway = (issuers[bank] as? InProcessIssuer)?.gateway, gateway.host.uses(db),
              [key, request.terminalID, request.stan, request.merchantID, request.acquirerID].allSatisfy(PostgresArray.isLiteral) else { return nil }
        return SaleBatcher.Sale(message: message, request: request, key: key, now: now, clock: clock, check: check, lookup: lookup, bank: bank, gateway: gateway)
    }

    /// One batch: what each sale gets (see ``SaleBatcher``).
    func run(_ sales: [SaleBatcher.Sale]) async -> [SaleBatcher.Outcome] {
        var outcomes = [SaleBatcher.Outcome](repeating: .single, count: sales.count)
        do {
            // On one connection, on its event loop: the batch's statements wait for no
            // connection and no thread hand-off (4 % more sales a second at full load, p50 0.7 ms
            // less at half), and keep one plan each (half-load p99 9.2–9.4 ms against 11–12).
            // The decisions between them run there too, about 0.1 ms a sale.
            let decided = try await db.session { session in
                let decided = try await self.decide(sales, on: session)
                if !decided.isEmpty {
                    let start = ContinuousClock.now
                    try await self.write(decided, on: session)
                    SaleBatcher.stage("write").record(duration: .now - start)
                }
                return decided
            }
            guard !decided.isEmpty else { return outcomes }
            for sale in decided {
                Counter(label: "cloudtap_switch_token_checks_total", dimensions: [("result", "valid")]).increment()
                sale.gateway.count(sale.decision)
                outcomes[sale.index] = .answered(sale.response)
            }
            Counter(label: "cloudtap_switch_batched_sales_total", dimensions: [("way", "batch")]).increment(by: Int64(decided.count))
            Recorder(label: "cloudtap_switch_batch_size").record(decided.count)
        } catch where IssuerHost.isChange(error) || postgresSQLState(error) == "21000" {
            // 21000: an upsert met one row twice (two sales of one card's day).
            logger.debug("a batch's reading changed before its write; its sales go one by one", metadata: ["sales": "\(sales.count)"])
        } catch {
            // The error's description and SQLSTATE only: a server error's debug description
            // carries the statement, whose arguments are the batch's data.
            logger.warning("a batch failed; its sales go one by one",
                           metadata: ["sales": "\(sales.count)", "error": "\(error)", "sqlstate": "\(postgresSQLState(error) ?? "-")"])
        }
        let single = outcomes.filter { if case .single = $0 { true } else { false } }.count
        if single > 0 { Counter(label: "cloudtap_switch_batched_sales_total", dimensions: [("way", "single")]).increment(by: Int64(single)) }
        return outcomes
    }

    /// A sale of the batch decided: what its write needs and what its terminal is answered.
    struct DecidedSale {
        let index: Int
        let sale: SaleBatcher.Sale
        let id: Int64
        let verified: VerifiedCryptogram
        let prepared: PreparedAuthorization
        let booking: PreparedAuthorization.BookingValues
        let decision: IssuerGateway.Decision
        let response: Message
        let trace: Trace
        /// Whether its card was read with its token (by the card hash remembered).
        let cardReadWithToken: Bool
        var gateway: IssuerGateway { sale.gateway }
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
        // The tokens, each with its key and whether its ATC was seen, a fresh record id and
        // whether the request key is recorded already; with them the cards behind the tokens
        // seen before, by the card hash remembered and on the sale's day (any earlier answer to
        // the issuer's key is not looked for: the key is made of the record id this statement
        // takes, so there is none, and the write would find one).
        let cryptograms = sales.map { TokenService.cryptogramKeys($0.check) }
        let behind = sales.map { cardsBehindTokens[$0.lookup] }
        let readDays = sales.map { UTCTime($0.now).isoDate }
        let tokens = try await db.raw("""
            SELECT q.n, nextval(ids.record_sequence) AS record_id,
                   (SELECT true FROM net_transactions x WHERE x.request_key = q.request_key LIMIT 1) IS NOT NULL AS recorded,
                   \(TokenService.cryptogramColumns), card.*
            FROM unnest(\(bind: PostgresArray(sales.map(\.lookup))), \(bind: PostgresArray(cryptograms.map(\.atc))),
                        \(bind: PostgresArray(cryptograms.map(\.hour))), \(bind: PostgresArray(cryptograms.map(\.sequence))),
                        \(bind: PostgresArray(sales.map(\.key))), \(bind: PostgresArray(behind)),
                        \(bind: PostgresArray(readDays))) WITH ORDINALITY AS q(hash, atc, hour, sequence, request_key, card, day, n)
            -- The sequence looked up once: by name it is a catalog search a row.
            CROSS JOIN (SELECT pg_get_serial_sequence('net_transactions', 'id')::regclass AS record_sequence) ids
            \(TokenService.cryptogramJoins)
            LEFT JOIN LATERAL (SELECT \(IssuerHost.cardRead(hash: "q.card", day: "q.day", key: "NULL::text"))) card ON true
            """).all()
        lap("tokens")
        struct Forwarded {
            let index: Int, id: Int64, verified: VerifiedCryptogram, outbound: Message, input: AuthorizationInput, lookup: Data, day: String
        }
        var decided: [DecidedSale] = []
        /// Decides a forwarded sale from its card's row; a sale the single way answers
        /// differently (no card, a repeat, a PIN block without a key) is left out.
        func decideForwarded(_ f: Forwarded, card row: any SQLRow, withToken: Bool) throws {
            let sale = sales[f.index]
            guard let prepared = try? sale.gateway.host.decide(f.input, card: row, day: f.day),
                  let booking = prepared.bookingValues else { return }
            let decision = try sale.gateway.decision(f.outbound, prepared.decision)
            let trace = Trace()
            trace.add("terminal → switch", sale.message, terminalSpec)
            trace.noteVerified(token: f.verified.tokenID, key: f.verified.keyIndex, atc: sale.check.data.atc, card: f.verified.pan)
            log("→ issuer \(sale.bank)", f.outbound)
            trace.add("switch → issuer \(sale.bank)", f.outbound, spec)
            let response = try self.response(to: sale.message, decided: decision, bank: sale.bank, trace: trace)
            decided.append(DecidedSale(index: f.index, sale: sale, id: f.id, verified: f.verified, prepared: prepared, booking: booking,
                                       decision: decision, response: response, trace: trace, cardReadWithToken: withToken))
        }
        var unread: [Forwarded] = []
        for row in tokens {
            let index = Int(try row.decode(column: "n", as: Int64.self)) - 1
            let sale = sales[index]
            // A sale whose reading or forwarding fails (a PIN block that does not decipher, say)
            // goes the single way, which answers it; the others stay in the batch.
            do {
                guard try !row.decode(column: "recorded", as: Bool.self),
                      case .verified(let verified) = try await tsp.reading(sale.check, row: row, on: db),
                      try await bank(for: verified.pan) == sale.bank else { continue }
                let id = try row.decode(column: "record_id", as: Int64.self)
                guard let forward = try await self.forwarded(sale.request, pan: verified.pan, id: id, bank: sale.bank, clock: sale.clock) else { continue }
                let (input, lookup) = try sale.gateway.prepare(forward)
                let f = Forwarded(index: index, id: id, verified: verified, outbound: forward.message, input: input, lookup: lookup,
                                  day: UTCTime(input.date).isoDate)
                if behind[index] == lookup, f.day == readDays[index], try row.decode(column: "card_id", as: Int64?.self) != nil {
                    try decideForwarded(f, card: row, withToken: true)
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
            LATERAL (SELECT \(IssuerHost.cardRead(hash: "q.hash", day: "q.day", key: "q.key"))) card
            """).all()
        lap("cards")
        for row in cards {
            try decideForwarded(unread[Int(try row.decode(column: "n", as: Int64.self)) - 1], card: row, withToken: false)
        }
        lap("decide")
        return decided
    }

    /// Everything the decided sales write, in one statement that the server commits by itself
    /// (on `db`, a ``Database/session(_:)``): it fails whole (SQLSTATE 40001) unless every sale
    /// was written as decided.
    func write(_ sales: [DecidedSale], on db: any SQLDatabase) async throws {
        let answered = UTCTime(Date()).iso8601
        let tokens = sales.map(\.verified.recordingValues), books = sales.map(\.booking)
        let source: SQLQueryString = """
            WITH s AS (
                SELECT * FROM unnest(
                    \(bind: PostgresArray(sales.map(\.id))), \(bind: PostgresArray(sales.map(\.sale.key))), \(bind: PostgresArray(sales.map(\.sale.request.terminalID))),
                    \(bind: PostgresArray(sales.map(\.sale.request.stan))), \(bind: PostgresArray(sales.map(\.sale.request.pan.lastFour))),
                    \(bind: PostgresArray(sales.map { UTCTime($0.sale.now).iso8601 })), \(bind: PostgresArray(sales.map(\.sale.request.merchantID))),
                    \(bind: PostgresArray(sales.map(\.sale.request.acquirerID))), \(bind: PostgresArray(sales.map { Data(Trace.record($0.trace.lines)) })),
                    \(bind: PostgresArray(tokens.map(\.tokenID))), \(bind: PostgresArray(tokens.map(\.atc))), \(bind: PostgresArray(tokens.map(\.stamp))),
                    \(bind: PostgresArray(tokens.map(\.amountAuthorised))), \(bind: PostgresArray(tokens.map(\.keySequence))),
                    \(bind: PostgresArray(tokens.map(\.keyID))), \(bind: PostgresArray(tokens.map(\.spend))),
                    \(bind: PostgresArray(books.map(\.bank))), \(bind: PostgresArray(books.map(\.idempotencyKey))), \(bind: PostgresArray(books.map(\.card))),
                    \(bind: PostgresArray(books.map(\.amount))), \(bind: PostgresArray(books.map(\.currency))), \(bind: PostgresArray(books.map(\.responseCode))),
                    \(bind: PostgresArray(books.map(\.authCode))), \(bind: PostgresArray(books.map(\.reason))), \(bind: PostgresArray(books.map(\.day))),
                    \(bind: PostgresArray(books.map(\.state))), \(bind: PostgresArray(books.map(\.createdAt))), \(bind: PostgresArray(books.map(\.approved))),
                    \(bind: PostgresArray(books.map(\.account))), \(bind: PostgresArray(books.map(\.balance))), \(bind: PostgresArray(books.map(\.todayTotal))),
                    \(bind: PostgresArray(books.map(\.todayApprovals))), \(bind: PostgresArray(books.map(\.pinBefore))), \(bind: PostgresArray(books.map(\.pinAfter)))
                ) AS s(record_id, request_key, terminal_id, stan, token_last4, requested_at, merchant_id, acquirer_id, trace,
                       token_id, atc, stamp, amount_authorised, key_sequence, key_id, spend,
                       bank_id, idempotency_key, card_id, amount, currency, response_code, auth_code, reason, day, state, created_at, approved,
                       account_id, balance, today_total, today_approvals, pin_before, pin_after)),
            request AS (
                INSERT INTO net_transactions (id, request_key, terminal_id, stan, token_last4, amount, currency, state, reason, created_at,
                    merchant_id, acquirer_id, bank_id, issuer_key, response_code, auth_code, answered_at) OVERRIDING SYSTEM VALUE
                SELECT record_id, request_key, terminal_id, stan, token_last4, amount, currency, state, 'issuer', requested_at,
                    merchant_id, acquirer_id, bank_id, idempotency_key, response_code, auth_code, \(bind: answered) FROM s
                ON CONFLICT (request_key) DO NOTHING RETURNING id),
            trail AS (INSERT INTO net_traces (transaction_id, lines, created_at) SELECT request.id, s.trace, \(bind: answered) FROM request JOIN s ON s.record_id = request.id),
            """
        let statement = source + TokenService.recordingMany(from: "s") + ", " + IssuerHost.bookingMany(from: "s") + """
             SELECT issuer_unchanged((SELECT COUNT(*) FROM request) = \(bind: sales.count) AND \(TokenService.recordedManyCheck(count: sales.count))) AS recorded,
                \(IssuerHost.bookedManyCheck(sales.map(\.prepared)))
            """
        _ = try await db.raw(statement).all()
    }
}
