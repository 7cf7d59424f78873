import ArgumentParser
import CloudWire
import Crypto
import Foundation
import ISO8583
import ISO8583Link
import IssuerHost
import Logging
import LoopExecutor
import NIOCore
import NIOPosix
import PaymentCore
import PaymentCrypto
import Synchronization
import Terminal
import TokenService
import Wallet

struct LoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Drive many POS terminals, each with a phone, against a network: taps over APDUs, 0200s over ISO 8583 links to the switch.",
        discussion: """
            Against a running network (--api and --switch, the credentials read from --data-dir), or one it starts in \
            this process (SQLite in --data-dir, or PostgreSQL with --database). Every terminal gets its own card, \
            enrolled through the HTTP API as a bank app would (one-time code from the SMS outbox), and a phone that \
            fetches its card and keys and replenishes when low. The terminals run for --duration; a POS that gets no \
            answer reverses, and keeps the reversal until the network takes it. At the end: throughput, the latency \
            histogram of whole sales (tap to answer), the same for their online part (0200 sent to 0210 heard) and the \
            books. --journal writes one JSON line per approval a POS saw; --latencies one CSV line per measured sale.
            """)

    @Option(help: "Simulated terminals, each with its own link and phone.") var terminals = 8
    @Option(help: "Seconds to run, after the warm-up.") var duration = 10.0
    @Option(help: "Seconds of sales before the measured run: made and journalled like the others, but not in the figures (connections, prepared statements and caches warm up).") var warmup = 2.0
    @Option(help: "HTTP API of a running network, e.g. http://127.0.0.1:8080 (default: start a network in this process).") var api: String?
    @Option(name: .customLong("switch"), help: "Switch of a running network, host:port; several, comma-separated, share the terminals.") var switchAddress: String?
    @Option(help: "Data directory: the running network's (for its credentials.json) or the new one's (default: a new temporary one).") var dataDir: String?
    @Option(help: "postgres://… to run the in-process network on PostgreSQL.") var database: String?
    @Option(help: "Target rate in sales per second across all terminals (0: as fast as they go).") var rate = 0.0
    @Option(help: "Write one JSON line per approval a POS saw (terminal, STAN, transmission time, approval code, amount).") var journal: String?
    @Option(help: "Write one CSV line per measured approved sale: when it started (ms into the measured run), terminal, tap to answer and 0200 to 0210 (ms).") var latencies: String?
    @Option(help: "Threads the simulated terminals and phones run on, apart from the network's (one has room for about 4,000 sales a second here).") var deviceThreads = 1

    func validate() throws {
        if (api == nil) != (switchAddress == nil) { throw ValidationError("--api and --switch go together (a running network), or neither (start one)") }
        if api != nil, dataDir == nil { throw ValidationError("--data-dir names the running network's data directory (its credentials.json)") }
        if deviceThreads < 1 { throw ValidationError("--device-threads is at least 1") }
    }

    func run() throws {
        Telemetry.tuneAllocator()
        let options = self
        try blockingAsync { () async throws -> Void in try await options.load() }
    }

    func load() async throws {
        let terminals = max(1, self.terminals)
        let terminalIDs = (1...terminals).map { String(format: "LOAD%04d", $0) }
        var network: LoadNetwork
        if let api, let switchAddress {
            network = try LoadNetwork.running(api: api, switchAddress: switchAddress, dataDirectory: dataDir!)
        } else {
            network = try await LoadNetwork.start(dataDirectory: dataDir, database: database, terminals: terminalIDs)
        }
        print("network: API \(network.api.absoluteString), switch \(network.switches.map { "\($0.host):\($0.port)" }.joined(separator: ", "))\(network.local == nil ? "" : network.database == nil ? ", SQLite in \(network.dataDirectory)" : ", PostgreSQL")")
        let journal = try self.journal.map { try Journal(path: $0) }
        // The simulated devices (the POS terminals' links and lanes, the phones' HTTP) on threads
        // of their own, as they would be on machines of their own: a lane's tap does not hold up
        // the network's event loops, where its links and database connections are served. One
        // thread by default: on this 2-core machine the devices need half a core at full load,
        // and with a thread a core a PostgreSQL full load ran about 3 % slower, the lanes on the
        // network's own loops about 6 % (docs/benchmarks.md).
        let devices = MultiThreadedEventLoopGroup(numberOfThreads: deviceThreads)
        defer { devices.shutdownGracefully { _ in } }
        let lanes: [LoadLane]
        do {
            lanes = try await network.prepare(terminals: terminalIDs, on: devices)
        } catch {
            await network.stop()
            throw error
        }
        let warmup = max(0, self.warmup)
        print("\(terminals) terminals, each with a phone and its own card (enrolled over the API); \(warmup > 0 ? "warming up \(warmup.formatted()) s, then " : "")running \(Int(duration)) s…")
        let results = LoadResults()
        if let latencies {
            guard FileManager.default.createFile(atPath: latencies, contents: nil) else { throw ToolError("cannot write \(latencies)") }
        }
        let measured = ContinuousClock.now + .seconds(warmup)
        let deadline = measured + .seconds(duration)
        let interval: Duration? = rate > 0 ? .seconds(Double(terminals) / rate) : nil
        let progress = Task {
            // On a terminal one line redrawn in place; piped, a line a second.
            let inPlace = isatty(STDOUT_FILENO) == 1
            var last = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                let now = ContinuousClock.now
                let line: String
                if now < measured {
                    line = "  warming up, \(results.failures) failed"
                } else {
                    let done = results.count
                    line = "  " + LoadResults.bar(elapsed: now - measured, of: .seconds(duration))
                        + " \(done) sales, \(done - last)/s, \(results.failures) failed"
                    last = done
                }
                if inPlace {
                    print("\r" + line + "\u{1B}[K", terminator: "")
                    fflush(nil)
                } else {
                    print(line)
                }
            }
            if inPlace { print("") }
        }
        await withTaskGroup(of: Void.self) { group in
            for (i, lane) in lanes.enumerated() {
                // Each lane runs on its link's event loop: the tap, the 0200 written and the 0210
                // read on one thread, without waking a pool thread for each step (a load run at
                // 865/s: 8.0 → 4.6 context switches a sale in this process, its CPU a sale −7 %).
                let loop = lane.host.link.loop
                group.addTask(executorPreference: EventLoopTaskExecutor(loop)) {
                    // Lanes start staggered across one interval, so arrivals are spread, not in bursts.
                    var next = ContinuousClock.now + (interval.map { $0 * Double(i) / Double(lanes.count) } ?? .zero)
                    if interval != nil { await LoadNetwork.sleep(until: next, on: loop) }
                    // Phones that started together stay in step: each would run out of keys and
                    // replenish at the same sale as the others, all at once. Independent phones
                    // are not in step, so in the warm-up each lane first makes a random number of
                    // sales (up to about one replenishment cycle), unthrottled.
                    var outOfStep = warmup > 0 ? Int.random(in: 0..<LoadLane.salesPerReplenishment) : 0
                    while ContinuousClock.now < deadline {
                        await lane.upkeep()
                        let start = ContinuousClock.now
                        let result = await lane.pos.sale(amount: Amount(minorUnits: 1000, currency: .cny), over: lane.transport)
                        let elapsed = ContinuousClock.now - start
                        if case .approved(let code) = result.outcome, let request = result.request {
                            if start >= measured { results.add(elapsed, online: lane.host.last, at: start - measured, terminal: i) }
                            journal?.approved(terminal: request.terminalID, stan: request.stan, time: request.transmissionDateTime, code: code,
                                              amount: request.amount.minorUnits)
                        } else {
                            results.fail(LoadResults.reason(result.outcome))
                            // A network that is not answering is not hammered.
                            if case .noAnswer = result.outcome { try? await Task.sleep(for: .milliseconds(200)) }
                        }
                        if outOfStep > 0 {
                            outOfStep -= 1
                            next = ContinuousClock.now
                        } else if let interval {
                            next += interval
                            await LoadNetwork.sleep(until: next, on: loop)
                        }
                    }
                }
            }
        }
        progress.cancel()
        await progress.value
        // Reversals still held by a POS go out before the books are read.
        var left = 0
        let drainDeadline = ContinuousClock.now + .seconds(60)
        repeat {
            left = 0
            for lane in lanes { left += await lane.pos.retryReversals() }
            if left > 0 { try? await Task.sleep(for: .milliseconds(500)) }
        } while left > 0 && ContinuousClock.now < drainDeadline
        for lane in lanes { await lane.host.link.shutdown() }
        // The phones' connections to the API (one transport for all of them).
        if let http = lanes.first?.cloud.transport as? KeepAliveHTTPTransport { await http.close() }
        try journal?.close()
        results.report(seconds: duration)
        if let latencies { try results.writeLatencies(to: latencies, terminals: lanes.map(\.terminalID)) }
        if left > 0 { print("reversals not delivered: \(left)") }
        let books = try? await network.books()
        await network.stop()
        if let books { print("books: trial balance \(books.trialBalance), accounts disagreeing with the ledger: \(books.mismatches)") }
    }
}

