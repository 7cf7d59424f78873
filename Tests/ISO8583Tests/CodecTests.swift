import Foundation
import Testing
import EMV
import PaymentCore
@testable import ISO8583

@Suite("Codec")
struct CodecTests {
    static let dialects = ["network", "terminal", "iso87ascii"]

    /// A random value that satisfies a field spec.
    static func value(for spec: FieldSpec, _ rng: inout SeededRandomNumberGenerator) -> [UInt8] {
        let length = spec.prefix == .fixed ? spec.length : Int.random(in: 0...min(spec.length, 60), using: &rng)
        func digits(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 48...57, using: &rng) } }
        if let composite = spec.composite {
            switch composite.kind {
            case .tlv:
                let items = (0..<Int.random(in: 1...6, using: &rng)).map { i in TLV(EMV.Tag(0x9F00 + UInt32(i + 1)), rng.bytes(Int.random(in: 0...12, using: &rng))) }
                return items.encoded()
            case .positional:
                let count = spec.prefix == .fixed ? composite.subfields.count : Int.random(in: 1...composite.subfields.count, using: &rng)
                var out: [UInt8] = []
                for sub in composite.subfields.prefix(count) { out += digits(sub.length) }
                return out
            case .tagged:
                let sub = composite.subfields[0]
                let v = Array("X\(Int.random(in: 0...999, using: &rng))".utf8)
                return Array(sub.id.utf8) + Array(String(format: "%03d", v.count).utf8) + v
            }
        }
        switch spec.type {
        case .n: return digits(length)
        case .z: return length > 2 ? digits(length / 2) + [UInt8(ascii: "=")] + digits(length - length / 2 - 1) : digits(length)
        case .xn: return [UInt8(ascii: "C")] + digits(spec.length - 1)
        case .b: return rng.bytes(length)
        case .an, .ans: return (0..<length).map { _ in UInt8.random(in: 0x20...0x7E, using: &rng) }
        }
    }

    @Test("random valid messages of each dialect pack and unpack to themselves", arguments: dialects)
    func randomMessages(dialect: String) throws {
        let spec = try MessageSpec.dialect(dialect)
        var rng = SeededRandomNumberGenerator(seed: UInt64(dialect.utf8.count))
        let numbers = (2...spec.maxField).filter { spec[$0] != nil }
        for _ in 0..<500 {
            var m = Message(mti: ["0100", "0200", "0210", "0400", "0800"][Int.random(in: 0..<5, using: &rng)])
            for n in numbers where Bool.random(using: &rng) {
                m.set(n, bytes: Self.value(for: spec[n]!, &rng))
            }
            let bytes = try spec.pack(m)
            let back = try spec.unpack(bytes)
            #expect(back.mti == m.mti)
            #expect(back.fieldNumbers == m.fieldNumbers)
            for n in m.fieldNumbers { #expect(back.bytes(n) == m.bytes(n), "DE\(n)") }
            #expect(try spec.pack(back) == bytes)
        }
    }

    @Test("unknown DE55 tags survive unpack and pack byte for byte")
    func unknownTags() throws {
        let spec = MessageSpec.network
        var m = Message(mti: "0200")
        m[11] = "000001"
        // DF7F is unknown, 9F8101 is a 3-byte tag and FF is padding between objects: all kept as sent.
        m.set(55, bytes: try [UInt8](hex: "9F2608AABBCCDDEEFF0011" + "DF7F03010203" + "FF" + "9F81010281FF"))
        let bytes = try spec.pack(m)
        #expect(try spec.unpack(bytes).bytes(55) == m.bytes(55))
    }

    @Test("unpack errors name the field and the byte offset")
    func unpackErrors() throws {
        let sample = Sample.all.first { $0.name == "iso87ascii-0200-contactless" }!
        let spec = MessageSpec.iso87ascii
        // Truncated inside the last field.
        do {
            _ = try spec.unpack(Array(sample.bytes.dropLast(3)))
            Issue.record("truncated message unpacked")
        } catch {
            #expect(error.path == "DE55")
            if case .truncated = error.kind {} else { Issue.record("kind \(error.kind)") }
        }
        // A letter in DE11 (n6): bytes 20…25 after MTI and bitmaps.
        var bad = sample.bytes
        let de11Offset = try #require(bad.firstRange(of: Array("000123".utf8))?.lowerBound)
        bad[de11Offset + 2] = UInt8(ascii: "X")
        do {
            _ = try spec.unpack(bad)
            Issue.record("bad DE11 unpacked")
        } catch {
            #expect(error.path == "DE11")
            #expect(error.offset == de11Offset)
        }
        // A bitmap naming a field the dialect lacks (DE8).
        var extra = sample.bytes
        extra[4 + 1] = UInt8(ascii: "3")  // primary bitmap's second hex digit: sets bit 8
        #expect(throws: ISO8583Error.self) { try spec.unpack(extra) }
        // Trailing garbage.
        do {
            _ = try spec.unpack(sample.bytes + [0x41])
            Issue.record("trailing byte accepted")
        } catch {
            #expect(error.kind == .trailingBytes(1))
        }
    }

    @Test("pack refuses values that break the spec")
    func packErrors() throws {
        let spec = MessageSpec.terminal
        func check(_ n: Int, _ value: String, _ expected: String) {
            var m = Message(mti: "0200")
            m[n] = value
            do {
                _ = try spec.pack(m)
                Issue.record("DE\(n) '\(value)' packed")
            } catch {
                #expect(error.path.hasPrefix("DE\(n)"), "\(error)")
                #expect(error.description.contains(expected), "\(error)")
            }
        }
        check(11, "12345", "fixed at 6")
        check(11, "12345A", "not a digit")
        check(2, String(repeating: "1", count: 20), "exceeds the maximum 19")
        check(35, "6234567890123456780X2912", "not a track 2 character")
        check(60, "22000001ABC", "not a digit")
        var m = Message(mti: "0200")
        m.set(55, bytes: [0x9F, 0x26, 0x08, 0x01])
        #expect(throws: ISO8583Error.self) { try spec.pack(m) }
        m = Message(mti: "0200")
        m[8] = "1"
        #expect(throws: ISO8583Error.self) { try spec.pack(m) }
        #expect(throws: ISO8583Error.self) { try spec.pack(Message(mti: "02A0")) }
    }

    @Test("EBCDIC fields and prefixes round-trip")
    func ebcdic() throws {
        let spec = try MessageSpec(name: "ebcdic", mtiEncoding: .ebcdic, bitmapEncoding: .binary, fields: [
            2: FieldSpec(description: "PAN", type: .n, length: 19, prefix: .LL, prefixEncoding: .ebcdic, encoding: .ebcdic),
            43: FieldSpec(description: "Name", type: .ans, length: 40, encoding: .ebcdic),
        ])
        var m = Message(mti: "0100")
        m[2] = "6210220110002707354"
        m[43] = "CLOUDTAP TEST MERCHANT, SHANGHAI CN     "
        let bytes = try spec.pack(m)
        #expect(Array(bytes.prefix(4)) == [0xF0, 0xF1, 0xF0, 0xF0])
        #expect(try spec.unpack(bytes) == m)
    }

    @Test("specs load from JSON and bad specs are refused")
    func specLoading() throws {
        let json = #"{"name":"x","mtiEncoding":"ascii","bitmapEncoding":"hex","fields":{"3":{"description":"p","type":"an","length":6,"prefix":"fixed","prefixEncoding":"ascii","encoding":"bcd"}}}"#
        #expect(throws: (any Error).self) { try JSONDecoder().decode(MessageSpec.self, from: Data(json.utf8)) }
        #expect(throws: ISO8583Error.self) { try MessageSpec.dialect("nope") }
    }
}

