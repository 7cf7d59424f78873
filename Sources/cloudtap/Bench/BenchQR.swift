import ArgumentParser
import Foundation
import PaymentCore
import QR

struct BenchQR: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qr",
        abstract: "EMV QR: payload build + parse per second, symbol encode per second, a dynamic code end to end (payload + symbol + PNG).",
        discussion: "Run a release build: swift run -c release cloudtap bench qr.")

    @Option(help: "Seconds per measurement.") var seconds = 1.0

    func run() throws {
        #if DEBUG
        print("warning: debug build; use `swift run -c release cloudtap bench qr` for real figures\n")
        #endif
        var n: UInt64 = 0
        func dynamicCode() -> MerchantPresentedCode {
            n &+= 1
            return MerchantPresentedCode(
                initiation: .dynamicCode,
                merchantAccounts: [UnionPayMerchant(acquirerIIN: "01020000", forwardingIIN: "00090000", merchantID: "MERCHANT0000001").object],
                merchantCategoryCode: "5814", currency: "156", amount: "\(n % 100_000).\(String(format: "%02d", Int(n % 100)))", countryCode: "CN",
                merchantName: "CLOUDTAP COFFEE", merchantCity: "SHANGHAI", additionalData: [MPMObject("05", "ORDER\(n)"), MPMObject("07", "TERM0001")],
                language: [MPMObject("00", "ZH"), MPMObject("01", "云端咖啡")])
        }
        let sample = dynamicCode().payload
        let sampleCode = try QRCode(text: sample)
        print("dynamic MPM payload: \(sample.unicodeScalars.count) characters, \(sample.utf8.count) bytes → QR \(sampleCode.version)-M, \(sampleCode.size)² modules")
        let build = measure(seconds: seconds) { UInt64(dynamicCode().payload.utf8.count) }
        let parse = try measure(seconds: seconds) { UInt64(try MerchantPresentedCode(payload: sample).merchantName.count) }
        let encode = try measure(seconds: seconds) { UInt64(try QRCode(text: sample).size) }
        let png = measure(seconds: seconds) { UInt64(sampleCode.png().count) }
        let endToEnd = try measure(seconds: seconds) { UInt64(try QRCode(text: dynamicCode().payload).png().count) }
        func line(_ what: String, _ ns: Double) -> String {
            what.padding(toLength: 46, withPad: " ", startingAt: 0) + String(format: "%10.1f µs  %10.0f /s", ns / 1000, 1e9 / ns)
        }
        print(line("payload build (MPM, CRC)", build))
        print(line("payload parse (MPM, CRC checked)", parse))
        print(line("symbol encode (RS, 8 masks scored)", encode))
        print(line("PNG (scale 4, 1-bit)", png))
        print(line("dynamic code end to end (payload+symbol+PNG)", endToEnd) + "   (goal ≤ 1000 µs)")
    }
}