/// The network a load run drives: one it started in this process, or one already running.
struct LoadNetwork {
    var local: LocalNetwork?
    var api: URL
    /// The switches; terminals are spread over them in turn.
    var switches: [(host: String, port: Int)]
    var credentials: NodeCredentials
    var dataDirectory: String
    var database: String?

    /// Waits until `deadline` on `loop`'s own timer, for a task that prefers `loop`: the loop
    /// wakes itself and goes on with the task. `Task.sleep` would wake a thread of Swift's global
    /// executor at the deadline, which then hands the task back to the loop: two wake-ups a
    /// paced sale, where this is one.
    static func sleep(until deadline: ContinuousClock.Instant, on loop: any EventLoop) async {
        let delay = deadline - .now
        guard delay > .zero else { return }
        try? await loop.scheduleTask(in: TimeAmount(delay)) {}.futureResult.get()
    }

    static func running(api: String, switchAddress: String, dataDirectory: String) throws -> LoadNetwork {
        let switches = try switchAddress.split(separator: ",").map { address -> (host: String, port: Int) in
            let target = try HostPort(address, what: "--switch")
            return (target.host, target.port)
        }
        guard let url = URL(string: api), !switches.isEmpty else { throw ToolError("--api is a URL and --switch is host:port") }
        return LoadNetwork(api: url, switches: switches, credentials: try NodeCredentials.read(from: dataDirectory), dataDirectory: dataDirectory)
    }

