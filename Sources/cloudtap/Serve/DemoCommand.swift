import ArgumentParser
import CloudWire
import EMV
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import ISO8583
import ISO8583Link
import Logging
import NIOCore
import NIOPosix
import PaymentCore
import PaymentCrypto
import QR
import Switch
import Terminal
import Wallet

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "The whole story: bind a card, pay offline with the phone at a POS, with and without PIN, lose the phone, replenish, the books.",
        discussion: """
            Runs against a network: the one named by --api and --switch (its credentials in --data-dir), else one \
            already serving on the default ports from ./cloudtap-data, else a `cloudtap serve` it starts itself on \
            loopback ports in a fresh data directory (and stops at the end). It talks to the network only as the bank \
            app, the phone, the POS and the operator would: HTTP to the API, ISO 8583 to the switch, APDUs between the \
            phone and the POS. Card data is masked in everything printed.
            """)

    @Option(help: "HTTP API of a running network (with --switch and --data-dir).") var api: String?
    @Option(name: .customLong("switch"), help: "Switch of a running network, host:port.") var switchAddress: String?
    @Option(help: "Data directory: the running network's, or the one for the network the demo starts (default: a new temporary one).") var dataDir: String?
    @Flag(help: "Print every APDU and the whole 0200/0210.") var verbose = false

    func validate() throws {
        if (api == nil) != (switchAddress == nil) { throw ValidationError("--api and --switch go together") }
    }

    func run() throws {
        let options = self
        try blockingAsync { () async throws -> Void in
            let network = try await DemoNetwork.find(api: options.api, switchAddress: options.switchAddress, dataDirectory: options.dataDir)
            do {
                try await Demo(network: network, verbose: options.verbose).run()
            } catch {
                network.stop()
                throw error
            }
            network.stop()
        }
    }
}

/// The network the demo talks to, and the `serve` child process when the demo started it.
struct DemoNetwork: Sendable {
    let api: URL
    let switchHost: String
    let switchPort: Int
    let credentials: NodeCredentials
    let dataDirectory: String
    let child: Process?

    static func find(api: String?, switchAddress: String?, dataDirectory: String?) async throws -> DemoNetwork {
        if let api, let switchAddress {
            return try connect(api: api, switchAddress: switchAddress, dataDirectory: dataDirectory ?? "cloudtap-data", child: nil)
        }
        // One already serving with the defaults?
        let defaults = NodeConfiguration()
        if dataDirectory == nil, FileManager.default.fileExists(atPath: (defaults.dataDirectory as NSString).appendingPathComponent("credentials.json")),
           await answers("http://\(defaults.httpHost):\(defaults.httpPort)/health") {
            print("Using the network already serving on \(defaults.httpHost):\(defaults.httpPort) (data directory \(defaults.dataDirectory)).")
            return try connect(api: "http://\(defaults.httpHost):\(defaults.httpPort)", switchAddress: "\(defaults.httpHost):\(defaults.switchPort)",
                               dataDirectory: defaults.dataDirectory, child: nil)
        }
        return try await startServe(dataDirectory: dataDirectory ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("cloudtap-demo-\(UUID().uuidString.prefix(8))"))
    }

    static func connect(api: String, switchAddress: String, dataDirectory: String, child: Process?) throws -> DemoNetwork {
        guard let url = URL(string: api) else { throw ToolError("--api is a URL") }
        let target = try HostPort(switchAddress, what: "--switch")
        return DemoNetwork(api: url, switchHost: target.host, switchPort: target.port, credentials: try NodeCredentials.read(from: dataDirectory),
                           dataDirectory: dataDirectory, child: child)
    }

    static func answers(_ url: String) async -> Bool {
        guard let url = URL(string: url) else { return false }
        var request = URLRequest(url: url)
        request.timeoutInterval = 1
        guard let (_, response) = try? await URLSession.shared.data(for: request) else { return false }
        return (response as? HTTPURLResponse)?.statusCode == 200
    }

