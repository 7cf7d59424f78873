import ArgumentParser
import Foundation
import Logging
import Server

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the network: switch (ISO 8583), token service, issuer banks, HTTP API and console — in one process, or one part per process.",
        discussion: """
            With no --config the defaults run two test banks with a card each, one terminal and one wallet, on an SQLite \
            file in --data-dir. The first start writes the master key, the key blocks and the credentials it issued \
            (operator key, API keys, terminal PIN keys) to owner-only files there.

            --role runs one part: `switch` (the terminals' ISO 8583 listener; issuers in process, or over ISO 8583 at \
            --issuer-address), `issuer` (the banks' hosts behind a network-dialect listener on --issuer-port), `tsp` (the \
            token service's HTTP API for wallets and banks), `api` (the whole HTTP API and the console). Parts share the \
            database (PostgreSQL for several processes) and the data directory (the key component's files); start one \
            process first, it provisions the defaults. Every role serves /health and /metrics (Prometheus) over HTTP. \
            SIGTERM or SIGINT shuts down gracefully: listeners close, requests in flight are answered, the database closes.
            """)

    enum Role: String, ExpressibleByArgument, CaseIterable { case all, `switch`, tsp, issuer, api }

    @Option(help: "A JSON configuration (banks, ranges, cards, terminals, requestors, ports).") var config: String?
    @Option(help: "Data directory (overrides the configuration's).") var dataDir: String?
    @Option(help: "postgres://… to use PostgreSQL instead of the SQLite file.") var database: String?
    @Option(help: "The part to run: all, switch, tsp, issuer, api.") var role: Role = .all
    @Option(help: "HTTP port (API and console; /health and /metrics in every role).") var httpPort: Int?
    @Option(help: "Switch port (terminal dialect, 2-byte length framing).") var switchPort: Int?
    @Option(help: "Issuer hosts' port for --role issuer (network dialect, 46-byte header).") var issuerPort: Int?
    @Option(help: "host:port of the issuer hosts (--role issuer) for the switch; default: in process.") var issuerAddress: String?
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "info"
    @Option(help: "Log format: text or json (one object per line).") var logFormat = "text"

    func validate() throws {
        guard ["text", "json"].contains(logFormat) else { throw ValidationError("--log-format is text or json") }
    }

    func run() throws {
        Telemetry.tuneAllocator()
        var configuration = try NodeConfiguration.load(config)
        if let dataDir { configuration.dataDirectory = dataDir }
        if let database { configuration.database = database }
        if let httpPort { configuration.httpPort = httpPort }
        if let switchPort { configuration.switchPort = switchPort }
        if let issuerPort { configuration.issuerPort = issuerPort }
        if let issuerAddress { configuration.issuerAddress = issuerAddress }
        let level = Logger.Level(rawValue: logLevel) ?? .info
        Telemetry.bootstrapLogging(json: logFormat == "json", level: level)
        Telemetry.bootstrapMetrics()
        var logger = Logger(label: "cloudtap")
        logger.logLevel = level
        let settings = configuration, log = logger, role = self.role
        try blockingAsync { () async throws -> Void in
            let node = try await Node.open(settings, logger: log)
            var listening: [String] = []
            if role == .all || role == .switch { listening.append("switch on \(settings.httpHost):\(try await node.startSwitch())") }
            if role == .issuer { listening.append("issuer hosts on \(settings.httpHost):\(try await node.startIssuer())") }
            let parts: CloudAPI.Parts = switch role {
            case .all, .api: .all
            case .tsp: .tokenService
            case .switch, .issuer: []
            }
            let listeners = listening.map { ", \($0)" }.joined()
            let app = try node.application(parts: parts, metrics: Telemetry.metricsText) { port in
                Self.say("cloudtap serve (\(role.rawValue)): HTTP on http://\(settings.httpHost):\(port)" + listeners)
                Self.say("credentials: \((settings.dataDirectory as NSString).appendingPathComponent("credentials.json"))")
                if parts.contains(.console), let link = node.api.console?.signInPath() {
                    Self.say("console (one-time sign-in link, 5 minutes): http://\(settings.httpHost):\(port)\(link)")
                }
            }
            // Stand-in approvals owe their issuers an advice: delivered while the switch runs.
            let advices = role == .all || role == .switch ? Task { await node.network.runAdvices() } : nil
            do {
                try await app.runService()
            } catch {
                advices?.cancel()
                await node.shutdown()
                throw error
            }
            advices?.cancel()
            await advices?.value
            log.info("shutting down: listeners closed, waiting for requests in flight")
            await node.shutdown()
        }
    }

    /// A line to standard output at once (unbuffered: a log file or pipe sees it as it happens).
    static func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
}
