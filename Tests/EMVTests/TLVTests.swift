import Testing
import PaymentCore
@testable import EMV

@Suite("BER-TLV")
struct TLVTests {
    /// A qPBOC GPO response (template 77) as a phone returns it.
    static let gpoResponse = try! [UInt8](hex: """
        77 4D 82 02 7C 00 94 04 08 01 01 00 57 13 62 34 56 78 90 12 34 56 78 0D 29 12 20 10 00 00 00 00 0F \
        5F 34 01 01 9F 10 0E 0D 01 41 03 A0 00 00 01 00 EA 60 00 07 01 9F 26 08 11 22 33 44 55 66 77 88 \
        9F 27 01 80 9F 36 02 00 2A 9F 6C 02 00 80
        """)

    @Test("decodes a template and re-encodes byte for byte")
    func roundTrip() throws {
        let items = try TLV.decodeTree(Self.gpoResponse)
        #expect(items.count == 1)
        #expect(items[0].tag == 0x77)
        #expect(items[0].tag.isConstructed)
        let kids = try items[0].children()
        #expect(kids.map(\.tag) == [0x82, 0x94, 0x57, 0x5F34, 0x9F10, 0x9F26, 0x9F27, 0x9F36, 0x9F6C])
        #expect(items.find(0x9F36)?.value == [0x00, 0x2A])
        #expect(items.encoded() == Self.gpoResponse)
    }

    @Test("padding bytes between objects are skipped; unknown tags and long-form lengths survive re-encoding")
    func paddingAndUnknown() throws {
        let bytes = try [UInt8](hex: "00 9F 7F 02 AB CD FF FF DF 81 01 81 03 01 02 03 00")
        let items = try TLV.decode(bytes)
        #expect(items.map(\.tag) == [0x9F7F, 0xDF8101])
        #expect(items[1].value == [1, 2, 3])
        // The non-minimal length 81 03 is kept.
        #expect(items.encoded() == (try [UInt8](hex: "9F 7F 02 AB CD DF 81 01 81 03 01 02 03")))
        var changed = items[1]
        changed.value = [9]
        #expect(changed.encoded == (try [UInt8](hex: "DF 81 01 01 09")))
    }

    @Test("long values use long-form lengths")
    func longForm() throws {
        let big = TLV(0x70, [UInt8](repeating: 0x5A, count: 300))
        #expect(Array(big.encoded.prefix(4)) == [0x70, 0x82, 0x01, 0x2C])
        #expect(try TLV.decodeSingle(big.encoded) == big)
        #expect(TLV(0x70, children: []).encoded == [0x70, 0x00])
    }

    @Test("errors name the tag and the byte offset", arguments: [
        ("9F", TLVError(.truncatedTag, tag: nil, offset: 1)),
        ("9F26", TLVError(.truncatedLength, tag: 0x9F26, offset: 2)),
        ("9F2608 1122", TLVError(.valueOverrun(declared: 8, available: 2), tag: 0x9F26, offset: 2)),
        ("5A 80", TLVError(.indefiniteLength, tag: 0x5A, offset: 1)),
        ("5A 85 0000000001", TLVError(.lengthTooLong(lengthBytes: 5), tag: 0x5A, offset: 1)),
        ("9F FF FF FF 01 00", TLVError(.tagTooLong, tag: nil, offset: 0)),
        ("77 04 9F 36 05 00", TLVError(.valueOverrun(declared: 5, available: 1), tag: 0x9F36, offset: 4)),
    ])
    func errors(input: String, expected: TLVError) throws {
        #expect(throws: expected) { try TLV.decodeTree([UInt8](hex: input)) }
    }

    @Test("the printer names tags and masks card data")
    func printer() throws {
        let text = TLVPrinter().render(try TLV.decodeTree(Self.gpoResponse))
        #expect(text.contains("77 Response Message Template Format 2"))
        #expect(text.contains("9F36 Application Transaction Counter (ATC) (len 2): 002A"))
        #expect(text.contains("623456*********6780D****"))
        #expect(!text.contains("6234567890123456780"))
        let revealed = TLVPrinter(revealCardData: true).render(try TLV.decodeTree(Self.gpoResponse))
        #expect(revealed.contains("6234567890123456780D"))
    }

    @Test("the dictionary is a table with formats and sources")
    func dictionary() {
        let d = TagDictionary.standard
        #expect(d.entries.count > 120)
        #expect(d[0x9F02]?.format == .n)
        #expect(d[0x5A]?.format == .cn)
        #expect(d[0x9F26]?.source == .card)
        #expect(d[0x9F66]?.name == "Terminal Transaction Qualifiers (TTQ)")
        #expect(d[0x77]?.format == .template)
    }
}
