import TestSupport
import Testing
import PaymentCore
@testable import EMV

@Suite("Round-trip properties")
struct RoundTripTests {
    typealias Rng = SeededRandomNumberGenerator

    /// A random tag: 1 to 3 bytes, primitive or constructed, never starting with 00 or FF
    /// (which EMV reserves as padding between objects).
    static func tag(_ rng: inout Rng, constructed: Bool) -> EMV.Tag {
        let cls = UInt8.random(in: 0...(constructed ? 2 : 3), using: &rng) << 6 | (constructed ? 0x20 : 0)
        switch Int.random(in: 0..<3, using: &rng) {
        case 0: return EMV.Tag(UInt32(cls | UInt8.random(in: 1...0x1E, using: &rng)))
        case 1: return EMV.Tag(UInt32(cls | 0x1F) << 8 | UInt32(UInt8.random(in: 0x01...0x7F, using: &rng)))
        default:
            return EMV.Tag(UInt32(cls | 0x1F) << 16 | UInt32(UInt8.random(in: 0x81...0xFF, using: &rng)) << 8 | UInt32(UInt8.random(in: 0...0x7F, using: &rng)))
        }
    }

    static func tree(_ rng: inout Rng, depth: Int) -> [TLV] {
        (0..<Int.random(in: 1...4, using: &rng)).map { _ in
            if depth < 3 && Bool.random(using: &rng) {
                return TLV(tag(&rng, constructed: true), children: tree(&rng, depth: depth + 1))
            }
            let length = [0, 1, 8, 127, 128, 300][Int.random(in: 0..<6, using: &rng)]
            return TLV(tag(&rng, constructed: false), (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) })
        }
    }

    @Test("random TLV trees encode and decode to themselves")
    func tlvTrees() async throws {
        try await onOwnThread {
            var rng = Rng(seed: 7)
            for _ in 0..<2_000 {
                let items = Self.tree(&rng, depth: 0)
                let bytes = items.encoded()
                let decoded = try TLV.decodeTree(bytes)
                #expect(decoded == items)
                #expect(decoded.encoded() == bytes)
            }
        }
    }

    @Test("random DOLs encode to themselves and their data splits back")
    func dols() async throws {
        try await onOwnThread { () throws in
            var rng = Rng(seed: 11)
            for _ in 0..<2_000 {
                var seen = Set<EMV.Tag>()
                let entries = (0..<Int.random(in: 1...10, using: &rng)).compactMap { _ -> DOL.Entry? in
                    let t = Self.tag(&rng, constructed: false)
                    guard seen.insert(t).inserted else { return nil }
                    return DOL.Entry(tag: t, length: Int.random(in: 1...32, using: &rng))
                }
                let dol = DOL(entries)
                #expect(try DOL(dol.encoded) == dol)
                var values: [EMV.Tag: [UInt8]] = [:]
                for e in entries { values[e.tag] = (0..<e.length).map { _ in UInt8.random(in: 0...255, using: &rng) } }
                let data = dol.build(from: values)
                #expect(data.count == dol.dataLength)
                #expect(try dol.split(data) == values)
            }
        }
    }
}
