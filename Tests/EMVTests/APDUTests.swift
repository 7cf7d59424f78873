import Testing
import PaymentCore
@testable import EMV

@Suite("APDUs")
struct APDUTests {
    @Test("the four cases, short and extended, round-trip", arguments: [
        CommandAPDU(cla: 0x00, ins: 0xA4, p1: 0x04, p2: 0x00),
        CommandAPDU(cla: 0x00, ins: 0xB2, p1: 0x01, p2: 0x0C, le: 256),
        CommandAPDU(cla: 0x80, ins: 0xCA, p1: 0x9F, p2: 0x36, le: 5),
        CommandAPDU(cla: 0x00, ins: 0xD6, p1: 0, p2: 0, data: [1, 2, 3]),
        CommandAPDU.selectPPSE,
        CommandAPDU.getProcessingOptions(pdolData: [UInt8](repeating: 0, count: 33)),
        CommandAPDU(cla: 0x00, ins: 0xD6, p1: 0, p2: 0, data: [UInt8](repeating: 7, count: 300)),
        CommandAPDU(cla: 0x00, ins: 0xB0, p1: 0, p2: 0, le: 65_536),
        CommandAPDU(cla: 0x00, ins: 0xB0, p1: 0, p2: 0, le: 1000),
        CommandAPDU(cla: 0x00, ins: 0x2A, p1: 0x9E, p2: 0x9A, data: [UInt8](repeating: 1, count: 400), le: 65_536),
    ])
    func roundTrip(apdu: CommandAPDU) throws {
        #expect(try CommandAPDU(bytes: apdu.encoded) == apdu)
    }

    @Test("encodings follow ISO/IEC 7816-4")
    func encodings() throws {
        #expect(CommandAPDU.selectPPSE.encoded.hexString == "00A404000E325041592E5359532E444446303100")
        #expect(CommandAPDU.readRecord(sfi: 1, record: 1).encoded.hexString == "00B2010C00")
        #expect(CommandAPDU.getData(0x9F36).encoded.hexString == "80CA9F3600")
        #expect(CommandAPDU(cla: 0, ins: 0xB0, p1: 0, p2: 0, le: 65_536).encoded.hexString == "00B00000000000")
    }

    @Test("malformed commands are errors that map to status 6700", arguments: ["00A404", "00A404000000", "00A404000500", "00A4040005010203", "00A40400000005010203"])
    func malformed(hexText: String) throws {
        do {
            _ = try CommandAPDU(bytes: [UInt8](hex: hexText))
            Issue.record("\(hexText) parsed")
        } catch let error as APDUError {
            #expect(error.statusWord == StatusWord.wrongLength)
        }
    }

    @Test("responses and status words")
    func responses() throws {
        let r = try ResponseAPDU(bytes: [0x6F, 0x00, 0x90, 0x00])
        #expect(r.data == [0x6F, 0x00])
        #expect(r.statusWord == .success)
        #expect(r.statusWord.isSuccess)
        #expect(StatusWord(0x6A82).meaning == "file or application not found")
        #expect(StatusWord(0x63C2).meaning == "verification failed, 2 tries left")
        #expect(StatusWord(0x6C10).meaning == "wrong Le; exact length is 16")
        #expect(StatusWord(0x6985).description == "6985")
        #expect(throws: APDUError.responseTooShort(1)) { try ResponseAPDU(bytes: [0x90]) }
    }
}