    static func start(dataDirectory: String?, database: String?, terminals: [String]) async throws -> LoadNetwork {
        var configuration = NodeConfiguration()
        configuration.dataDirectory = dataDirectory ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("cloudtap-load-\(UUID().uuidString.prefix(8))")
        configuration.database = database
        configuration.switchPort = 0
        configuration.httpPort = 0
        configuration.terminals = terminals
        var logger = Logger(label: "cloudtap")
        logger.logLevel = Logger.Level(rawValue: ProcessInfo.processInfo.environment["CLOUDTAP_LOG_LEVEL"] ?? "") ?? .critical
        let local = try await Node.startLocal(configuration, logger: logger)
        return LoadNetwork(local: local, api: URL(string: "http://127.0.0.1:\(local.httpPort)")!, switches: [("127.0.0.1", local.switchPort)],
                           credentials: local.node.credentials, dataDirectory: configuration.dataDirectory, database: database)
    }

    func stop() async { await local?.stop() }

    func books() async throws -> (trialBalance: Int64, mismatches: Int) {
        let books = try await DemoHTTP(base: api).call("GET", "/v1/operator/books", auth: credentials.operatorKey)
        return (Int64(books["trialBalance"] as? Int ?? -1), (books["mismatchedAccounts"] as? [Any])?.count ?? -1)
    }

