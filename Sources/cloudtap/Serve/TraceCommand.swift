import ArgumentParser
import Foundation
import PaymentCore
import Switch

struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "One transaction's trace from a network's data directory: the messages that crossed the switch (masked), the token service's check, the issuer's ledger postings.",
        discussion: "Without an id, lists the latest transactions.")

    @Argument(help: "The transaction id (as the list shows it).") var id: Int64?
    @OptionGroup var network: NodeOptions

    func run() throws {
        let id = self.id
        try network.withNode { node in
            guard let id else {
                for t in try await node.network.recentTransactions() { print(Self.line(t)) }
                return
            }
            guard let trace = try await node.network.trace(transactionID: id) else { throw ToolError("no transaction \(id)") }
            print(Self.line(trace.summary))
            print("  reason: \(trace.summary.reason)")
            for line in trace.lines {
                print("\n  \(line.direction)\(line.mti.isEmpty ? "" : " (\(line.mti))")")
                print(line.text.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
            }
            if let decision = trace.issuerDecision {
                print("\n  issuer decision \(decision); ledger:")
                for p in trace.postings { print("    \(p.account.padding(toLength: 28, withPad: " ", startingAt: 0)) \(String(format: "%12d", p.amount))  \(p.memo)") }
            }
            for followUp in trace.followUps { print("\n  owed to the issuer: \(followUp)") }
        }
    }

    static func line(_ t: TransactionTrace.Summary) -> String {
        let amount = Amount(minorUnits: t.amount, currency: Currency(code: String(t.currency)) ?? .cny)
        return "#\(t.id) \(t.createdAt) \(t.terminalID) STAN \(t.stan) token …\(t.tokenLastFour) \(amount) → \(t.responseCode ?? "--") \(t.authorizationCode ?? "") \(t.state)"
    }
}
