import Foundation
import NIOCore
import NIOEmbedded
import PaymentCore
import TestSupport
import Testing
import ISO8583
@testable import ISO8583Link

/// Random and mutated frames into a server connection's pipeline (frame decoder and request
/// handler): an answer, a format-error reply or a closed connection — never a trap.
/// CLOUDTAP_FUZZ_ITERATIONS=1000000 for the long run (docs/testing.md).
@Suite("Server link under random input")
struct ServerFuzzTests {
    static var iterations: Int {
        ProcessInfo.processInfo.environment["CLOUDTAP_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 6_000
    }

    @Test("frames of every framing, mutated anywhere", arguments: [
        ("terminal", Framing.binaryLength2), ("network", .networkHeader), ("iso87ascii", .asciiLength4),
    ])
    func fuzz(dialect: String, framing: Framing) async throws {
        try await onOwnThread {
            let spec = try MessageSpec.dialect(dialect)
            let parser = FrameParser(framing: framing)
            let seeds = try (1...5).map { i in try parser.frame(try spec.pack(LoopbackTests.request(i))) }
            var rng = SeededRandomNumberGenerator(seed: UInt64(Date().timeIntervalSince1970 * 1000))
            var replies = 0, closed = 0
            for _ in 0..<Self.iterations / 3 {
                var bytes = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    switch Int.random(in: 0..<4, using: &rng) {
                    case 0: bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                    case 1: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...bytes.count, using: &rng))
                    case 2: if bytes.count > 1 { bytes.removeLast(Int.random(in: 1..<bytes.count, using: &rng)) }
                    default: bytes = rng.bytes(Int.random(in: 1...64, using: &rng))
                    }
                }
                let state = ServerState()
                let channel = EmbeddedChannel()
                try channel.pipeline.syncOperations.addHandlers([
                    ByteToMessageHandler(FrameDecoder(parser: parser)),
                    ServerConnectionHandler(spec: spec, handler: { _ in nil }, state: state, loop: channel.eventLoop),
                ])
                // Deliver in two pieces, as TCP may.
                let cut = Int.random(in: 0...bytes.count, using: &rng)
                for piece in [bytes[..<cut], bytes[cut...]] where !piece.isEmpty {
                    do { try channel.writeInbound(ByteBuffer(bytes: piece)) } catch { break }
                }
                if (try? channel.readOutbound(as: [UInt8].self)) != nil { replies += 1 }
                if !channel.isActive { closed += 1 }
                _ = try? channel.finish()
            }
            #expect(replies + closed > 0)
        }
    }
}
