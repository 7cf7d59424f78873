import ArgumentParser
import Foundation
import Logging
import Switch

struct SettleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "settle",
        abstract: "End of day on a `serve` data directory: clear approved, unreversed transactions up to the cut-off and print the settlement.",
        discussion: "Prints the banks' net positions and the merchant settlement file as CSV, or the whole report as JSON with --json.")

    @Option(help: "Data directory of the network.") var dataDir = "cloudtap-data"
    @Option(help: "postgres://… when the network runs on PostgreSQL.") var database: String?
    @Option(help: "Write the merchant settlement file (CSV) here.") var merchantFile: String?
    @Flag(help: "Print the report as JSON.") var json = false

    func run() throws {
        var configuration = NodeConfiguration()
        configuration.dataDirectory = dataDir
        configuration.database = database
        var logger = Logger(label: "cloudtap")
        logger.logLevel = .warning
        let settings = configuration, log = logger, json = self.json, merchantFile = self.merchantFile
        try blockingAsync { () async throws -> Void in
            let node = try await Node.open(settings, logger: log)
            do {
                let report = try await Settlement(database: node.db, issuerHost: node.issuer).run()
                if let merchantFile { try report.merchantCSV.write(toFile: merchantFile, atomically: true, encoding: .utf8) }
                if json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                    print(String(decoding: try encoder.encode(report), as: UTF8.self))
                } else {
                    print("batch \(report.batch), cut-off \(report.cutoff): \(report.transactions) transactions, total \(report.total) (minor units)")
                    print(report.positionsCSV + report.merchantCSV, terminator: "")
                    print("network income \(report.networkIncome); balances: \(report.balances)")
                }
            } catch {
                await node.shutdown()
                throw error
            }
            await node.shutdown()
        }
    }
}
