import ArgumentParser
import Foundation
import Logging

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the whole network in one process: switch (ISO 8583), token service, issuer banks and the HTTP API.",
        discussion: """
            With no --config the defaults run two test banks with a card each, one terminal and one wallet, on an SQLite \
            file in --data-dir. The first start writes the master key, the key blocks and the credentials it issued \
            (operator key, API keys, terminal PIN keys) to owner-only files there.
            """)

    @Option(help: "A JSON configuration (banks, ranges, cards, terminals, requestors, ports).") var config: String?
    @Option(help: "Data directory (overrides the configuration's).") var dataDir: String?
    @Option(help: "postgres://… to use PostgreSQL instead of the SQLite file.") var database: String?
    @Option(help: "HTTP API port (loopback).") var httpPort: Int?
    @Option(help: "Switch port (terminal dialect, 2-byte length framing).") var switchPort: Int?
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "info"

    func run() throws {
        var configuration = try NodeConfiguration.load(config)
        if let dataDir { configuration.dataDirectory = dataDir }
        if let database { configuration.database = database }
        if let httpPort { configuration.httpPort = httpPort }
        if let switchPort { configuration.switchPort = switchPort }
        var logger = Logger(label: "cloudtap")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let settings = configuration, log = logger
        try blockingAsync { () async throws -> Void in
            let node = try await Node.open(settings, logger: log)
            let switchPort = try await node.startSwitch()
            let app = try node.application { port in
                Self.say("cloudtap serve: HTTP API on http://\(settings.httpHost):\(port), switch on \(settings.httpHost):\(switchPort)")
                Self.say("credentials: \((settings.dataDirectory as NSString).appendingPathComponent("credentials.json"))")
                if let link = node.api.console?.signInPath() { Self.say("console (one-time sign-in link, 5 minutes): http://\(settings.httpHost):\(port)\(link)") }
            }
            do {
                try await app.runService()
            } catch {
                await node.shutdown()
                throw error
            }
            await node.shutdown()
        }
    }

    /// A line to standard output at once (unbuffered: a log file or pipe sees it as it happens).
    static func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
}
