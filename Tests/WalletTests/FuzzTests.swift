import EMV
import Foundation
import PaymentCore
import Terminal
import TestSupport
import Testing
import Wallet

@Suite("Malformed input: the card and the kernel never crash")
struct WalletFuzzTests {
    static var iterations: Int { Int(ProcessInfo.processInfo.environment["CLOUDTAP_FUZZ_ITERATIONS"] ?? "") ?? 20_000 }

    @Test("random and mutated APDUs get a status word, and the card still works afterwards")
    func applet() async throws {
        try await onOwnThread {
            let phone = try Phone(keys: 1, limits: .init(maxTransactions: 1_000_000, maxCumulativeAmount: Int64.max / 4))
            var applet = phone.wallet.applet()
            var rng = SeededRandomNumberGenerator(seed: 41)
            let seeds = [AppletTests.selectPPSE, AppletTests.selectAID, AppletTests.gpo, "00B2010C00", "80CA9F3600"].map { try! [UInt8](hex: $0) }
            for i in 0..<Self.iterations {
                var command: [UInt8]
                if i % 3 == 0 {
                    command = rng.bytes(Int.random(in: 0...300, using: &rng))
                } else {
                    command = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
                    for _ in 0..<Int.random(in: 1...4, using: &rng) where !command.isEmpty {
                        command[Int.random(in: 0..<command.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                    }
                    if Bool.random(using: &rng) { command = Array(command.prefix(Int.random(in: 0...command.count, using: &rng))) }
                }
                let answer = applet.process(command)
                #expect(answer.count >= 2)
                if i % 50 == 0 { applet.reset() }
            }
            applet.reset()
            // Still a card: a clean tap goes online.
            guard case .onlineRequest = await tap(phone.wallet, amount: 3850).0 else { Issue.record("the card no longer works"); return }
        }
    }

    @Test("random card answers end the kernel with an outcome")
    func kernel() async throws {
        try await onOwnThread {
            var rng = SeededRandomNumberGenerator(seed: 43)
            let phone = try Phone()
            // Record a real tap's answers, then replay them mutated.
            let (_, trace) = await tap(phone.wallet, amount: 3850)
            for _ in 0..<Self.iterations / 10 {
                var answers = trace.map(\.response)
                let victim = Int.random(in: 0..<answers.count, using: &rng)
                for _ in 0..<Int.random(in: 1...6, using: &rng) where !answers[victim].isEmpty {
                    answers[victim][Int.random(in: 0..<answers[victim].count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
                let box = AnswerBox(answers)
                var kernel = ContactlessKernel(configuration: TerminalConfiguration(), transaction: TransactionInput(amount: 3850))
                let (outcome, _) = await Reader.tap(&kernel, over: InProcessTransport { _ in box.next() })
                _ = outcome
            }
        }
    }
}

final class AnswerBox: @unchecked Sendable {
    var answers: [[UInt8]]
    let lock = NSLock()
    init(_ answers: [[UInt8]]) { self.answers = answers }
    func next() -> [UInt8] { lock.withLock { answers.isEmpty ? [0x6F, 0x00] : answers.removeFirst() } }
}
