import Testing
import PaymentCore
@testable import EMV

@Suite("Data object lists")
struct DOLTests {
    /// The qPBOC PDOL of DESIGN §2.
    static let pdol = try! [UInt8](hex: "9F66 04 9F02 06 9F03 06 9F1A 02 95 05 5F2A 02 9A 03 9C 01 9F37 04")

    @Test("parses a PDOL and builds its data in order")
    func build() throws {
        let dol = try DOL(Self.pdol)
        #expect(dol.entries.count == 9)
        #expect(dol.dataLength == 33)
        #expect(dol.encoded == Self.pdol)
        let values: [EMV.Tag: [UInt8]] = [
            0x9F66: [0x36, 0x00, 0x40, 0x00], 0x9F02: try BCD.pack("3850", byteCount: 6), 0x9F03: [0, 0, 0, 0, 0, 0],
            0x9F1A: [0x01, 0x56], 0x95: [0, 0, 0, 0, 0], 0x5F2A: [0x01, 0x56], 0x9A: [0x26, 0x11, 0x26], 0x9C: [0x00],
            0x9F37: [0xDE, 0xAD, 0xBE, 0xEF],
        ]
        let data = dol.build(from: values)
        #expect(data.hexString == "3600400000000000385000000000000001560000000000015626112600DEADBEEF")
        #expect(try dol.split(data)[0x9F37] == [0xDE, 0xAD, 0xBE, 0xEF])
        #expect(throws: EncodingError.self) { try dol.split(Array(data.dropLast())) }
    }

    @Test("truncates and pads per EMV Book 3 §5.4")
    func truncateAndPad() throws {
        let dol = DOL([.init(tag: 0x9F02, length: 4), .init(tag: 0x5A, length: 10), .init(tag: 0x9F1C, length: 4),
                       .init(tag: 0x9F16, length: 17), .init(tag: 0x9F99, length: 2), .init(tag: 0x70, length: 2)])
        let values: [EMV.Tag: [UInt8]] = [
            0x9F02: try [UInt8](hex: "000000012345"),     // n: keep the rightmost bytes
            0x5A: try [UInt8](hex: "6234567890123456780F"), // cn, exact
            0x9F1C: Array("TERM0001".utf8),                  // an: keep the leftmost bytes
            0x9F16: Array("MERCHANT0000001".utf8),           // ans, short: pad right with 00
        ]
        let out = dol.build(from: values)
        let merchant: String = Array("MERCHANT0000001".utf8).hexString
        let expected: String = "00012345" + "6234567890123456780F" + "5445524D" + merchant + "0000" + "0000" + "0000"
        #expect(out.hexString == expected)
        // n pads left, cn pads right with FF.
        let short = DOL([.init(tag: 0x9F02, length: 6), .init(tag: 0x5A, length: 10)])
        let shortValues: [EMV.Tag: [UInt8]] = [0x9F02: [0x12, 0x34], 0x5A: [0x62, 0x34]]
        #expect(short.build(from: shortValues).hexString == "0000000012346234FFFFFFFFFFFFFFFF")
    }

    @Test("a malformed DOL gives an error with its offset")
    func malformed() {
        #expect(throws: TLVError(.truncatedLength, tag: 0x9F37, offset: 2)) { try DOL([0x9F, 0x37]) }
    }
}