    /// A card, an active token and a provisioned phone per terminal, all through the HTTP API
    /// (operator: account and card; bank app: enrollment and one-time code; phone: its profile
    /// and keys), and a link per terminal to the switch.
    func prepare(terminals: [String], on devices: any EventLoopGroup) async throws -> [LoadLane] {
        let http = DemoHTTP(base: api)
        let requestor = credentials.requestorKeys.keys.sorted().first ?? "WALLET00001"
        let requestorKey = credentials.requestorKeys[requestor] ?? ""
        // The phones share keep-alive connections: URLSession's machinery on Linux woke its
        // threads about twenty times a sale (docs/benchmarks.md). An https:// API (`serve` with
        // TLS) goes through URLSession, which speaks TLS.
        let transport: any HTTPTransport = api.scheme == "http" ? try KeepAliveHTTPTransport(baseURL: api, group: devices) : URLSessionTransport(HTTPCloudConnection.uncached)
        let cloud = HTTPCloudConnection(baseURL: api, requestorID: requestor, apiKey: requestorKey, transport: transport)
        var lanes: [LoadLane] = []
        for (i, terminal) in terminals.enumerated() {
            let account = try await http.call("POST", "/v1/operator/banks/BANKA/accounts", auth: credentials.operatorKey,
                                              body: ["product": "debit", "openingBalance": 1_000_000_000_000])
            let body = "621022" + String(format: "%06d%06d", Int.random(in: 0..<1_000_000), Int.random(in: 0..<1_000_000))
            let pan = body + String(Luhn.checkDigit(for: body))
            let mobile = String(format: "139%08d", Int.random(in: 0..<100_000_000))
            // A card without a PIN: the load's sales stay under the no-PIN limit.
            _ = try await http.call("POST", "/v1/operator/banks/BANKA/cards", auth: credentials.operatorKey, body: [
                "accountId": account["id"] as? Int ?? 0, "pan": pan, "expiry": "3012", "holderName": "LOAD \(i + 1)", "mobile": mobile,
                "perTransactionLimit": 500_000, "dailyLimit": 1_000_000_000_000, "dailyCountLimit": 100_000_000,
            ])
            let phone = try Wallet(store: MemorySecureStore(), deviceID: "load-\(terminal)-\(UUID().uuidString.prefix(8))")
            let enrollment = try await http.call("POST", "/v1/enrollments", auth: requestorKey, requestor: requestor, body: [
                "pan": pan, "expiry": "3012", "holderName": "LOAD \(i + 1)", "deviceId": phone.deviceID,
                "devicePublicKey": phone.devicePublicKey.x963Representation.base64EncodedString(),
            ])
            let outbox = try await http.call("GET", "/v1/operator/sms?mobileEndsWith=\(mobile.suffix(4))", auth: credentials.operatorKey)
            let sms = (outbox["messages"] as? [[String: Any]])?.last?["text"] as? String ?? ""
            let token = try await http.call("POST", "/v1/enrollments/\(enrollment["enrollmentId"] ?? 0)/otp", auth: requestorKey, requestor: requestor,
                                            body: ["code": Demo.oneTimeCode(in: sms)])
            let tokenID = Int64(token["id"] as? Int ?? 0)
            _ = try await phone.provision(cardID: "card", tokenID: tokenID, from: cloud)
            _ = try await phone.replenishIfNeeded(cardID: "card", from: cloud, force: true)
            let target = switches[i % switches.count]
            let link = try Demo.terminalLink(host: target.host, port: target.port, terminalID: terminal, maximumBackoff: .seconds(1), group: devices)
            let merchant = MerchantTerminal(terminalID: terminal, merchantID: String(format: "LOADMERCH%06d", i + 1), acquirerID: "01020000",
                                            merchantNameLocation: "CLOUDTAP LOAD")
            let host = TimedHost(link)
            let pos = PointOfSale(configuration: TerminalConfiguration(), merchant: merchant, pinPad: nil, host: host,
                                  firstSTAN: UInt32.random(in: 1...900_000))
            let applet = SharedCardApplet(phone.applet())
            lanes.append(LoadLane(terminalID: terminal, pos: pos, transport: InProcessTransport { applet.process($0) }, host: host,
                                  phone: phone, cloud: cloud))
        }
        return lanes
    }
}

/// One terminal of a load run: its POS, the phone held to it, the link to the switch.
struct LoadLane: Sendable {
    let terminalID: String
    let pos: PointOfSale
    let transport: InProcessTransport
    /// The link to the switch as the POS sends over it, timing each exchange.
    let host: TimedHost
    let phone: Wallet
    let cloud: HTTPCloudConnection

    /// About how many sales a phone makes between replenishments (five keys of ten uses, topped
    /// up when fewer than two are left).
    static let salesPerReplenishment = 40

    /// Between sales: reversals the network has not taken yet, and the phone's keys when low
    /// (a failed replenishment is tried again before the next sale).
    func upkeep() async {
        if await !pos.pendingReversals.isEmpty { await pos.retryReversals() }
        if phone.needsReplenishment(cardID: "card") { _ = try? await phone.replenishIfNeeded(cardID: "card", from: cloud) }
    }
}

/// A POS's link that keeps how long its last exchange took, from the request handed to the link
/// to the matching response (the online part of a sale: both links' framing, the switch, the
/// token service, the issuer and the database).
final class TimedHost: AuthorizationHost {
    let link: ISO8583Client
    private let lastExchange = Mutex<Duration>(.zero)

    init(_ link: ISO8583Client) { self.link = link }

    func send(_ request: Message) async throws -> Message {
        let start = ContinuousClock.now
        defer { let took = ContinuousClock.now - start; lastExchange.withLock { $0 = took } }
        return try await link.send(request)
    }

    /// The last exchange's duration (a lane sends one request at a time).
    var last: Duration { lastExchange.withLock { $0 } }
}

/// Approvals the POS saw, one JSON line each, written as they happen.
final class Journal: @unchecked Sendable {
    private let lock = NSLock()
    private let handle: FileHandle

    init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else { throw ToolError("cannot write \(path)") }
        self.handle = handle
    }

    func approved(terminal: String, stan: String, time: String, code: String, amount: Int64) {
        let line = "{\"terminal\":\"\(terminal)\",\"stan\":\"\(stan)\",\"time\":\"\(time)\",\"code\":\"\(code)\",\"amount\":\(amount)}\n"
        lock.withLock { handle.write(Data(line.utf8)) }
    }

    func close() throws { try lock.withLock { try handle.close() } }
}

