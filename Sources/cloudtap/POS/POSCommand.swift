import ArgumentParser
import EMV
import Foundation
import ISO8583
import ISO8583Link
import PCSC
import PaymentCore
import QR
import PaymentCrypto
import Terminal
import Wallet

struct POSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pos", abstract: "The contactless POS: take an amount, read a card, ask for the PIN, authorize.", subcommands: [Tap.self, Scan.self, Readers.self])

    struct Readers: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The PC/SC readers pcscd knows.")
        func run() throws {
            for reader in try PCSCContext().readers() { print(reader) }
        }
    }

    struct Tap: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One sale: read the card over PC/SC (or a wallet directory in process), print the APDU trace and the 0200; with --port, send it.",
            discussion: """
                The PIN, when the card asks for it, is read from --pin or typed at the prompt, and enciphered at once as an \
                ISO 9564 format 0 block under the terminal PIN key (--tpk). Card data is masked in everything printed.
                """)
        @Option(help: "Amount in major units, e.g. 38.50.") var amount: String
        @Option(help: "Currency (ISO 4217 code).") var currency = "CNY"
        @Option(help: "PC/SC reader name.") var reader = "Virtual PCD 00 00"
        @Option(help: "Read a wallet directory in process instead of a reader.") var phone: String?
        @Option(help: "The PIN (otherwise asked for when the card wants it).") var pin: String?
        @Option(help: "Terminal PIN key, 32 hex digits.") var tpk = "7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A"
        @Option(help: "CVM limit in minor units (at or above it the card asks for PIN).") var cvmLimit: Int64 = 100_000
        @Option(help: "Switch host.") var host = "127.0.0.1"
        @Option(help: "Switch port (terminal dialect); without it the 0200 is only printed.") var port: Int?
        @Option(help: "Terminal id (DE41).") var terminalID = "TERM0001"
        @Option(help: "Merchant id (DE42).") var merchantID = "MERCHANT0000001"
        @Option(help: "Seconds to keep sending a reversal the switch has not taken before giving up (status 2).") var reversalWait = 30
        @Flag(help: "Print only the outcome.") var quiet = false

        func run() throws {
            guard let currency = Currency(code: currency) else { throw ToolError("--currency: unknown currency") }
            let amount = try checked("--amount") { try Amount(self.amount, currency: currency) }
            let tpk = KeyTools.oddParity(try parseHex(self.tpk, option: "--tpk", lengths: [16, 24]))
            let configuration = TerminalConfiguration(cvmLimit: cvmLimit, currency: currency)
            let merchant = MerchantTerminal(terminalID: terminalID, merchantID: merchantID, acquirerID: "01020000",
                                            merchantNameLocation: "CLOUDTAP TEST SHOP       SHANGHAI     CN")
            let given = pin
            let pinPad = SoftwarePINPad(terminalPINKey: tpk) {
                if let given { return given }
                print("PIN required — enter PIN: ", terminator: "")
                return readLine(strippingNewline: true).flatMap { $0.isEmpty ? nil : $0 }
            }
            let phone = self.phone, reader = self.reader, host = self.host, port = self.port, quiet = self.quiet, reversalWait = self.reversalWait
            try blockingAsync { () async throws -> Void in
                let transport: any CardTransport
                if let phone {
                    let wallet = try PhoneCommand.WalletOptions.parse(["--dir", phone]).open()
                    let card = SharedCardApplet(wallet.applet())
                    transport = InProcessTransport { card.process($0) }
                } else {
                    let context = try PCSCContext()
                    print("hold the card or phone to \(reader)…")
                    transport = try await PCSCTransport.waitForCard(in: reader, context: context, timeout: .seconds(30))
                }
                let (authorizationHost, client) = try POSCommand.link(host: host, port: port, terminalID: merchant.terminalID)
                let pos = PointOfSale(configuration: configuration, merchant: merchant, pinPad: pinPad, host: authorizationHost)
                let result = await pos.sale(amount: amount, over: transport)
                let undelivered = await POSCommand.close(pos, client: client, wait: reversalWait)
                if !quiet { try Self.show(result) }
                print("outcome: \(result.outcome)")
                if let receipt = result.receipt { print("\n" + receipt) }
                try POSCommand.check(undelivered)
            }
        }

        static func show(_ result: SaleResult) throws {
            print("APDU trace:")
            for exchange in result.trace {
                let sw = exchange.response.suffix(2)
                let status = (try? ResponseAPDU(bytes: exchange.response).statusWord.meaning) ?? ""
                print("  → \(MaskedAPDU.command(exchange.command))")
                print("  ← \(MaskedAPDU.response(exchange.response)) (\(sw.hexString) \(status))")
            }
            if let request = result.request {
                print("authorization request (terminal dialect, masked):")
                print(request.message.describe(spec: try MessageSpec.dialect("terminal"), reveal: false))
            }
        }
    }
}

