import ArgumentParser
import Foundation
import Switch

struct SettleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "settle",
        abstract: "End of day on a `serve` data directory: clear approved, unreversed transactions up to the cut-off and print the settlement.",
        discussion: "Prints the banks' net positions and the merchant settlement file as CSV, or the whole report as JSON with --json.")

    @OptionGroup var network: NodeOptions
    @Option(help: "Write the merchant settlement file (CSV) here.") var merchantFile: String?
    @Flag(help: "Print the report as JSON.") var json = false

    func run() throws {
        let json = self.json, merchantFile = self.merchantFile
        try network.withNode { node in
            let report = try await Settlement(database: node.db, issuerHost: node.issuer).run()
            if let merchantFile { try report.merchantCSV.write(toFile: merchantFile, atomically: true, encoding: .utf8) }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            } else {
                print("batch \(report.batch), cut-off \(report.cutoff): \(report.transactions) transactions, \(report.reversals) earlier ones reversed and taken back, total \(report.total) (minor units)")
                print(report.positionsCSV + report.merchantCSV, terminator: "")
                print("network income \(report.networkIncome); balances: \(report.balances)")
            }
        }
    }
}