    /// Starts `cloudtap serve` (this same executable) on ports the system picks and reads them
    /// from its first line.
    static func startServe(dataDirectory: String) async throws -> DemoNetwork {
        let serve = Process()
        serve.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        serve.arguments = ["serve", "--data-dir", dataDirectory, "--http-port", "0", "--switch-port", "0", "--log-level", "error"]
        let output = Pipe()
        serve.standardOutput = output
        serve.standardError = FileHandle.standardError
        try serve.run()
        var text = ""
        let reader = output.fileHandleForReading
        while !text.contains("credentials:") {
            let chunk = reader.availableData
            if chunk.isEmpty { throw ToolError("cloudtap serve exited before it was ready (status \(serve.isRunning ? 0 : serve.terminationStatus))") }
            text += String(decoding: chunk, as: UTF8.self)
        }
        // The child's later lines are not needed; keep its pipe drained so it never blocks.
        Thread.detachNewThread { while !reader.availableData.isEmpty {} }
        guard let http = Self.port(after: "HTTP on http://127.0.0.1:", in: text), let switchPort = Self.port(after: "switch on 127.0.0.1:", in: text) else {
            serve.terminate()
            throw ToolError("could not read serve's ports from: \(text)")
        }
        print("Started `cloudtap serve` (pid \(serve.processIdentifier)) for the demo.")
        return try connect(api: "http://127.0.0.1:\(http)", switchAddress: "127.0.0.1:\(switchPort)", dataDirectory: dataDirectory, child: serve)
    }

    static func port(after marker: String, in text: String) -> Int? {
        guard let r = text.range(of: marker) else { return nil }
        return Int(text[r.upperBound...].prefix { $0.isNumber })
    }

    /// Stops the serve the demo started (SIGTERM: its graceful shutdown).
    func stop() {
        guard let child, child.isRunning else { return }
        child.terminate()
        child.waitUntilExit()
    }
}

struct Demo {
    let network: DemoNetwork
    let verbose: Bool

    func step(_ n: Int, _ title: String) { print("\n\(n). \(title)") }

