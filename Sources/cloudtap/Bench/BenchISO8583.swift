import ArgumentParser
import EMV
import Foundation
import ISO8583
import ISO8583Link
import PaymentCore

struct BenchISO8583: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "iso8583",
        abstract: "ns to pack and to unpack a contactless 0200 with a 120-byte DE55 in each dialect.",
        discussion: "Run a release build: swift run -c release cloudtap bench iso8583.")

    @Option(help: "Seconds per measurement.") var seconds = 0.5
    @Option(help: "Requests in flight for the loopback figure.") var inFlight = 64
    @Option(help: "Seconds of loopback traffic.") var loopbackSeconds = 3.0

    /// The contactless 0200 of the benchmark: 120-byte DE55 (DESIGN §3 tag list, cloud IAD).
    static func sampleRequest() throws -> AuthorizationRequest {
        let icc: [TLV] = [
            TLV(0x9F26, try [UInt8](hex: "1A2B3C4D5E6F7081")), TLV(0x9F27, [0x80]), TLV(0x9F10, try [UInt8](hex: "0D014103A000000100EA60000701")),
            TLV(0x9F37, try [UInt8](hex: "12345678")), TLV(0x9F36, [0x00, 0x2A]), TLV(0x95, [0, 0, 0, 0, 0]), TLV(0x9A, [0x26, 0x11, 0x26]),
            TLV(0x9C, [0x00]), TLV(0x9F02, try BCD.pack("3850", byteCount: 6)), TLV(0x5F2A, [0x01, 0x56]), TLV(0x82, [0x7C, 0x00]),
            TLV(0x9F1A, [0x01, 0x56]), TLV(0x9F03, [0, 0, 0, 0, 0, 0]), TLV(0x9F33, [0xE0, 0xE1, 0xC8]), TLV(0x9F34, [0x02, 0x00, 0x00]),
            TLV(0x84, try [UInt8](hex: "A000000333010101")), TLV(0x9F41, [0x00, 0x00, 0x01, 0x23]),
        ]
        return AuthorizationRequest(
            pan: try PAN("6234567890123456780"), amount: try Amount("38.50", currency: .cny), transmissionDateTime: "1126153045",
            stan: "000123", localTime: "153045", localDate: "1126", expiry: "2912", posEntryMode: "072", cardSequenceNumber: "001",
            acquirerID: "00010000", forwardingID: "00010000", track2: "6234567890123456780=29122010000000000", retrievalReference: "000000000123",
            terminalID: "TERM0001", merchantID: "MERCHANT0000001", merchantNameLocation: "CLOUDTAP TEST MERCHANT   SHANGHAI     CN", iccData: icc)
    }

    func run() throws {
        #if DEBUG
        print("warning: debug build; use `swift run -c release cloudtap bench iso8583` for real figures\n")
        #endif
        let request = try Self.sampleRequest()
        print("contactless 0200, DE55 \(request.iccData!.encoded().count) bytes, \(request.message.fieldNumbers.count) fields")
        for name in ["network", "terminal", "iso87ascii"] {
            let spec = try MessageSpec.dialect(name)
            var message = request.message
            if name == "terminal" { message[43] = nil }
            let bytes = try spec.pack(message)
            let pack = try measure(seconds: seconds) { UInt64(try spec.pack(message).count) }
            let unpack = try measure(seconds: seconds) { UInt64(try spec.unpack(bytes).mti.utf8.count) }
            let peek = try measure(seconds: seconds) { UInt64(try spec.peek(bytes).mti.utf8.count) }
            let describe = measure(seconds: seconds) { UInt64(message.describe(spec: spec).utf8.count) }
            let record = measure(seconds: seconds) { UInt64(message.masked(spec: spec)?.count ?? 0) }
            print(name.padding(toLength: 11, withPad: " ", startingAt: 0)
                  + String(format: "%4d bytes  pack %7.0f ns  unpack %7.0f ns  pack+unpack %7.0f ns  (goal ≤ 3000)  peek %5.0f ns  masked record %5.0f ns  description %6.0f ns",
                           bytes.count, pack, unpack, pack + unpack, peek, record, describe))
        }
        try runLoopback(request.message)
    }

    /// Request/response pairs per second over one loopback connection, `inFlight` at a time.
    func runLoopback(_ template: Message) throws {
        let spec = MessageSpec.terminal
        var prepared = template
        prepared[43] = nil
        let request = prepared
        let inFlight = self.inFlight, duration = self.loopbackSeconds
        let result = try blockingAsync { () async throws -> (Int, [Double]) in
            let server = ISO8583Server(endpoint: LinkEndpoint(host: "127.0.0.1", port: 0, spec: spec, framing: .binaryLength2)) { req in
                var r = Message(mti: MessageType.responseMTI(for: req.mti) ?? "0210")
                for n in [2, 3, 4, 11, 41, 42, 49] { r.set(n, bytes: req.bytes(n)) }
                r[39] = "00"
                r[38] = "123456"
                return r
            }
            let port = try await server.start()
            var configuration = ClientLinkStateMachine.Configuration(
                signOnMessage: { NetworkManagement(code: .signOn, stan: $0, terminalID: "BENCH001").message(style: .terminal) },
                echoMessage: { NetworkManagement(code: .echo, stan: $0, terminalID: "BENCH001").message(style: .terminal) })
            configuration.requestTimeoutNanos = 10_000_000_000
            let client = try ISO8583Client(endpoint: LinkEndpoint(host: "127.0.0.1", port: port, spec: spec, framing: .binaryLength2),
                                           configuration: configuration)
            client.start()
            while !(await client.isReady) { try await Task.sleep(for: .milliseconds(5)) }
            let deadline = ContinuousClock.now + .seconds(duration)
            let counts = try await withThrowingTaskGroup(of: (Int, [Double]).self) { group in
                for worker in 0..<inFlight {
                    group.addTask {
                        var done = 0
                        var latencies: [Double] = []
                        var m = request
                        while ContinuousClock.now < deadline {
                            m[11] = String(format: "%06d", (worker * 10_000 + done % 10_000) % 1_000_000)
                            m[41] = String(format: "T%07d", worker)
                            let start = ContinuousClock.now
                            _ = try await client.send(m)
                            let d = ContinuousClock.now - start
                            latencies.append(Double(d.components.attoseconds) / 1e12 + Double(d.components.seconds) * 1e6)
                            done += 1
                        }
                        return (done, latencies)
                    }
                }
                var total = 0
                var all: [Double] = []
                for try await (n, l) in group { total += n; all += l }
                return (total, all)
            }
            await client.shutdown()
            await server.shutdown()
            return counts
        }
        let (pairs, latencies) = result
        let sorted = latencies.sorted()
        func p(_ q: Double) -> Double { sorted.nearestRank(q) ?? 0 }
        print(String(format: "loopback terminal dialect, one connection, %d in flight: %.0f pairs/s (goal ≥ 30,000); latency p50 %.0f µs, p99 %.0f µs",
                     inFlight, Double(pairs) / loopbackSeconds, p(0.5), p(0.99)))
    }
}

/// Runs async work from a synchronous command and waits for it.
func blockingAsync<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = ResultBox<T>()
    let semaphore = DispatchSemaphore(value: 0)
    Task {
        do { box.set(.success(try await body())) } catch { box.set(.failure(error)) }
        semaphore.signal()
    }
    semaphore.wait()
    return try box.get()
}

final class ResultBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<T, any Error>?
    func set(_ r: Result<T, any Error>) { lock.withLock { result = r } }
    func get() throws -> T { try lock.withLock { result! }.get() }
}