extension POSCommand {
    /// Closes the link after the sale. A terminal does not forget a reversal: one not yet
    /// delivered is tried again for up to `wait` seconds first (every half second, then every
    /// two). Returns how many are left. (Without a link nothing was sent, so there is nothing
    /// to reverse.)
    static func close(_ pos: PointOfSale, client: ISO8583Client?, wait: Int) async -> Int {
        guard let client else { return 0 }
        let start = ContinuousClock.now, deadline = start + .seconds(wait)
        var left = await pos.pendingReversals.count
        if left > 0, wait > 0 { print("the switch has not taken the reversal; sending it again for up to \(wait) s") }
        while left > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: ContinuousClock.now - start < .seconds(2) ? .milliseconds(500) : .seconds(2))
            left = await pos.retryReversals()
        }
        await client.shutdown()
        return left
    }

    /// Ends the command with status 2 when a reversal was left undelivered.
    static func check(_ undelivered: Int) throws {
        guard undelivered > 0 else { return }
        print("the reversal of this sale was not delivered: the cardholder may have been charged; send it when the switch answers again")
        throw ExitCode(2)
    }

    /// The terminal's link to the switch (terminal dialect, sign-on first), or a stand-in that
    /// sends nothing when no port is given.
    static func link(host: String, port: Int?, terminalID: String) throws -> (any AuthorizationHost, ISO8583Client?) {
        guard let port else { return (PrintOnlyHost(), nil) }
        let client = try Demo.terminalLink(host: host, port: port, terminalID: terminalID)
        return (client, client)
    }

    struct Scan: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "scan",
            abstract: "Scan a consumer-presented QR code (the text a scanner reads, base64) and authorize a sale with it (DE22 032).")

        @Argument(help: "The code, as `cloudtap phone show-qr` prints it.") var code: String
        @Option(help: "Amount in major units, e.g. 38.50.") var amount: String
        @Option(help: "Switch host.") var host = "127.0.0.1"
        @Option(help: "Switch port (terminal dialect); without it the 0200 is only printed.") var port: Int?
        @Option(help: "Terminal id (DE41).") var terminalID = "TERM0001"
        @Option(help: "Merchant id (DE42).") var merchantID = "MERCHANT0000001"
        @Option(help: "Seconds to keep sending a reversal the switch has not taken before giving up (status 2).") var reversalWait = 30

        func run() throws {
            let amount = try checked("--amount") { try Amount(self.amount, currency: .cny) }
            let reversalWait = self.reversalWait
            let scanned: ConsumerPresentedCode
            do { scanned = try ConsumerPresentedCode(base64: code) } catch { throw ToolError("the code: \(error)") }
            let merchant = MerchantTerminal(terminalID: terminalID, merchantID: merchantID, acquirerID: "01020000",
                                            merchantNameLocation: "CLOUDTAP TEST SHOP       SHANGHAI     CN")
            let host = self.host, port = self.port
            try blockingAsync { () async throws -> Void in
                let (authorizationHost, client) = try POSCommand.link(host: host, port: port, terminalID: merchant.terminalID)
                let pos = PointOfSale(configuration: TerminalConfiguration(), merchant: merchant, pinPad: nil, host: authorizationHost)
                let result = await pos.sale(amount: amount, presented: scanned)
                let undelivered = await POSCommand.close(pos, client: client, wait: reversalWait)
                if let request = result.request {
                    print("authorization request (terminal dialect, masked):")
                    print(request.message.describe(spec: try MessageSpec.dialect("terminal"), reveal: false))
                }
                print("outcome: \(result.outcome)")
                if let receipt = result.receipt { print("\n" + receipt) }
                try POSCommand.check(undelivered)
            }
        }
    }
}

/// Stands in for the switch when no port is given: nothing is sent, the sale reports no answer.
struct PrintOnlyHost: AuthorizationHost {
    struct NotSent: Error, CustomStringConvertible { var description: String { "not sent (no --port)" } }
    func send(_ request: Message) async throws -> Message { throw NotSent() }
}

/// APDUs for printing: the card data a response carries (PAN, track 2) masked.
enum MaskedAPDU {
    static func command(_ bytes: [UInt8]) -> String { bytes.hexString }

    static func response(_ bytes: [UInt8]) -> String {
        guard bytes.count > 2, let tlvs = try? TLV.decodeTree(Array(bytes.dropLast(2))) else { return bytes.hexString }
        return "\n" + TLVPrinter().render(tlvs).split(separator: "\n").map { "      " + $0 }.joined(separator: "\n")
    }
}
