import Foundation
import TestSupport
import Testing
import PaymentCore
@testable import ISO8583

/// Random and mutated messages through the decoders: a value or an error, never a trap.
/// CLOUDTAP_FUZZ_ITERATIONS=1000000 for the long run (docs/testing.md).
@Suite("ISO 8583 decoder under random input")
struct ISO8583FuzzTests {
    static var iterations: Int {
        ProcessInfo.processInfo.environment["CLOUDTAP_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 20_000
    }

    @Test("unpack and peek never trap", arguments: ["network", "terminal", "iso87ascii"])
    func decoders(dialect: String) async throws {
        try await onOwnThread {
            let spec = try MessageSpec.dialect(dialect)
            let seeds = Sample.all.filter { $0.dialect == dialect }.map(\.bytes)
            var rng = SeededRandomNumberGenerator(seed: UInt64(Date().timeIntervalSince1970 * 1000))
            var decoded = 0
            for _ in 0..<Self.iterations / 3 {
                var bytes = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    switch Int.random(in: 0..<5, using: &rng) {
                    case 0: bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                    case 1: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...bytes.count, using: &rng))
                    case 2: if bytes.count > 1 { bytes.removeLast(Int.random(in: 1..<bytes.count, using: &rng)) }
                    case 3: bytes = rng.bytes(Int.random(in: 0...80, using: &rng))
                    default: if bytes.count > 1 { bytes.remove(at: Int.random(in: 0..<bytes.count, using: &rng)) }
                    }
                    if bytes.isEmpty { bytes = [0] }
                }
                if let m = try? spec.unpack(bytes) {
                    decoded += 1
                    _ = m.describe(spec: spec)
                    do { _ = try spec.pack(m) } catch { Issue.record("unpacked \(bytes.hexString) but could not pack it again: \(error)") }
                }
                _ = try? spec.peek(bytes)
            }
            #expect(decoded > 0)
        }
    }
}
