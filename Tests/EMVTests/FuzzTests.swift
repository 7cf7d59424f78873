import Foundation
import Testing
import PaymentCore
import TestSupport
@testable import EMV

/// Random and mutated inputs through every decoder: they must return a value or throw, never
/// trap. Each run takes a sample; set CLOUDTAP_FUZZ_ITERATIONS=1000000 for the long run
/// (see docs/testing.md).
@Suite("Decoders under random input")
struct FuzzTests {
    static var iterations: Int {
        ProcessInfo.processInfo.environment["CLOUDTAP_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 20_000
    }

    typealias Rng = SeededRandomNumberGenerator

    static let seeds: [[UInt8]] = [
        TLVTests.gpoResponse,
        try! [UInt8](hex: "6F 1E 84 0E 32 50 41 59 2E 53 59 53 2E 44 44 46 30 31 A5 0C BF 0C 09 61 07 4F 05 A0 00 00 03 33"),
        try! [UInt8](hex: "70 81 06 5F 24 03 29 12 31"),
        CommandAPDU.selectPPSE.encoded,
        CommandAPDU.getProcessingOptions(pdolData: [UInt8](repeating: 1, count: 33)).encoded,
    ]

    /// One input: either random bytes or a seed with a few bytes changed, inserted or cut.
    static func input(_ rng: inout Rng) -> [UInt8] {
        if Bool.random(using: &rng) {
            return (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        }
        var bytes = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            switch Int.random(in: 0..<4, using: &rng) {
            case 0 where !bytes.isEmpty: bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            case 1: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...bytes.count, using: &rng))
            case 2 where !bytes.isEmpty: bytes.removeLast(Int.random(in: 1...bytes.count, using: &rng))
            default: if !bytes.isEmpty { bytes.remove(at: Int.random(in: 0..<bytes.count, using: &rng)) }
            }
        }
        return bytes
    }

    @Test("TLV, DOL and APDU decoders never trap")
    func decoders() async {
        await onOwnThread {
            var rng = Rng(seed: UInt64(Date().timeIntervalSince1970))
            var decoded = 0
            for _ in 0..<Self.iterations {
                let bytes = Self.input(&rng)
                if let items = try? TLV.decodeTree(bytes) {
                    decoded += 1
                    // Whatever decodes re-encodes to bytes that decode to the same objects.
                    #expect((try? TLV.decode(items.encoded())) == items)
                    _ = TLVPrinter().render(items)
                }
                _ = try? DOL(bytes)
                if let c = try? CommandAPDU(bytes: bytes) { #expect((try? CommandAPDU(bytes: c.encoded)) == c) }
                _ = try? ResponseAPDU(bytes: bytes)
            }
            #expect(decoded > 0)
        }
    }
}
