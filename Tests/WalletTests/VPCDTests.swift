import Foundation
import PCSC
import PaymentCrypto
import Terminal
import TestSupport
import Testing
import Wallet

/// pcscd with vsmartcard's vpcd driver, started for the tests when installed (CI installs
/// pcscd and vsmartcard-vpcd); it exits by itself when idle.
enum VirtualReader {
    static let available: Bool = FileManager.default.isExecutableFile(atPath: "/usr/sbin/pcscd")
        && FileManager.default.fileExists(atPath: "/usr/lib/pcsc/drivers/serial/libifdvpcd.so")

    /// Whether pcscd runs with the vpcd reader, starting it if need be; waited for (up to five
    /// seconds) off the shared threads.
    static func start() async -> Bool { (try? await offPool { started }) ?? false }

    private static let started: Bool = {
        guard available else { return false }
        if FileManager.default.fileExists(atPath: "/run/pcscd/pcscd.comm"), (try? PCSCContext()) != nil { return true }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/pcscd")
        process.arguments = ["--foreground", "--auto-exit"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        for _ in 0..<100 {
            if let context = try? PCSCContext(), let readers = try? context.readers(), readers.contains(where: { $0.hasPrefix("Virtual PCD") }) { return true }
            usleep(50_000)
        }
        return false
    }()
}

@Suite("A tap through vpcd and pcscd", .serialized)
struct VPCDTests {
    @Test("the phone as a card in the virtual reader; the POS reads it over PC/SC; the cryptogram verifies")
    func tapThroughPCSC() async throws {
        guard VirtualReader.available else {
            print("skipping the vpcd tap: pcscd and vsmartcard-vpcd are not installed (apt-get install pcscd vsmartcard-vpcd)")
            return
        }
        let started = await VirtualReader.start()
        #expect(started, "pcscd with the vpcd driver did not come up")
        guard started else { return }
        let phone = try Phone()
        let card = SharedCardApplet(phone.wallet.applet())
        var connected: VirtualCard?
        for _ in 0..<50 where connected == nil {
            connected = try? await VirtualCard.connect(process: { card.process($0) }, reset: { card.reset() })
            if connected == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let virtualCard = try #require(connected)
        defer { Task { try? await virtualCard.remove() } }
        let context = try PCSCContext()
        let reader = try #require(try context.readers().first { $0.hasPrefix("Virtual PCD") && $0.hasSuffix("00 00") })
        let transport = try await PCSCTransport.waitForCard(in: reader, context: context)
        var kernel = ContactlessKernel(configuration: TerminalConfiguration(), transaction: TransactionInput(amount: 128_800))
        let (outcome, trace) = await Reader.tap(&kernel, over: transport)
        guard case .onlineRequest(let request) = outcome else { Issue.record("\(outcome)"); return }
        #expect(trace.count == 4)
        #expect(request.onlinePINRequired)
        #expect(try Cryptogram.verify(profile: .cloud, imk: Phone.imk, pan: request.pan, psn: request.psn, data: try transactionData(request),
                                      arqc: request.data[0x9F26]!))
    }
}
