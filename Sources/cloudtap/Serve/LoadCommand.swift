import ArgumentParser
import CloudWire
import Crypto
import Foundation
import ISO8583Link
import IssuerHost
import Logging
import PaymentCore
import PaymentCrypto
import Terminal
import TokenService
import Wallet

struct LoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Drive many POS terminals, each with a phone, against a network: taps over APDUs, 0200s over ISO 8583 links to the switch.",
        discussion: """
            Starts a network in this process (like `demo`, on loopback ports, SQLite in --data-dir or PostgreSQL with \
            --database), gives every terminal its own card, token and phone, then runs the terminals for --duration and \
            prints throughput and the latency histogram of whole sales (tap to answer).
            """)

    @Option(help: "Simulated terminals, each with its own link and phone.") var terminals = 8
    @Option(help: "Seconds to run.") var duration = 10.0
    @Option(help: "Data directory (default: a new temporary one).") var dataDir: String?
    @Option(help: "postgres://… to run the network on PostgreSQL.") var database: String?
    @Option(help: "Target rate in sales per second across all terminals (0: as fast as they go).") var rate = 0.0

    func run() throws {
        let dir = dataDir ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("cloudtap-load-\(UUID().uuidString.prefix(8))")
        let terminals = max(1, self.terminals), duration = self.duration, database = self.database, rate = self.rate
        try blockingAsync { () async throws -> Void in
            var configuration = NodeConfiguration()
            configuration.dataDirectory = dir
            configuration.database = database
            configuration.switchPort = 0
            configuration.httpPort = 0
            configuration.terminals = (1...terminals).map { String(format: "LOAD%04d", $0) }
            var logger = Logger(label: "cloudtap")
            logger.logLevel = Logger.Level(rawValue: ProcessInfo.processInfo.environment["CLOUDTAP_LOG_LEVEL"] ?? "") ?? .critical
            let node = try await Node.open(configuration, logger: logger)
            let port = try await node.startSwitch()
            print("network: switch on 127.0.0.1:\(port), \(database == nil ? "SQLite in \(dir)" : "PostgreSQL")")
            let lanes = try await Self.prepare(node: node, terminals: configuration.terminals, port: port)
            print("\(terminals) terminals, each with a phone and its own card; running \(Int(duration)) s…")
            let results = LoadResults()
            let deadline = ContinuousClock.now + .seconds(duration)
            let interval: Duration? = rate > 0 ? .seconds(Double(terminals) / rate) : nil
            let progress = Task {
                var last = 0
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    let done = results.count
                    print("  \(done) sales, \(done - last)/s, \(results.failures) failed")
                    last = done
                }
            }
            await withTaskGroup(of: Void.self) { group in
                for (i, lane) in lanes.enumerated() {
                    group.addTask {
                        // Lanes start staggered across one interval, so arrivals are spread, not in bursts.
                        var next = ContinuousClock.now + (interval.map { $0 * Double(i) / Double(lanes.count) } ?? .zero)
                        if interval != nil { try? await Task.sleep(until: next) }
                        while ContinuousClock.now < deadline {
                            let start = ContinuousClock.now
                            let result = await lane.pos.sale(amount: Amount(minorUnits: 1000, currency: .cny), over: lane.transport)
                            let elapsed = ContinuousClock.now - start
                            if case .approved = result.outcome { results.add(elapsed) } else { results.fail("\(result.outcome)") }
                            if let interval {
                                next += interval
                                if next > ContinuousClock.now { try? await Task.sleep(until: next) }
                            }
                        }
                    }
                }
            }
            progress.cancel()
            for lane in lanes { await lane.link.shutdown() }
            let trial = try await node.issuer.trialBalance()
            await node.shutdown()
            results.report(seconds: duration)
            print("books: trial balance \(trial)")
        }
    }

    struct Lane: Sendable {
        let pos: PointOfSale
        let transport: InProcessTransport
        let link: ISO8583Client
    }

    /// A card, an active token and a provisioned phone per terminal, made directly in the
    /// services (enrollment over HTTP is `demo`'s part), and a link to the switch.
    static func prepare(node: Node, terminals: [String], port: Int) async throws -> [Lane] {
        let zpk = try clearZPK(node)
        var lanes: [Lane] = []
        for (i, terminal) in terminals.enumerated() {
            let body = String(format: "62102299%010d", i + 1)
            let pan = try PAN(body + String(Luhn.checkDigit(for: body)))
            let account = try await node.issuer.openAccount(bank: "BANKA", product: .debit, openingBalance: 1_000_000_000_000)
            _ = try await node.issuer.issueCard(bank: "BANKA", account: account, pan: pan, expiry: "3012", product: .debit, holderName: "LOAD \(i)",
                                                mobile: "13800000000", pinBlock: try ISO9564.encipher(PINBlock.encode(pin: "1234", format: .iso0, pan: pan), key: zpk, pan: pan),
                                                limits: CardLimits(perTransaction: 500_000, daily: 1_000_000_000_000, dailyCount: 100_000_000))
            let phone = try Wallet(store: MemorySecureStore(), deviceID: "load-phone-\(i)")
            let stored = try await node.tsp.storeCard(pan, expiry: "3012", bank: "BANKA")
            let (token, _) = try await node.tsp.issueToken(vaultID: stored.vaultID, requestor: "WALLET00001", device: phone.deviceID)
            try await node.tsp.bindDevice(tokenID: token.id, publicKey: phone.devicePublicKey)
            try await node.tsp.change(tokenID: token.id, .activate, actor: .issuer, reason: .issuer)
            try phone.addCloudCard(id: "card", sealedProfile: try await node.tsp.sealedTokenProfile(tokenID: token.id))
            let keys = try await node.tsp.issueKeys(tokenID: token.id, count: 1, limits: LimitedUseKeyLimits(maxTransactions: 1_000_000, maxCumulativeAmount: Int64.max / 4))
            try phone.addKeys(cardID: "card", keys.map { Wallet.SealedKey(index: $0.index, sealedKey: $0.sealedKey, limits: $0.limits) })
            let link = try Demo.terminalLink(port: port, terminalID: terminal)
            let merchant = MerchantTerminal(terminalID: terminal, merchantID: String(format: "LOADMERCH%06d", i + 1), acquirerID: "01020000",
                                            merchantNameLocation: "CLOUDTAP LOAD")
            let pos = PointOfSale(configuration: TerminalConfiguration(), merchant: merchant, pinPad: nil, host: link)
            let applet = SharedCardApplet(phone.applet())
            lanes.append(Lane(pos: pos, transport: InProcessTransport { applet.process($0) }, link: link))
        }
        return lanes
    }

    /// Bank A's zone PIN key, exported under a one-off key, to make the load cards' PIN blocks.
    static func clearZPK(_ node: Node) throws -> [UInt8] {
        let kek = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let name = "load-kek-\(UUID().uuidString.prefix(8))"
        _ = try node.hsm.importClearKey(name: name, usage: .keyEncryption, algorithm: .aes, key: kek)
        return try TR31.unwrap(try node.hsm.exportKeyBlock(name: "BANKA/zpk", kekName: name), kbpk: kek).key
    }
}

/// Latencies of approved sales and the failures, from many tasks.
final class LoadResults: @unchecked Sendable {
    private let lock = NSLock()
    private var latencies: [Duration] = []
    private var failed: [String: Int] = [:]

    func add(_ d: Duration) { lock.withLock { latencies.append(d) } }
    func fail(_ why: String) { lock.withLock { failed[why, default: 0] += 1 } }
    var count: Int { lock.withLock { latencies.count } }
    var failures: Int { lock.withLock { failed.values.reduce(0, +) } }

    func report(seconds: Double) {
        let sorted = lock.withLock { latencies.sorted() }
        guard !sorted.isEmpty else {
            print("no approved sales")
            for (why, n) in lock.withLock({ failed }) { print("  failed \(n)×: \(why)") }
            return
        }
        func ms(_ d: Duration) -> Double { Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15 }
        func at(_ q: Double) -> Double { ms(sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))]) }
        print(String(format: "approved sales: %d in %.0f s = %.1f/s; failed: %d", sorted.count, seconds, Double(sorted.count) / seconds, failures))
        print(String(format: "latency (tap to answer): p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms",
                     at(0.5), at(0.9), at(0.99), at(0.999), ms(sorted.last!)))
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
}
