import ArgumentParser
import EMV
import Foundation
import ISO8583
import PaymentCore

struct BenchISO8583: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "iso8583",
        abstract: "ns to pack and to unpack a contactless 0200 with a 120-byte DE55 in each dialect.",
        discussion: "Run a release build: swift run -c release cloudtap bench iso8583.")

    @Option(help: "Seconds per measurement.") var seconds = 0.5

    /// The contactless 0200 of the benchmark: 120-byte DE55 (DESIGN §3 tag list, cloud IAD).
    static func sampleRequest() throws -> AuthorizationRequest {
        let icc: [TLV] = [
            TLV(0x9F26, try [UInt8](hex: "1A2B3C4D5E6F7081")), TLV(0x9F27, [0x80]), TLV(0x9F10, try [UInt8](hex: "0D014103A000000100EA60000701")),
            TLV(0x9F37, try [UInt8](hex: "12345678")), TLV(0x9F36, [0x00, 0x2A]), TLV(0x95, [0, 0, 0, 0, 0]), TLV(0x9A, [0x26, 0x11, 0x26]),
            TLV(0x9C, [0x00]), TLV(0x9F02, try BCD.pack("3850", byteCount: 6)), TLV(0x5F2A, [0x01, 0x56]), TLV(0x82, [0x7C, 0x00]),
            TLV(0x9F1A, [0x01, 0x56]), TLV(0x9F03, [0, 0, 0, 0, 0, 0]), TLV(0x9F33, [0xE0, 0xE1, 0xC8]), TLV(0x9F34, [0x02, 0x00, 0x00]),
            TLV(0x84, try [UInt8](hex: "A000000333010101")), TLV(0x9F41, [0x00, 0x00, 0x01, 0x23]),
        ]
        return AuthorizationRequest(
            pan: try PAN("6234567890123456780"), amount: try Amount("38.50", currency: .cny), transmissionDateTime: "1126153045",
            stan: "000123", localTime: "153045", localDate: "1126", expiry: "2912", posEntryMode: "072", cardSequenceNumber: "001",
            acquirerID: "00010000", forwardingID: "00010000", track2: "6234567890123456780=29122010000000000", retrievalReference: "000000000123",
            terminalID: "TERM0001", merchantID: "MERCHANT0000001", merchantNameLocation: "CLOUDTAP TEST MERCHANT   SHANGHAI     CN", iccData: icc)
    }

    func run() throws {
        #if DEBUG
        print("warning: debug build; use `swift run -c release cloudtap bench iso8583` for real figures\n")
        #endif
        let request = try Self.sampleRequest()
        print("contactless 0200, DE55 \(request.iccData!.encoded().count) bytes, \(request.message.fieldNumbers.count) fields")
        for name in ["network", "terminal", "iso87ascii"] {
            let spec = try MessageSpec.dialect(name)
            var message = request.message
            if name == "terminal" { message[43] = nil }
            let bytes = try spec.pack(message)
            let pack = try measure(seconds: seconds) { UInt64(try spec.pack(message).count) }
            let unpack = try measure(seconds: seconds) { UInt64(try spec.unpack(bytes).mti.utf8.count) }
            let peek = try measure(seconds: seconds) { UInt64(try spec.peek(bytes).mti.utf8.count) }
            print(String(format: "%-11@ %4d bytes  pack %7.0f ns  unpack %7.0f ns  pack+unpack %7.0f ns  (goal ≤ 3000)  peek %5.0f ns",
                         name as NSString, bytes.count, pack, unpack, pack + unpack, peek))
        }
    }
}
