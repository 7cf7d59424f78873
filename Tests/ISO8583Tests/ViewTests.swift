import Testing
import EMV
import PaymentCore
@testable import ISO8583

@Suite("Typed views")
struct ViewTests {
    static func request() throws -> AuthorizationRequest {
        AuthorizationRequest(
            pan: try PAN("6234567890123456780"), amount: try Amount("38.50", currency: .cny), transmissionDateTime: "1126153045",
            stan: "000123", localTime: "153045", localDate: "1126", expiry: "2912", posEntryMode: "072", cardSequenceNumber: "001",
            acquirerID: "00010000", track2: "6234567890123456780=29122010000000000", terminalID: "TERM0001", merchantID: "MERCHANT0000001",
            iccData: [TLV(0x9F26, [1, 2, 3, 4, 5, 6, 7, 8]), TLV(0x9F02, try BCD.pack("3850", byteCount: 6)), TLV(0x5F2A, [0x01, 0x56]),
                      TLV(0x9A, [0x26, 0x11, 0x26]), TLV(0x5F34, [0x01]), TLV(0xDF7F, [0xAA])],
            privateData: [("TK", "6234567890123456780"), ("SM", "4104")])
    }

    @Test("an authorization request survives every dialect", arguments: ["network", "terminal", "iso87ascii"])
    func request(dialect: String) throws {
        let spec = try MessageSpec.dialect(dialect)
        let r = try Self.request()
        let back = try AuthorizationRequest(message: spec.unpack(spec.pack(r.message)))
        #expect(back == r)
        #expect(back.privateData.map(\.0) == ["TK", "SM"])
        #expect(back.iccData?.last?.tag == 0xDF7F)
        #expect(EMVFieldMapping.mismatches(in: r.message).isEmpty)
    }

    @Test("a description never shows the token DE63 TK carries, only its masked subfield")
    func tokenInDE63Masked() throws {
        let text = try Self.request().message.describe(spec: try MessageSpec.dialect("network"))
        #expect(!text.contains("6234567890123456780"))
        #expect(text.contains(".TK"))
        #expect(try Self.request().message.describe(spec: try MessageSpec.dialect("network"), reveal: true).contains("6234567890123456780"))
    }

    @Test("the masked record describes as the message does, and keeps no card number, track or PIN block", arguments: ["network", "terminal", "iso87ascii"])
    func maskedRecord(dialect: String) throws {
        let spec = try MessageSpec.dialect(dialect)
        var request = try Self.request()
        request.pinBlock = [0x04, 0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE]
        // As received from the wire (header values included), and as built.
        for message in [try spec.unpack(spec.pack(request.message)), request.message] {
            let record = try #require(message.masked(spec: spec))
            let back = try Message(mti: message.mti, masked: record)
            #expect(back.describe(spec: spec) == message.describe(spec: spec))
            for secret in [Array("6234567890123456780".utf8), Array("29122010000000000".utf8), request.pinBlock!] {
                #expect(!record.indices.contains { record[$0...].starts(with: secret) })
            }
        }
        // EMV data carrying the card number cannot be masked in place: no record.
        var withPAN = request
        withPAN.iccData = (request.iccData ?? []) + [TLV(0x5A, try [UInt8](hex: "6234567890123456780F"))]
        #expect(withPAN.message.masked(spec: spec) == nil)
        // A record that is not one is refused.
        #expect(throws: ISO8583Error.self) { _ = try Message(mti: "0200", masked: [0x43, 0x54, 0x4D, 0x31, 0x02, 0x00, 0x09, 0x41]) }
        #expect(throws: ISO8583Error.self) { _ = try Message(mti: "0200", masked: Array("MTI 0200".utf8)) }
    }

    @Test("DE55 that disagrees with DE4, DE49, DE23 or DE13 is found")
    func mismatches() throws {
        var m = try Self.request().message
        m[4] = "000000003851"
        m[23] = "002"
        let found = EMVFieldMapping.mismatches(in: m)
        #expect(found.count == 2)
        #expect(found[0].contains("9F02"))
    }

    @Test("a response echoes the request and carries the ARPC")
    func response() throws {
        let req = try Self.request().message
        let resp = try AuthorizationResponse(responding: req, responseCode: "00", authorizationCode: "A1B2C3",
                                             iccData: [TLV(0x91, [1, 2, 3, 4, 5, 6, 7, 8, 0x30, 0x30])])
        let spec = MessageSpec.terminal
        let back = try AuthorizationResponse(message: spec.unpack(spec.pack(resp.message)))
        #expect(back.mti == .financialResponse)
        #expect(back.isApproved)
        #expect(back.echoed[11] == "000123")
        #expect(back.echoed[41] == "TERM0001")
        #expect(back.issuerAuthenticationData?.count == 10)
        #expect(throws: ISO8583Error.self) { try AuthorizationResponse(message: req) }
    }

    @Test("a reversal names the original in DE90")
    func reversal() throws {
        let req = try Self.request().message
        let rev = ReversalRequest(original: req, stan: "000124", transmissionDateTime: "1126153200")
        let spec = MessageSpec.network
        let m = try spec.unpack(spec.pack(rev.message))
        #expect(m.mti == "0400")
        let de90 = try m.subfields(90, spec: spec)
        #expect(de90["1"] == "0200")
        #expect(de90["2"] == "000123")
        #expect(de90["3"] == "1126153045")
        #expect(m[39] == "98")
    }

    @Test("network management in both styles", arguments: NetworkManagementCode.allCases)
    func networkManagement(code: NetworkManagementCode) throws {
        let req = NetworkManagement(code: code, stan: "000007", transmissionDateTime: "1126153045", terminalID: "TERM0001",
                                    merchantID: "MERCHANT0000001", institutionID: "00010000",
                                    keyData: code == .keyExchange ? [UInt8](repeating: 0x11, count: 16) : nil)
        for (style, spec) in [(NetworkManagement.Style.network, MessageSpec.network), (.terminal, MessageSpec.terminal)] {
            let m = try spec.unpack(spec.pack(req.message(style: style)))
            let back = try NetworkManagement(message: m)
            #expect(back.code == code)
            #expect(back.stan == "000007")
            #expect(back.keyData == req.keyData)
            let resp = back.response()
            let rm = try spec.unpack(spec.pack(resp.message(style: style)))
            #expect(rm.mti == "0810")
            #expect(rm[39] == "00")
        }
    }

    @Test("MTI helpers")
    func mti() {
        #expect(MessageType.responseMTI(for: "0200") == "0210")
        #expect(MessageType.responseMTI(for: "0420") == "0430")
        // A repeat is answered as its first sending.
        #expect(MessageType.responseMTI(for: "0401") == "0410")
        #expect(MessageType.responseMTI(for: "0201") == "0210")
        #expect(MessageType.responseMTI(for: "0423") == "0432")
        #expect(MessageType.original(of: "0421") == "0420")
        #expect(MessageType.original(of: "0200") == "0200")
        #expect(MessageType.original(of: "04") == "04")
        #expect(MessageType.responseMTI(for: "0210") == nil)
        #expect(MessageType.responseMTI(for: "0800") == "0810")
        #expect(MessageType.responseMTI(for: "02A0") == nil)
        #expect(MessageType.responseMTI(for: "020") == nil)
        #expect(MessageType.responseMTI(for: "0٢00") == nil)  // an Arabic-Indic digit is not an MTI digit
        #expect(!MessageType.isRequest("0810") && !MessageType.isRequest("08X0"))
        #expect(MessageType.isRequest("0800"))
        #expect(!MessageType.isRequest("0810"))
    }
}
