import EMV
import Foundation
import PaymentCore
import QR
import Testing

@Suite("EMV QR payloads")
struct PayloadTests {
    static let pix = "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***6304"
    static let emvco = "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN5914BEST TRANSPORT"
        + "6007BEIJING64200002ZH0104最佳运输0202北京540523.7253031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708123456786304"

    @Test("the published MPM vectors: Pix (CRC 1D3D) and EMVCo's UTF-8 example (CRC A13A) parse and re-encode byte for byte")
    func mpmVectors() throws {
        #expect(MPM.crc(Self.pix) == "1D3D")
        #expect(MPM.crc(Self.emvco) == "A13A")
        let pix = try MerchantPresentedCode(payload: Self.pix + "1D3D")
        #expect(pix.merchantName == "Fulano de Tal")
        #expect(pix.currency == "986")
        #expect(pix.prompts == ["05"])
        #expect(pix.payload == Self.pix + "1D3D")

        let code = try MerchantPresentedCode(payload: Self.emvco + "A13A")
        #expect(code.initiation == .dynamicCode)
        #expect(code.merchantAccounts.map(\.id) == ["29", "31"])
        #expect(try code.merchantAccounts[0].children().first == MPMObject("00", "D15600000000"))
        #expect(code.amount == "23.72")
        #expect(try code.amountValue() == Amount(minorUnits: 2372, currency: .cny))
        #expect(code.language.map(\.value) == ["ZH", "最佳运输", "北京"])
        #expect(code.other.map(\.id) == ["91"])
        #expect(code.payload == Self.emvco + "A13A")
    }

    @Test("real-world quirks: a lower-case CRC is accepted, a CRC with a leading zero is written with it, several accounts, UTF-8 names counted in characters")
    func quirks() throws {
        #expect(try MerchantPresentedCode(payload: Self.pix + "1d3d").merchantCity == "BRASILIA")
        // Find a payload whose CRC starts with 0 and check it keeps four digits.
        var found = false
        for n in 0..<5000 where !found {
            let code = MerchantPresentedCode(initiation: .staticCode, merchantAccounts: [MPMObject("15", "6227000301020000MERCHANT\(String(format: "%07d", n))")],
                                             merchantCategoryCode: "5812", currency: "156", countryCode: "CN", merchantName: "茶馆", merchantCity: "上海")
            let payload = code.payload
            if payload.hasSuffix("6304") == false, payload.suffix(4).hasPrefix("0") {
                found = true
                #expect(payload.suffix(4).count == 4)
                #expect(try MerchantPresentedCode(payload: payload) == MerchantPresentedCode(payload: payload))
                #expect(try MerchantPresentedCode(payload: payload).unionPay?.merchantID == "MERCHANT\(String(format: "%07d", n))")
            }
        }
        #expect(found)
        let several = MerchantPresentedCode(
            initiation: .dynamicCode,
            merchantAccounts: [UnionPayMerchant(acquirerIIN: "62270003", forwardingIIN: "01020000", merchantID: "MERCHANT0000001").object,
                               MPMObject("26", children: [MPMObject("00", "com.example.wallet"), MPMObject("01", "shop-42")])],
            merchantCategoryCode: "5814", currency: "156", amount: "38.50", countryCode: "CN", merchantName: "CLOUDTAP COFFEE", merchantCity: "SHANGHAI",
            additionalData: [MPMObject("07", "TERM0001"), MPMObject("05", "***")], language: [MPMObject("00", "ZH"), MPMObject("01", "云端咖啡")])
        let read = try MerchantPresentedCode(payload: several.payload)
        #expect(read.merchantAccounts.count == 2)
        #expect(read.unionPay == UnionPayMerchant(acquirerIIN: "62270003", forwardingIIN: "01020000", merchantID: "MERCHANT0000001"))
        #expect(read.language[1].value == "云端咖啡")
        #expect(several.payload.contains("0104云端咖啡"))  // four characters, twelve UTF-8 bytes
        #expect(read.prompts == ["05"])
    }

    @Test("refused with a clear error: no CRC, a wrong CRC, ID 00 not first, a template without its identifier, a truncated object, a bad amount")
    func refusals() {
        func error(_ payload: String) -> MPMError.Kind? {
            do { _ = try MerchantPresentedCode(payload: payload); return nil } catch { return error.kind }
        }
        #expect(error(String(Self.pix.dropLast(4))) == .missingCRC)
        #expect(error(Self.pix + "1D3E") == .crcMismatch(expected: "1D3D", found: "1D3E"))
        #expect(error(MPM.encode([MPMObject("01", "11"), MPMObject("00", "01")])) == .payloadFormatFirst)
        let noGUID = MPM.encode([MPMObject("00", "01"), MPMObject("26", children: [MPMObject("01", "x")]), MPMObject("52", "5812"), MPMObject("53", "156"),
                                 MPMObject("58", "CN"), MPMObject("59", "A"), MPMObject("60", "B")])
        #expect(error(noGUID) == .templateWithoutIdentifier("26"))
        #expect(error("000201261") == .truncated)
        let badAmount = MPM.encode([MPMObject("00", "01"), MPMObject("15", "x"), MPMObject("52", "5812"), MPMObject("53", "156"), MPMObject("54", "1,00"),
                                    MPMObject("58", "CN"), MPMObject("59", "A"), MPMObject("60", "B")])
        if case .invalidValue(let id, _)? = error(badAmount) { #expect(id == "54") } else { Issue.record("bad amount accepted") }
        #expect(MPMError(.missingCRC, offset: 12).description.contains("no CRC"))
    }

    @Test("the published CPM vector: 85 CPV01, an application template with AID and track 2; unknown tags kept; refusals")
    func cpm() throws {
        let vector = "hQVDUFYwMWEaTwegAAAAVVVVVw8SNFZ4kBI0WNGRIgESNF8="
        let code = try ConsumerPresentedCode(base64: vector)
        #expect(code.version == "CPV01")
        #expect(code.applications.count == 1)
        #expect(code.value(0x4F)?.hexString == "A0000000555555")
        #expect(code.value(0x57)?.hexString == "1234567890123458D191220112345F")
        #expect(code.base64 == vector)
        // An unknown tag inside and outside the templates survives a round trip.
        let extended = ConsumerPresentedCode(applications: [[TLV(0x4F, [0xA0, 0, 0, 3, 0x33, 1, 1, 1]), TLV(0x9F7F, [1, 2]),
                                                             TLV(0x63, children: [TLV(0x9F26, [UInt8](repeating: 7, count: 8)), TLV(0x9F36, [0, 5])])]],
                                             commonData: [TLV(0x5F2D, Array("zh".utf8))])
        let again = try ConsumerPresentedCode(base64: extended.base64)
        #expect(again == extended)
        #expect(again.value(0x9F7F) == [1, 2])
        #expect(again.value(0x9F36) == [0, 5])
        #expect(again.value(0x5F2D) == Array("zh".utf8))
        #expect(throws: CPMError.notBase64) { try ConsumerPresentedCode(base64: "not base64!") }
        #expect(throws: CPMError.unsupportedVersion("CPV02")) { try ConsumerPresentedCode(base64: Data(TLV(0x85, Array("CPV02".utf8)).encoded).base64EncodedString()) }
    }
}