    func run() async throws {
        let credentials = network.credentials
        print("CloudTap demo — HTTP API on \(network.api.host ?? ""):\(network.api.port ?? 0), switch (ISO 8583) on \(network.switchHost):\(network.switchPort)")
        print("data directory: \(network.dataDirectory)")

        let api = network.api
        let requestorKey = credentials.requestorKeys["WALLET00001"] ?? ""
        let bankKey = credentials.bankKeys["BANKA"] ?? ""
        let http = DemoHTTP(base: api)

        step(1, "Two banks are on the network")
        let banks = try await http.call("GET", "/v1/operator/banks", auth: credentials.operatorKey)
        for bank in banks["banks"] as? [[String: Any]] ?? [] {
            let ranges = (bank["binRanges"] as? [[String: Any]] ?? []).map { "\($0["kind"] ?? "") \($0["low"] ?? "")–\($0["high"] ?? "")" }.joined(separator: ", ")
            print("   \(bank["id"] ?? "") \(bank["name"] ?? ""): \(ranges); keys by KCV: " +
                  (bank["keys"] as? [[String: Any]] ?? []).map { "\($0["usage"] ?? "") \($0["kcv"] ?? "")" }.joined(separator: " "))
        }

        step(2, "ZHANG SAN binds her Bank A card in the bank app (card number, expiry, CVN2 check skipped, device key)")
        let phone = try Wallet(store: MemorySecureStore(), deviceID: "zhang-san-phone-\(UUID().uuidString.prefix(6))")
        let card = "6210220110002707354"
        let enrollment = try await http.call("POST", "/v1/enrollments", auth: requestorKey, requestor: "WALLET00001", body: [
            "pan": card, "expiry": "2912", "holderName": "ZHANG SAN", "deviceId": phone.deviceID,
            "devicePublicKey": phone.devicePublicKey.x963Representation.base64EncodedString(),
        ])
        print("   POST /v1/enrollments → 202, one-time code sent to \(enrollment["maskedMobile"] ?? "")")
        let outbox = try await http.call("GET", "/v1/operator/sms?mobileEndsWith=5678", auth: credentials.operatorKey)
        let sms = (outbox["messages"] as? [[String: Any]])?.last?["text"] as? String ?? ""
        print("   SMS (GET /v1/operator/sms, the SMS gateway's stand-in): \"\(sms)\"")
        let code = Self.oneTimeCode(in: sms)
        let token = try await http.call("POST", "/v1/enrollments/\(enrollment["enrollmentId"] ?? 0)/otp", auth: requestorKey, requestor: "WALLET00001", body: ["code": code])
        let tokenID = Int64(token["id"] as? Int ?? 0)
        print("   POST …/otp → 201: stand-in card \(token["maskedToken"] ?? "") (\(token["state"] ?? "")), PAR \(token["par"] ?? "")")

        step(3, "The phone fetches its card (sealed to its device key) and limited-use keys")
        let cloud = HTTPCloudConnection(baseURL: api, requestorID: "WALLET00001", apiKey: requestorKey)
        let profile = try await phone.provision(cardID: "bank-a", tokenID: tokenID, from: cloud)
        let keys = try await phone.replenishIfNeeded(cardID: "bank-a", from: cloud, force: true)
        print("   card \((try? PAN(profile.pan))?.masked ?? "") on the phone, \(keys) limited-use keys")
        print("   The phone goes offline (airplane mode). Paying needs no network.")

        let tpk = try [UInt8](hex: credentials.terminalPINKeys["TERM0001"] ?? "")
        let link = try Self.terminalLink(host: network.switchHost, port: network.switchPort, terminalID: "TERM0001")
        defer { Task { await link.shutdown() } }
        let pos = PointOfSale(configuration: TerminalConfiguration(), merchant: Self.shop, pinPad: SoftwarePINPad(terminalPINKey: tpk) {
            print("   [PIN pad beeps] the customer keys her PIN: ******")
            return "135790"
        }, host: link, firstSTAN: UInt32.random(in: 1...900_000))
        let applet = SharedCardApplet(phone.applet())
        let reader = InProcessTransport { applet.process($0) }

        step(4, "The cashier keys 38.50 CNY; she holds the phone to the POS")
        try show(await pos.sale(amount: try Amount("38.50", currency: .cny), over: reader), receipt: false)

        step(5, "The cashier keys 1,288.00 CNY; above the no-PIN limit")
        try show(await pos.sale(amount: try Amount("1288.00", currency: .cny), over: reader), receipt: true)

        step(6, "At the next shop she pays 64.00 CNY by showing a QR code; the cashier scans it")
        let shown = try phone.consumerPresentedCode(cardID: "bank-a")
        let symbol = try QRCode(text: shown.base64, errorCorrection: .medium)
        print("   the phone shows an EMV consumer-presented code (CPV01, \(shown.base64.count) characters, QR \(symbol.version)-M):")
        print(symbol.terminalText(border: 1).split(separator: "\n").map { "      " + $0 }.joined(separator: "\n"))
        try show(await pos.sale(amount: try Amount("64.00", currency: .cny), presented: try ConsumerPresentedCode(base64: shown.base64)), receipt: false)
        print("   A photo of the same code, tried again:")
        try show(await pos.sale(amount: try Amount("64.00", currency: .cny), presented: try ConsumerPresentedCode(base64: shown.base64)), receipt: false)

        step(7, "At a tea shop the cashier's screen shows a QR code for 18.00 CNY; she scans it with the bank app and pays")
        let teaShop = MerchantPresentedCode(
            initiation: .dynamicCode, merchantAccounts: [UnionPayMerchant(acquirerIIN: "01020000", forwardingIIN: "00090000", merchantID: "MERCHANT0000002").object],
            merchantCategoryCode: "5814", currency: "156", amount: "18.00", countryCode: "CN", merchantName: "CLOUDTAP TEA", merchantCity: "SHANGHAI",
            additionalData: [MPMObject("05", "ORDER-77"), MPMObject("07", "TEA00001")], language: [MPMObject("00", "ZH"), MPMObject("01", "云端茶馆")])
        let scanned = try MerchantPresentedCode(payload: teaShop.payload)
        print("   the screen's code (EMV MPM, CRC \(teaShop.payload.suffix(4))): \(teaShop.payload)")
        print("   the app reads: \(scanned.language.first { $0.id == "01" }?.value ?? scanned.merchantName), \(scanned.amount ?? "?") CNY, UnionPay merchant \(scanned.unionPay?.merchantID ?? "?")")
        let paid = try await cloud.payMerchant(tokenID: tokenID, payload: scanned.payload, amount: nil,
                                               credential: try phone.merchantPaymentCredential(cardID: "bank-a", amount: try Amount("18.00", currency: .cny)), wallet: phone)
        print("   POST /v1/tokens/\(tokenID)/qr-payments (device-signed) → \(paid.approved ? "approved, code \(paid.authorizationCode ?? "")" : "declined \(paid.responseCode)")")
        let till = try await http.call("GET", "/v1/merchants/MERCHANT0000002/qr-payments", auth: bankKey, bank: "BANKA")
        let latest = (till["payments"] as? [[String: Any]])?.last
        print("   the shop's POS polls GET /v1/merchants/MERCHANT0000002/qr-payments: order \(latest?["reference"] ?? ""), " +
              "\(Amount(minorUnits: Int64(latest?["amount"] as? Int ?? 0), currency: .cny)), answer \(latest?["responseCode"] ?? "")")

        step(8, "She loses the phone; Bank A suspends the stand-in card")
        let suspended = try await http.call("POST", "/v1/tokens/\(tokenID)/suspend", auth: bankKey, bank: "BANKA", body: ["reason": "lost"])
        print("   POST /v1/tokens/\(tokenID)/suspend (bank) → \(suspended["state"] ?? "")")
        print("   Someone taps the lost phone for 88.00 CNY:")
        try show(await pos.sale(amount: try Amount("88.00", currency: .cny), over: reader), receipt: false)

        step(9, "The phone is found; the bank resumes the card; the phone is online and replenishes")
        _ = try await http.call("POST", "/v1/tokens/\(tokenID)/resume", auth: bankKey, bank: "BANKA", body: ["reason": "found"])
        let request = try phone.replenishmentRequest(cardID: "bank-a", tokenID: tokenID)
        print("   signed request carrying the phone's log: " + request.log.map { "ATC \($0.atc) \(Amount(minorUnits: $0.amount, currency: .cny))" }.joined(separator: ", "))
        let answer = try await cloud.replenish(request)
        try phone.replenished(cardID: "bank-a", request: request, keys: answer.keys, unseen: answer.unseen)
        print("   \(answer.keys.count) new keys; \(phone.keysLeft(cardID: "bank-a")) usable")
        if !answer.unseen.isEmpty {
            print("   the cloud validated no transaction for ATC \(answer.unseen.map(String.init).joined(separator: ", ")) (a tap it declined, or one still on its way);"
                  + " the phone sends it again for a day")
        }

        step(10, "End of day: the books, clearing and settlement")
        let cards = try await http.call("GET", "/v1/cards", auth: bankKey, bank: "BANKA")
        let zhang = (cards["cards"] as? [[String: Any]] ?? []).first { ($0["maskedPan"] as? String)?.hasSuffix("7354") == true }
        let account = try await http.call("GET", "/v1/accounts/\(zhang?["accountId"] as? Int ?? 0)", auth: bankKey, bank: "BANKA")
        print("   ZHANG SAN's account (GET /v1/accounts, bank): \(Amount(minorUnits: Int64(account["balance"] as? Int ?? 0), currency: .cny))")
        let books = try await http.call("GET", "/v1/operator/books", auth: credentials.operatorKey)
        let trial = Int64(books["trialBalance"] as? Int ?? -1), mismatches = (books["mismatchedAccounts"] as? [Any])?.count ?? -1
        print("   GET /v1/operator/books: trial balance \(trial) (zero: every posting balanced); accounts disagreeing with the ledger: \(mismatches)")
        let reportData = try await http.data("POST", "/v1/operator/settlements", auth: credentials.operatorKey)
        let report = try JSONDecoder().decode(SettlementReport.self, from: reportData)
        print("   POST /v1/operator/settlements → batch \(report.batch): \(report.transactions) approved, unreversed transactions, \(Amount(minorUnits: report.total, currency: .cny))")
        for p in report.positions {
            print("   \(p.bank): issued \(Amount(minorUnits: p.issued, currency: .cny)), acquired \(Amount(minorUnits: p.acquired, currency: .cny)), " +
                  "fees \(Amount(minorUnits: p.fees, currency: .cny)), net \(Amount(minorUnits: p.net, currency: .cny))")
        }
        for m in report.merchants {
            print("   merchant \(m.merchant) (\(m.acquirer)): \(m.transactions) sale\(m.transactions == 1 ? "" : "s"), gross \(Amount(minorUnits: m.gross, currency: .cny)), " +
                  "discount \(Amount(minorUnits: m.discount, currency: .cny)), paid \(Amount(minorUnits: m.net, currency: .cny))")
        }
        print("   network fee income \(Amount(minorUnits: report.networkIncome, currency: .cny)); positions and income sum to \(report.balances ? "zero" : "NOT zero")")
        await link.shutdown()
        guard trial == 0, mismatches == 0, report.balances else { throw ToolError("the books do not balance") }
        print("\nThe books balance.")
    }