@Suite("Bitmaps")
struct BitmapTests {
    @Test("a third bitmap carries fields 129–192 where a dialect uses one")
    func tertiary() throws {
        let text = FieldSpec(description: "t", type: .ans, length: 10, prefix: .LL, encoding: .ascii)
        let spec = try MessageSpec(name: "three", mtiEncoding: .ascii, bitmapEncoding: .hex, tertiaryBitmap: true,
                                   fields: [3: text, 70: text, 130: text, 192: text])
        var m = Message(mti: "0800")
        m[3] = "a"
        m[70] = "b"
        m[130] = "c"
        m[192] = "d"
        let bytes = try spec.pack(m)
        // MTI, then three 16-character hex bitmaps.
        #expect(String(decoding: bytes[4..<52], as: UTF8.self) == "A000000000000000" + "8400000000000000" + "4000000000000001")
        #expect(try spec.unpack(bytes) == m)
        #expect(throws: ISO8583Error.self) { try MessageSpec(name: "x", mtiEncoding: .ascii, bitmapEncoding: .hex, tertiaryBitmap: true, fields: [65: text]) }
    }

    @Test("secondary bitmap only when a field above 64 is present")
    func secondary() throws {
        let spec = MessageSpec.network
        var m = Message(mti: "0800")
        m[11] = "000001"
        let short = try spec.pack(m)
        m[70] = "301"
        let long = try spec.pack(m)
        #expect(long.count == short.count + 8 + 3)
        #expect(long[46 + 4] & 0x80 != 0)
        #expect(short[46 + 4] & 0x80 == 0)
    }
}