/// Latencies of approved sales and the failures, from many tasks.
final class LoadResults: @unchecked Sendable {
    /// A measured sale: when it started (after the measured run's start), its terminal (lane),
    /// tap to answer, and its online part.
    struct Sale {
        let at: Duration
        let terminal: Int
        let whole: Duration
        let online: Duration
    }

    private let lock = NSLock()
    private var sales: [Sale] = []
    private var failed: [String: Int] = [:]

    func add(_ d: Duration, online: Duration, at: Duration, terminal: Int) {
        lock.withLock { sales.append(Sale(at: at, terminal: terminal, whole: d, online: online)) }
    }
    func fail(_ why: String) { lock.withLock { failed[why, default: 0] += 1 } }
    var count: Int { lock.withLock { sales.count } }
    var failures: Int { lock.withLock { failed.values.reduce(0, +) } }

    /// The failure's kind, without the per-sale details, so the report groups them.
    static func reason(_ outcome: SaleOutcome) -> String {
        switch outcome {
        case .declined(let code): "declined \(code)"
        case .declinedOffline(let reason): "declined offline: \(reason)"
        case .noAnswer(let reason): reason.hasPrefix("no answer") ? "no answer from the network" : reason
        default: "\(outcome)"
        }
    }

    /// `[█████·····] 5/10 s`: how far a run has gone.
    static func bar(elapsed: Duration, of total: Duration, width: Int = 20) -> String {
        let seconds = { (d: Duration) in Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        let fraction = min(1, max(0, seconds(elapsed) / max(seconds(total), 0.001)))
        let filled = Int((fraction * Double(width)).rounded())
        return "[" + String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled) + "] "
            + "\(Int(min(seconds(elapsed), seconds(total)).rounded()))/\(Int(seconds(total).rounded())) s"
    }

    func report(seconds: Double) {
        let sorted = lock.withLock { sales.map(\.whole) }.sorted()
        guard !sorted.isEmpty else {
            print("no approved sales")
            for (why, n) in lock.withLock({ failed }) { print("  failed \(n)×: \(why)") }
            return
        }
        func ms(_ d: Duration) -> Double { d.milliseconds }
        func at(_ q: Double) -> Double { sorted.nearestRank(q)!.milliseconds }
        print(String(format: "approved sales: %d in %.0f s = %.1f/s; failed: %d", sorted.count, seconds, Double(sorted.count) / seconds, failures))
        print(String(format: "latency (tap to answer): p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms",
                     at(0.5), at(0.9), at(0.99), at(0.999), ms(sorted.last!)))
        let online = lock.withLock { sales.map(\.online) }.sorted()
        func onlineAt(_ q: Double) -> Double { online.nearestRank(q)!.milliseconds }
        print(String(format: "  of which online (0200 sent to 0210 heard): p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms",
                     onlineAt(0.5), onlineAt(0.9), onlineAt(0.99), onlineAt(0.999), ms(online.last!)))
        // A histogram on a log scale.
        let buckets: [Double] = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
        var counts = [Int](repeating: 0, count: buckets.count + 1)
        for d in sorted { counts[buckets.firstIndex { ms(d) <= $0 } ?? buckets.count] += 1 }
        let widest = counts.max() ?? 1
        for (i, n) in counts.enumerated() where n > 0 {
            let label = i < buckets.count ? String(format: "≤ %6.1f ms", buckets[i]) : "  > 1 s    "
            print("  \(label) \(String(repeating: "█", count: max(1, n * 40 / widest))) \(n)")
        }
        for (why, n) in lock.withLock({ failed }) { print("  failed \(n)×: \(why)") }
    }

    /// The measured sales as CSV, in the order they started.
    func writeLatencies(to path: String, terminals: [String]) throws {
        func ms(_ d: Duration) -> String {
            String(format: "%.3f", d.milliseconds)
        }
        var text = "started_ms,terminal,tap_to_answer_ms,online_ms\n"
        for sale in lock.withLock({ sales }).sorted(by: { $0.at < $1.at }) {
            text += "\(ms(sale.at)),\(terminals[sale.terminal]),\(ms(sale.whole)),\(ms(sale.online))\n"
        }
        do { try Data(text.utf8).write(to: URL(fileURLWithPath: path)) } catch { throw ToolError("cannot write \(path): \(error)") }
    }
}