    static let shop = MerchantTerminal(terminalID: "TERM0001", merchantID: "MERCHANT0000001", acquirerID: "01020000",
                                       merchantNameLocation: "CLOUDTAP COFFEE          SHANGHAI     CN")

    func show(_ result: SaleResult, receipt: Bool) throws {
        let names: [UInt8: String] = [0xA4: "SELECT", 0xA8: "GET PROCESSING OPTIONS", 0xB2: "READ RECORD", 0xAE: "GENERATE AC", 0xCA: "GET DATA"]
        for exchange in result.trace {
            let sw = exchange.response.suffix(2).hexString
            print("   POS → phone \(names[exchange.command[1]] ?? "?") (\(exchange.command.count) bytes) ← \(exchange.response.count - 2) bytes, SW \(sw)")
            if verbose { print("      " + exchange.command.hexString) }
        }
        if let request = result.request {
            let fields = [("DE2", request.pan.masked), ("DE4", request.amount.description), ("DE11", request.stan), ("DE22", request.posEntryMode),
                          ("DE52", request.pinBlock == nil ? "—" : "PIN block (8 bytes, under the terminal key)"),
                          ("DE55", "\(request.iccData?.count ?? 0) EMV tags, ARQC \(request.iccData?.find(0x9F26)?.value.hexString ?? "")")]
            print("   0200 → switch: " + fields.map { "\($0.0) \($0.1)" }.joined(separator: ", "))
            if verbose { print(request.message.describe(spec: try MessageSpec.dialect("terminal"), reveal: false)) }
        }
        if let response = result.response {
            print("   0210 ← switch: DE39 \(response.responseCode)\(response.authorizationCode.map { ", DE38 \($0)" } ?? "")")
        }
        print("   outcome: \(result.outcome)")
        if receipt, let text = result.receipt { print("\n" + text.split(separator: "\n").map { "   | " + $0 }.joined(separator: "\n")) }
    }

