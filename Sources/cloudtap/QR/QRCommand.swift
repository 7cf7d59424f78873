import ArgumentParser
import EMV
import Foundation
import PaymentCore
import QR

struct QRCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qr",
        abstract: "EMV QR payloads and QR symbols: build a merchant's code, read any payload, draw a symbol.",
        subcommands: [QRMerchant.self, QRRead.self, QRDraw.self])
}

/// Where a symbol goes: the terminal, or an SVG or PNG file.
struct SymbolOutput: ParsableArguments {
    @Option(help: "Error correction: L, M, Q or H.") var level = "M"
    @Option(help: "Write the symbol as SVG to this file.") var svg: String?
    @Option(help: "Write the symbol as PNG to this file.") var png: String?
    @Flag(help: "Draw light modules as blocks (for dark terminals).") var inverted = false

    func emit(_ text: String) throws {
        guard let level = ["L": QRCode.ErrorCorrection.low, "M": .medium, "Q": .quartile, "H": .high][level.uppercased()] else {
            throw ValidationError("--level is L, M, Q or H")
        }
        let code = try QRCode(text: text, errorCorrection: level)
        if let svg { try code.svg().write(toFile: svg, atomically: true, encoding: .utf8) }
        if let png { try Data(code.png()).write(to: URL(fileURLWithPath: png)) }
        if svg == nil && png == nil { print(code.terminalText(inverted: inverted)) }
        print("QR version \(code.version)-\(level.letter), mask \(code.mask), \(code.size)×\(code.size) modules")
    }
}

extension QRCode.ErrorCorrection {
    var letter: String { ["L", "M", "Q", "H"][rawValue] }
}

struct QRMerchant: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merchant",
        abstract: "A merchant-presented code (EMV MPM) with UnionPay's account information (ID 15): static, or dynamic with an amount.")

    @Option(help: "Acquirer IIN (8 digits).") var acquirer = "01020000"
    @Option(help: "Forwarding IIN (8 digits).") var forwarding = "00090000"
    @Option(help: "Merchant id (15 characters).") var merchant = "MERCHANT0000001"
    @Option(help: "Merchant name (up to 25 characters).") var name = "CLOUDTAP COFFEE"
    @Option(help: "Merchant city (up to 15 characters).") var city = "SHANGHAI"
    @Option(help: "Merchant category code.") var mcc = "5814"
    @Option(help: "Amount (a dynamic code); without it the code is static and the payer keys the amount.") var amount: String?
    @Option(help: "Terminal label (ID 62 sub-ID 07).") var terminal: String?
    @Option(help: "Bill or order reference (ID 62 sub-ID 05); *** asks the payer.") var reference: String?
    @Flag(help: "Print the payload only.") var payloadOnly = false
    @OptionGroup var output: SymbolOutput

    func run() throws {
        guard acquirer.count == 8, forwarding.count == 8, merchant.count == 15 else { throw ValidationError("acquirer and forwarding IINs are 8 characters, the merchant id 15") }
        var additional: [MPMObject] = []
        if let reference { additional.append(MPMObject("05", reference)) }
        if let terminal { additional.append(MPMObject("07", terminal)) }
        let formatted = try amount.map { try Amount($0, currency: .cny).description.split(separator: " ").first.map(String.init) ?? $0 }
        let code = MerchantPresentedCode(
            initiation: amount == nil ? .staticCode : .dynamicCode,
            merchantAccounts: [UnionPayMerchant(acquirerIIN: acquirer, forwardingIIN: forwarding, merchantID: merchant).object],
            merchantCategoryCode: mcc, currency: "156", amount: formatted, countryCode: "CN", merchantName: name, merchantCity: city,
            additionalData: additional)
        let payload = code.payload
        print(payload)
        if !payloadOnly { try output.emit(payload) }
    }
}

struct QRRead: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read",
        abstract: "Read a payload: an EMV MPM text (its CRC checked) or an EMV CPM (base64); prints every data object.")

    @Argument(help: "The payload (as a scanner gives it).") var payload: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        if payload.hasPrefix("000201") {
            let code: MerchantPresentedCode
            do { code = try MerchantPresentedCode(payload: payload) } catch { throw ToolError("MPM: \(error)") }
            var fields: [String: Any] = [
                "mode": "merchant-presented", "initiation": code.initiation == .dynamicCode ? "dynamic" : "static",
                "merchantName": code.merchantName, "merchantCity": code.merchantCity, "currency": code.currency, "mcc": code.merchantCategoryCode,
                "accounts": code.merchantAccounts.map { "\($0.id): \($0.value)" },
            ]
            if let amount = code.amount { fields["amount"] = amount }
            if let up = code.unionPay { fields["unionPay"] = ["acquirerIIN": up.acquirerIIN, "forwardingIIN": up.forwardingIIN, "merchantId": up.merchantID] }
            if !code.prompts.isEmpty { fields["payerKeys"] = code.prompts }
            if json { return try printJSON(fields) }
            print("merchant-presented (\(fields["initiation"]!)), CRC good")
            print("  merchant \(code.merchantName), \(code.merchantCity); MCC \(code.merchantCategoryCode); currency \(code.currency)")
            print("  amount: \(code.amount ?? "none — the payer keys it")")
            for account in code.merchantAccounts { print("  account ID \(account.id): \(account.value)") }
            if let up = code.unionPay { print("  UnionPay: acquirer \(up.acquirerIIN), forwarding \(up.forwardingIIN), merchant \(up.merchantID)") }
            for o in code.additionalData { print("  additional \(o.id): \(o.value)") }
        } else {
            let code: ConsumerPresentedCode
            do { code = try ConsumerPresentedCode(base64: payload) } catch { throw ToolError("CPM: \(error)") }
            if json { return try printJSON(["mode": "consumer-presented", "version": code.version, "tlv": code.objects.encoded().hexString]) }
            print("consumer-presented, \(code.version)")
            print(TLVPrinter().render(code.objects))
        }
    }
}

struct QRDraw: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "draw", abstract: "Draw any text as a QR symbol (terminal, SVG or PNG).")
    @Argument(help: "The text (UTF-8).") var text: String
    @OptionGroup var output: SymbolOutput
    func run() throws { try output.emit(text) }
}

func printJSON(_ object: [String: Any]) throws {
    print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
}
