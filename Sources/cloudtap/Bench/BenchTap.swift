import ArgumentParser
import Crypto
import Foundation
import PCSC
import PaymentCore
import PaymentCrypto
import Terminal
import Wallet

struct BenchTap: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tap",
        abstract: "A whole tap — PPSE to the online request built — in process, and through vpcd + pcscd when they run.",
        discussion: "Each tap: SELECT PPSE, SELECT AID, GPO (the phone makes the cryptogram and stores its ATC), READ RECORD, the kernel's checks, the 0200 built.")

    @Option(help: "Taps to time in process.") var taps = 20_000
    @Option(help: "Taps to time through vpcd.") var vpcdTaps = 200
    @Option(help: "vpcd port of the reader to use (35964 is 'Virtual PCD 00 01').") var vpcdPort = 35964

    func run() throws {
        let taps = self.taps, vpcdTaps = self.vpcdTaps, vpcdPort = self.vpcdPort
        try blockingAsync { () async throws -> Void in
            let wallet = try Self.phone()
            let card = SharedCardApplet(wallet.applet())
            let inProcess = InProcessTransport { card.process($0) }
            _ = try await Self.time(taps: 200, over: inProcess)  // warm-up
            let local = try await Self.time(taps: taps, over: inProcess)
            Self.report("in process", local, goal: "≤ 200 µs")

            guard let context = try? PCSCContext(), let reader = try? context.readers().first(where: { $0.hasPrefix("Virtual PCD") && $0.hasSuffix(vpcdPort == 35963 ? "00 00" : "00 01") }) else {
                print("through vpcd: skipped (pcscd with vsmartcard-vpcd is not running; start `pcscd --foreground`)")
                return
            }
            let virtualCard = try await VirtualCard.connect(port: vpcdPort, process: { card.process($0) }, reset: { card.reset() })
            let transport = try await PCSCTransport.waitForCard(in: reader, context: context)
            _ = try await Self.time(taps: 10, over: transport)
            let remote = try await Self.time(taps: vpcdTaps, over: transport)
            Self.report("through vpcd + pcscd", remote, goal: "≤ 50 ms")
            try await virtualCard.remove()
        }
    }

    /// A phone with a cloud card whose keys outlast the run.
    static func phone() throws -> Wallet {
        let wallet = try Wallet(store: MemorySecureStore(), deviceID: "bench")
        let pan = try PAN("6234560000000016")
        try wallet.addCard(CardProfile(id: "bench", kind: .cloud, pan: pan.digits, expiry: "2912", cryptogramProfile: "cloud"))
        let cardKey = try IssuerMasterKey(KeyTools.oddParity([UInt8](repeating: 0x4D, count: 16)), algorithm: .tdes).cardKey(pan: pan, psn: "01", method: .optionA)
        let index = LimitedUseKeyIndex(generatedAt: Date(), sequence: 1)
        let luk = try EMVKeyDerivation.limitedUseKey(cardKey: cardKey, index: index, algorithm: .tdes)
        try wallet.addKeys(cardID: "bench", [Wallet.SealedKey(index: index, sealedKey: try DeviceKeyWrap.seal(luk, to: wallet.devicePublicKey, context: index.bytes),
                                                              limits: LimitedUseKeyLimits(maxTransactions: 60_000, maxCumulativeAmount: Int64.max / 4))])
        return wallet
    }

    static let merchant = MerchantTerminal(terminalID: "TERM0001", merchantID: "MERCHANT0000001", acquirerID: "01020000", merchantNameLocation: "BENCH")

    /// Per-tap times in nanoseconds.
    static func time(taps: Int, over transport: any CardTransport) async throws -> [UInt64] {
        var times: [UInt64] = []
        times.reserveCapacity(taps)
        let configuration = TerminalConfiguration()
        let amount = Amount(minorUnits: 3850, currency: .cny)
        for i in 0..<taps {
            let start = DispatchTime.now().uptimeNanoseconds
            var kernel = ContactlessKernel(configuration: configuration, transaction: TransactionInput(amount: 3850))
            guard case .onlineRequest(let online) = await Reader.tap(&kernel, over: transport).0 else { throw ToolError("tap \(i) did not go online") }
            let message = OnlineAuthorization.request(for: online, amount: amount, stan: UInt32(i + 1), at: Date(), terminal: merchant, pinBlock: nil).message
            guard message[55] != nil else { throw ToolError("no DE55") }
            times.append(DispatchTime.now().uptimeNanoseconds - start)
        }
        return times
    }

    static func report(_ label: String, _ times: [UInt64], goal: String) {
        let sorted = times.sorted()
        func at(_ q: Double) -> Double { Double(sorted.nearestRank(q) ?? 0) / 1000 }
        let mean = Double(times.reduce(0, +)) / Double(times.count) / 1000
        print(String(format: "tap %@: %d taps, mean %.1f µs, p50 %.1f µs, p99 %.1f µs (goal %@)", label, times.count, mean, at(0.5), at(0.99), goal))
    }
}