    /// The six-digit code in the token service's SMS ("… 123456. …").
    static func oneTimeCode(in sms: String) -> String {
        sms.split(separator: " ").first { $0.count == 7 && $0.hasSuffix(".") && $0.dropLast().allSatisfy(\.isNumber) }.map { String($0.dropLast()) } ?? ""
    }

    /// An ISO 8583 link from a terminal to the switch (terminal dialect, sign-on first).
    static func terminalLink(host: String = "127.0.0.1", port: Int, terminalID: String, maximumBackoff: Duration = .seconds(30),
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws -> ISO8583Client {
        var link = ClientLinkStateMachine.Configuration(
            signOnMessage: { NetworkManagement(code: .signOn, stan: $0, terminalID: terminalID).message(style: .terminal) },
            echoMessage: { NetworkManagement(code: .echo, stan: $0, terminalID: terminalID).message(style: .terminal) })
        link.requestTimeoutNanos = 10_000_000_000
        link.maximumBackoffNanos = UInt64(maximumBackoff.components.seconds) * 1_000_000_000
        let client = try ISO8583Client(endpoint: LinkEndpoint(host: host, port: port, spec: try MessageSpec.dialect("terminal"), framing: .binaryLength2),
                                       configuration: link, group: group)
        client.start()
        return client
    }
}

/// JSON over HTTP for the demo's bank app and operator.
struct DemoHTTP {
    let base: URL

    func call(_ method: String, _ path: String, auth: String, requestor: String? = nil, bank: String? = nil, body: [String: Any]? = nil) async throws -> [String: Any] {
        let data = try await self.data(method, path, auth: auth, requestor: requestor, bank: bank, body: body)
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }

    /// The answer's bytes (for typed decoding); a status outside 2xx throws with the problem's code.
    func data(_ method: String, _ path: String, auth: String, requestor: String? = nil, bank: String? = nil, body: [String: Any]? = nil) async throws -> Data {
        guard let url = URL(string: base.absoluteString + path) else { throw ToolError("bad path \(path)") }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.setValue("Bearer \(auth)", forHTTPHeaderField: "Authorization")
        if let requestor { request.setValue(requestor, forHTTPHeaderField: "CloudTap-Requestor") }
        if let bank { request.setValue(bank, forHTTPHeaderField: "CloudTap-Bank") }
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let body { request.httpBody = try JSONSerialization.data(withJSONObject: body) }
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else {
            let problem = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            throw ToolError("\(method) \(path) → \(status) \(problem["code"] ?? "") \(problem["detail"] ?? "")")
        }
        return data
    }
}
