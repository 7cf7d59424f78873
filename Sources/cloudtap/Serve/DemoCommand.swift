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
import PaymentCore
import PaymentCrypto
import Switch
import Terminal
import Wallet

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "The whole story: bind a card, pay offline with the phone at a POS, with and without PIN, lose the phone, replenish, the books.",
        discussion: """
            Starts a network (`serve`) in this process on loopback ports in a fresh data directory and talks to it as \
            the bank app, the phone and the POS would: HTTP to the API, ISO 8583 to the switch, APDUs between the \
            phone and the POS. Card data is masked in everything printed.
            """)

    @Option(help: "Data directory for the demo's network (default: a new temporary one).") var dataDir: String?
    @Flag(help: "Print every APDU and the whole 0200/0210.") var verbose = false

    func run() throws {
        let dir = dataDir ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("cloudtap-demo-\(UUID().uuidString.prefix(8))")
        let verbose = self.verbose
        try blockingAsync { () async throws -> Void in try await Demo(dataDirectory: dir, verbose: verbose).run() }
    }
}

struct Demo {
    let dataDirectory: String
    let verbose: Bool

    func step(_ n: Int, _ title: String) { print("\n\(n). \(title)") }

    func run() async throws {
        var configuration = NodeConfiguration()
        configuration.dataDirectory = dataDirectory
        configuration.httpPort = 0
        configuration.switchPort = 0
        var logger = Logger(label: "cloudtap")
        logger.logLevel = verbose ? .notice : .critical
        let local = try await Node.startLocal(configuration, logger: logger)
        let node = local.node, httpPort = local.httpPort, switchPort = local.switchPort
        print("CloudTap demo — a network on this machine: HTTP API on 127.0.0.1:\(httpPort), switch (ISO 8583) on 127.0.0.1:\(switchPort)")
        print("data directory: \(dataDirectory)")

        let api = URL(string: "http://127.0.0.1:\(httpPort)")!
        let requestorKey = node.credentials.requestorKeys["WALLET00001"] ?? ""
        let bankKey = node.credentials.bankKeys["BANKA"] ?? ""
        let http = DemoHTTP(base: api)

        step(1, "Two banks are on the network")
        let banks = try await http.call("GET", "/v1/operator/banks", auth: node.credentials.operatorKey)
        for bank in banks["banks"] as? [[String: Any]] ?? [] {
            let ranges = (bank["binRanges"] as? [[String: Any]] ?? []).map { "\($0["kind"] ?? "") \($0["low"] ?? "")–\($0["high"] ?? "")" }.joined(separator: ", ")
            print("   \(bank["id"] ?? "") \(bank["name"] ?? ""): \(ranges); keys by KCV: " +
                  (bank["keys"] as? [[String: Any]] ?? []).map { "\($0["usage"] ?? "") \($0["kcv"] ?? "")" }.joined(separator: " "))
        }

        step(2, "ZHANG SAN binds her Bank A card in the bank app (card number, expiry, CVN2 check skipped, device key)")
        let phone = try Wallet(store: MemorySecureStore(), deviceID: "zhang-san-phone")
        let card = "6210220110002707354"
        let enrollment = try await http.call("POST", "/v1/enrollments", auth: requestorKey, requestor: "WALLET00001", body: [
            "pan": card, "expiry": "2912", "holderName": "ZHANG SAN", "deviceId": phone.deviceID,
            "devicePublicKey": phone.devicePublicKey.x963Representation.base64EncodedString(),
        ])
        print("   POST /v1/enrollments → 202, one-time code sent to \(enrollment["maskedMobile"] ?? "")")
        let outbox = try await http.call("GET", "/v1/operator/sms?mobileEndsWith=5678", auth: node.credentials.operatorKey)
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

        let tpk = try [UInt8](hex: node.credentials.terminalPINKeys["TERM0001"] ?? "")
        let link = try Self.terminalLink(port: switchPort, terminalID: "TERM0001")
        defer { Task { await link.shutdown() } }
        let pos = PointOfSale(configuration: TerminalConfiguration(), merchant: Self.shop, pinPad: SoftwarePINPad(terminalPINKey: tpk) {
            print("   [PIN pad beeps] the customer keys her PIN: ******")
            return "135790"
        }, host: link)
        let applet = SharedCardApplet(phone.applet())
        let reader = InProcessTransport { applet.process($0) }

        step(4, "The cashier keys 38.50 CNY; she holds the phone to the POS")
        try show(await pos.sale(amount: try Amount("38.50", currency: .cny), over: reader), receipt: false)

        step(5, "The cashier keys 1,288.00 CNY; above the no-PIN limit")
        try show(await pos.sale(amount: try Amount("1288.00", currency: .cny), over: reader), receipt: true)

        step(6, "She loses the phone; Bank A suspends the stand-in card")
        let suspended = try await http.call("POST", "/v1/tokens/\(tokenID)/suspend", auth: bankKey, bank: "BANKA", body: ["reason": "lost"])
        print("   POST /v1/tokens/\(tokenID)/suspend (bank) → \(suspended["state"] ?? "")")
        print("   Someone taps the lost phone for 88.00 CNY:")
        try show(await pos.sale(amount: try Amount("88.00", currency: .cny), over: reader), receipt: false)

        step(7, "The phone is found; the bank resumes the card; the phone is online and replenishes")
        _ = try await http.call("POST", "/v1/tokens/\(tokenID)/resume", auth: bankKey, bank: "BANKA", body: ["reason": "found"])
        let request = try phone.replenishmentRequest(cardID: "bank-a", tokenID: tokenID)
        print("   signed request carrying the phone's log: " + request.log.map { "ATC \($0.atc) \(Amount(minorUnits: $0.amount, currency: .cny))" }.joined(separator: ", "))
        let fresh = try await cloud.replenish(request)
        try phone.replenished(cardID: "bank-a", request: request, keys: fresh)
        print("   \(fresh.count) new keys; \(phone.keysLeft(cardID: "bank-a")) usable")

        step(8, "End of day: the books, clearing and settlement")
        let trial = try await node.issuer.trialBalance()
        let mismatches = try await node.issuer.balanceMismatches()
        let cardRecord = try await node.issuer.card(id: 1)
        let account = try await node.issuer.account(id: cardRecord?.accountID ?? 0)
        print("   ZHANG SAN's account: \(Amount(minorUnits: account?.balance ?? 0, currency: .cny)) (opened with 5000.00 CNY)")
        print("   trial balance \(trial) (zero: every posting balanced); accounts disagreeing with the ledger: \(mismatches.count)")
        let report = try await Settlement(database: node.db, issuerHost: node.issuer).run()
        print("   clearing batch \(report.batch): \(report.transactions) approved, unreversed transactions, \(Amount(minorUnits: report.total, currency: .cny))")
        for p in report.positions {
            print("   \(p.bank): issued \(Amount(minorUnits: p.issued, currency: .cny)), acquired \(Amount(minorUnits: p.acquired, currency: .cny)), " +
                  "fees \(Amount(minorUnits: p.fees, currency: .cny)), net \(Amount(minorUnits: p.net, currency: .cny))")
        }
        for m in report.merchants {
            print("   merchant \(m.merchant) (\(m.acquirer)): \(m.transactions) sales, gross \(Amount(minorUnits: m.gross, currency: .cny)), " +
                  "discount \(Amount(minorUnits: m.discount, currency: .cny)), paid \(Amount(minorUnits: m.net, currency: .cny))")
        }
        print("   network fee income \(Amount(minorUnits: report.networkIncome, currency: .cny)); positions and income sum to \(report.balances ? "zero" : "NOT zero")")
        await link.shutdown()
        await local.stop()
        guard trial == 0, mismatches.isEmpty, report.balances else { throw ToolError("the books do not balance") }
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
    static func terminalLink(host: String = "127.0.0.1", port: Int, terminalID: String, maximumBackoff: Duration = .seconds(30)) throws -> ISO8583Client {
        var link = ClientLinkStateMachine.Configuration(
            signOnMessage: { NetworkManagement(code: .signOn, stan: $0, terminalID: terminalID).message(style: .terminal) },
            echoMessage: { NetworkManagement(code: .echo, stan: $0, terminalID: terminalID).message(style: .terminal) })
        link.requestTimeoutNanos = 10_000_000_000
        link.maximumBackoffNanos = UInt64(maximumBackoff.components.seconds) * 1_000_000_000
        let client = try ISO8583Client(endpoint: LinkEndpoint(host: host, port: port, spec: try MessageSpec.dialect("terminal"), framing: .binaryLength2),
                                       configuration: link)
        client.start()
        return client
    }
}

/// JSON over HTTP for the demo's bank app and operator.
struct DemoHTTP {
    let base: URL

    func call(_ method: String, _ path: String, auth: String, requestor: String? = nil, bank: String? = nil, body: [String: Any]? = nil) async throws -> [String: Any] {
        guard let url = URL(string: base.absoluteString + path) else { throw ToolError("bad path \(path)") }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.setValue("Bearer \(auth)", forHTTPHeaderField: "Authorization")
        if let requestor { request.setValue(requestor, forHTTPHeaderField: "CloudTap-Requestor") }
        if let bank { request.setValue(bank, forHTTPHeaderField: "CloudTap-Bank") }
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let body { request.httpBody = try JSONSerialization.data(withJSONObject: body) }
        let (data, response) = try await URLSession.shared.data(for: request)
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else { throw ToolError("\(method) \(path) → \(status) \(object["code"] ?? "") \(object["detail"] ?? "")") }
        return object
    }
}
