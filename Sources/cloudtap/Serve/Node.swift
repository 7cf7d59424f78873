import ArgumentParser
import Crypto
import Foundation
import Hummingbird
import ISO8583
import ISO8583Link
import IssuerHost
import Logging
import PaymentCore
import PaymentCrypto
import Server
import Storage
import Switch
import TokenService

/// What `cloudtap serve` runs, from a JSON file or the defaults (which need no file at all).
struct NodeConfiguration: Codable, Sendable {
    struct Bank: Codable, Sendable {
        var id: String
        var name: String
        var institutionID: String
        var cardRange: String
        var tokenRange: [String]
        /// Test cards: PAN, expiry, PIN, mobile, holder, opening balance (minor units), product.
        var cards: [Card]
        var standInLimit: Int64?
        /// Static merchant-presented QR codes: the most a token may pay by them a day (minor
        /// units); nil: the network's default (500.00 CNY).
        var staticQRDailyLimit: Int64?
    }
    struct Card: Codable, Sendable {
        var pan: String
        var expiry: String
        var pin: String
        var mobile: String
        var holder: String
        var balance: Int64
        var product: String
    }

    var dataDirectory = "cloudtap-data"
    /// `sqlite` (a file in the data directory) or a `postgres://` URL.
    var database: String?
    var httpHost = "127.0.0.1"
    var httpPort = 8080
    var switchPort = 5000
    /// The issuer hosts' listener (network dialect) when they run as their own process.
    var issuerPort = 5100
    /// Where a switch reaches the issuer hosts ("host:port", network dialect); nil: in process.
    var issuerAddress: String?
    /// The network's no-CVM limit (minor units): at or above it a token's sale needs online PIN
    /// or the owner's verification on the phone. Nil: 1,000.00.
    var noCVMLimit: Int64?
    var terminals = ["TERM0001"]
    var requestors = ["WALLET00001"]
    var banks: [Bank] = [
        Bank(id: "BANKA", name: "Bank of Pudong (test)", institutionID: "01020000", cardRange: "621022", tokenRange: ["62345600", "62345699"],
             cards: [Card(pan: "6210220110002707354", expiry: "2912", pin: "135790", mobile: "13812345678", holder: "ZHANG SAN", balance: 500_000, product: "debit")],
             standInLimit: nil),
        Bank(id: "BANKB", name: "Bank of Lujiazui (test)", institutionID: "01030000", cardRange: "622588", tokenRange: ["62345700", "62345799"],
             cards: [Card(pan: "6225880000000001", expiry: "3001", pin: "246810", mobile: "13900001111", holder: "LI SI", balance: 0, product: "credit")],
             standInLimit: 50_000),
    ]

    static func load(_ path: String?) throws -> NodeConfiguration {
        guard let path else { return NodeConfiguration() }
        return try JSONDecoder().decode(NodeConfiguration.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }
}

/// A TCP address as the tools take it: `host:port` (the last colon splits, so an IPv6 host in
/// brackets works too).
struct HostPort: Sendable {
    let host: String
    let port: Int

    init(_ text: some StringProtocol, what: String) throws {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else {
            throw ToolError("\(what) \(text) is not host:port")
        }
        host = String(text[..<colon])
        self.port = port
    }
}

/// The credentials `serve` hands out on first start, kept (owner-only) in the data directory.
struct NodeCredentials: Codable, Sendable {
    /// The credentials a network wrote to its data directory.
    static func read(from dataDirectory: String) throws -> NodeCredentials {
        let file = (dataDirectory as NSString).appendingPathComponent("credentials.json")
        guard let data = FileManager.default.contents(atPath: file) else { throw ToolError("no credentials at \(file): is \(dataDirectory) the network's data directory?") }
        return try JSONDecoder().decode(NodeCredentials.self, from: data)
    }

    var operatorKey: String
    var requestorKeys: [String: String] = [:]
    var bankKeys: [String: String] = [:]
    /// Terminal id → its PIN key, hex (a test deployment's PIN pads load it).
    var terminalPINKeys: [String: String] = [:]
}

/// One process running the whole network: the switch (ISO 8583, terminal dialect), the token
/// service, the issuer hosts and the HTTP API, on one database and one key component.
final class Node: Sendable {
    let configuration: NodeConfiguration
    let db: Database
    let hsm: SoftwareHSM
    let issuer: IssuerHost
    let tsp: TokenService
    let network: NetworkSwitch
    let api: CloudAPI
    let credentials: NodeCredentials
    let switchServer: ISO8583Server
    let issuerServer: ISO8583Server
    let issuerLink: ISO8583Client?
    let logger: Logger

    static func open(_ configuration: NodeConfiguration, logger: Logger) async throws -> Node {
        let dir = configuration.dataDirectory
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let masterKey = try secret(at: (dir as NSString).appendingPathComponent("master.key"), bytes: 32)
        let keyFile = (dir as NSString).appendingPathComponent("keys.json")
        let blocks: [String: String] = try Self.existing(keyFile).map { data in
            do { return try JSONDecoder().decode([String: String].self, from: data) } catch { throw Self.unreadable(keyFile, "the key blocks") }
        } ?? [:]
        let hsm = try SoftwareHSM(masterKey: masterKey, keyBlocks: blocks)
        let location: DatabaseLocation = configuration.database.map { $0.hasPrefix("postgres") ? .postgres(url: $0) : .sqlite(path: $0) }
            ?? .sqlite(path: (dir as NSString).appendingPathComponent("cloudtap.sqlite"))
        // PostgreSQL: enough connections that transactions waiting on row locks or commits do
        // not starve the rest (PostgreSQL commits concurrent transactions together).
        let db = try await Database.open(location, logger: logger, connectionsPerEventLoop: 16)
        try await db.migrate(IssuerSchema.migrations + TokenSchema.migrations + NetworkSchema.migrations)
        for name in ["issuer-vault", "issuer-lookup", "tsp-kek", "tsp-lookup", "switch-store"] where !hsm.keyNames().contains(name) {
            _ = try hsm.generateKey(name: name, usage: .dataEncryption, algorithm: .aes, lengthBytes: 32)
        }
        let issuer = IssuerHost(database: db, keys: hsm)
        let tsp = TokenService(database: db, keys: hsm, vault: Vault(database: db, keys: hsm))
        let credentialFile = (dir as NSString).appendingPathComponent("credentials.json")
        var credentials: NodeCredentials = try Self.existing(credentialFile).map { data in
            do { return try JSONDecoder().decode(NodeCredentials.self, from: data) } catch { throw Self.unreadable(credentialFile, "the credentials") }
        } ?? NodeCredentials(operatorKey: randomHex(32))
        try await provision(configuration, issuer: issuer, tsp: tsp, hsm: hsm, credentials: &credentials)
        try write(JSONEncoder().encode(hsm.keyBlocks), to: keyFile)
        try write(JSONEncoder().encode(credentials), to: credentialFile)

        var switchConfiguration = SwitchConfiguration()
        switchConfiguration.storeKeyName = "switch-store"
        for terminal in configuration.terminals { switchConfiguration.terminalPINKeys[terminal] = "\(terminal)/tpk" }
        for bank in configuration.banks { if let limit = bank.standInLimit { switchConfiguration.standIn[bank.id] = .approveUpTo(limit) } }
        if let limit = configuration.noCVMLimit { switchConfiguration.noCVMLimit = limit }
        let gateway = IssuerGateway(host: issuer)
        let network = try MessageSpec.dialect("network")
        var issuerLink: ISO8583Client?
        if let address = configuration.issuerAddress {
            let target = try HostPort(address, what: "issuer address")
            var link = ClientLinkStateMachine.Configuration(
                signOnMessage: { NetworkManagement(code: .signOn, stan: $0, terminalID: nil).message(style: .network) },
                echoMessage: { NetworkManagement(code: .echo, stan: $0, terminalID: nil).message(style: .network) })
            link.requestTimeoutNanos = 10_000_000_000
            link.maximumBackoffNanos = 2_000_000_000
            issuerLink = try ISO8583Client(endpoint: LinkEndpoint(host: target.host, port: target.port, spec: network, framing: .networkHeader), configuration: link)
            issuerLink?.start()
        }
        let issuers = Dictionary(uniqueKeysWithValues: configuration.banks.map { bank -> (String, any IssuerConnection) in
            (bank.id, issuerLink.map { $0 as any IssuerConnection } ?? InProcessIssuer(gateway))
        })
        let networkSwitch = NetworkSwitch(database: db, tokenService: tsp, issuerHost: issuer, keys: hsm, issuers: issuers, configuration: switchConfiguration, logger: logger)
        let spec = try MessageSpec.dialect("terminal")
        let switchServer = ISO8583Server(endpoint: LinkEndpoint(host: configuration.httpHost, port: configuration.switchPort, spec: spec, framing: .binaryLength2)) { message in
            await networkSwitch.handle(message)
        }
        let issuerServer = ISO8583Server(endpoint: LinkEndpoint(host: configuration.httpHost, port: configuration.issuerPort, spec: network, framing: .networkHeader)) { message in
            await gateway.handle(message)
        }
        let console = Console(network: networkSwitch, settlement: Settlement(database: db, issuerHost: issuer))
        let api = CloudAPI(tokenService: tsp, issuer: issuer, keys: hsm, configuration: CloudAPI.Configuration(operatorAPIKey: credentials.operatorKey),
                           console: console)
        return Node(configuration: configuration, db: db, hsm: hsm, issuer: issuer, tsp: tsp, network: networkSwitch, api: api, credentials: credentials,
                    switchServer: switchServer, issuerServer: issuerServer, issuerLink: issuerLink, logger: logger)
    }

    init(configuration: NodeConfiguration, db: Database, hsm: SoftwareHSM, issuer: IssuerHost, tsp: TokenService, network: NetworkSwitch, api: CloudAPI,
         credentials: NodeCredentials, switchServer: ISO8583Server, issuerServer: ISO8583Server, issuerLink: ISO8583Client?, logger: Logger) {
        self.configuration = configuration
        self.db = db
        self.hsm = hsm
        self.issuer = issuer
        self.tsp = tsp
        self.network = network
        self.api = api
        self.credentials = credentials
        self.switchServer = switchServer
        self.issuerServer = issuerServer
        self.issuerLink = issuerLink
        self.logger = logger
    }

    /// Banks, ranges, keys, terminals, requestors and test cards, each made once.
    static func provision(_ c: NodeConfiguration, issuer: IssuerHost, tsp: TokenService, hsm: SoftwareHSM, credentials: inout NodeCredentials) async throws {
        if try await tsp.vault.hasActiveDataKey() == false { try await tsp.vault.rotateDataKey() }
        for terminal in c.terminals where !hsm.keyNames().contains("\(terminal)/tpk") {
            let key = KeyTools.oddParity((0..<16).map { _ in UInt8.random(in: 0...255) })
            _ = try hsm.importClearKey(name: "\(terminal)/tpk", usage: .pinEncryption, algorithm: .tdes, key: key)
            credentials.terminalPINKeys[terminal] = key.hexString
        }
        let known = Set(try await tsp.requestors().map(\.id))
        for requestor in c.requestors where !known.contains(requestor) {
            credentials.requestorKeys[requestor] = try await tsp.registerRequestor(id: requestor, name: requestor)
        }
        let banks = Set(try await issuer.banks().map(\.id))
        for bank in c.banks where !banks.contains(bank.id) {
            for (role, usage) in [("imk-ac", KeyUsage.issuerMasterKeyAC), ("zpk", .pinEncryption), ("pvk", .pinVerificationVisaPVV), ("cvk", .cardVerification),
                                  ("tsp-imk", .issuerMasterKeyAC)] where !hsm.keyNames().contains("\(bank.id)/\(role)") {
                _ = try hsm.generateKey(name: "\(bank.id)/\(role)", usage: usage, algorithm: .tdes, lengthBytes: 16)
            }
            try await issuer.addBank(BankSetup(id: bank.id, name: bank.name, institutionID: bank.institutionID, cardKeyName: "\(bank.id)/imk-ac",
                                               pinKeyName: "\(bank.id)/zpk", pvkName: "\(bank.id)/pvk"))
            try await issuer.addBINRange(bank: bank.id, low: bank.cardRange, high: bank.cardRange, kind: "card")
            try await issuer.addBINRange(bank: bank.id, low: bank.tokenRange[0], high: bank.tokenRange[1], kind: "token")
            try await tsp.addTokenRange(bank: bank.id, low: bank.tokenRange[0], high: bank.tokenRange[1])
            try await tsp.setBankKeys(bank: bank.id, imkName: "\(bank.id)/tsp-imk")
            credentials.bankKeys[bank.id] = try await tsp.issueBankAPIKey(bank: bank.id)
            // The zone PIN key is only ever in the key component: the test cards' PINs are
            // enciphered under it there, by a key block exported under a one-off key.
            let kek = (0..<32).map { _ in UInt8.random(in: 0...255) }
            let kekName = "\(bank.id)/setup-kek-\(UUID().uuidString.prefix(8))"
            _ = try hsm.importClearKey(name: kekName, usage: .keyEncryption, algorithm: .aes, key: kek)
            let zpk = try TR31.unwrap(try hsm.exportKeyBlock(name: "\(bank.id)/zpk", kekName: kekName), kbpk: kek).key
            for card in bank.cards {
                let pan = try PAN(card.pan)
                let product = Product(rawValue: card.product) ?? .debit
                let account = try await issuer.openAccount(bank: bank.id, product: product, openingBalance: product == .debit ? card.balance : 0,
                                                           creditLimit: product == .credit ? 5_000_000 : 0)
                _ = try await issuer.issueCard(bank: bank.id, account: account, pan: pan, expiry: card.expiry, product: product, holderName: card.holder,
                                               mobile: card.mobile, pinBlock: try ISO9564.encipher(PINBlock.encode(pin: card.pin, format: .iso0, pan: pan), key: zpk, pan: pan))
            }
        }
    }

    /// Starts the switch listener; returns its port.
    func startSwitch() async throws -> Int { try await switchServer.start() }

    /// Starts the issuer hosts' listener (network dialect); returns its port.
    func startIssuer() async throws -> Int { try await issuerServer.start() }

    /// The HTTP listener with the routes of `parts` (and /health, and /metrics when given).
    func application(parts: CloudAPI.Parts = .all, metrics: (@Sendable () -> [UInt8])? = nil,
                     onListening: @escaping @Sendable (Int) async -> Void = { _ in }) throws -> Application<RouterResponder<CloudRequestContext>> {
        var settings = CloudAPI.Configuration(operatorAPIKey: credentials.operatorKey)
        settings.parts = parts
        settings.metrics = metrics
        for bank in configuration.banks { if let cap = bank.staticQRDailyLimit { settings.staticQRDailyLimits[bank.id] = cap } }
        let api = CloudAPI(tokenService: tsp, issuer: issuer, keys: hsm, configuration: settings, console: self.api.console)
        return try api.application(listener: APIListener(host: configuration.httpHost, port: configuration.httpPort), logger: logger, onListening: onListening)
    }

    func shutdown() async {
        await switchServer.shutdown()
        await issuerServer.shutdown()
        await issuerLink?.shutdown()
        try? Self.write(JSONEncoder().encode(hsm.keyBlocks), to: (configuration.dataDirectory as NSString).appendingPathComponent("keys.json"))
        await db.shutdown()
    }

    /// The whole network in this process (demo, load): the switch and the HTTP API on the
    /// ports of the configuration (0: the system picks).
    static func startLocal(_ configuration: NodeConfiguration, logger: Logger) async throws -> LocalNetwork {
        let node = try await Node.open(configuration, logger: logger)
        let switchPort = try await node.startSwitch()
        let (ports, sink) = AsyncStream.makeStream(of: Int.self)
        let app = try node.application(onListening: { sink.yield($0) })
        let server = Task { try await app.runService() }
        var iterator = ports.makeAsyncIterator()
        guard let httpPort = await iterator.next() else { throw ToolError("the API did not start") }
        return LocalNetwork(node: node, server: server, httpPort: httpPort, switchPort: switchPort)
    }

    // MARK: Files

    /// A secret kept in an owner-only file, created on first use.
    /// The secret kept in `path` (hex), made and written on first use. A file that is there but
    /// cannot be read, or does not hold a key of that length, stops the start: replacing it would
    /// lose everything sealed under it.
    static func secret(at path: String, bytes: Int) throws -> [UInt8] {
        if let data = try existing(path) {
            guard let key = try? [UInt8](hex: String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)), key.count == bytes else {
                throw unreadable(path, "a \(bytes)-byte key in hex")
            }
            return key
        }
        let key = (0..<bytes).map { _ in UInt8.random(in: 0...255) }
        try write(Data(key.hexString.utf8), to: path)
        return key
    }

    /// The contents of `path`; nil only when there is no such file (a file that cannot be read
    /// is an error, not an absence).
    static func existing(_ path: String) throws -> Data? {
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch let error as CocoaError where error.code == .fileReadNoSuchFile {
            return nil
        } catch {
            throw ToolError("cannot read \(path): \(error.localizedDescription)")
        }
    }

    static func unreadable(_ path: String, _ what: String) -> ToolError {
        ToolError("\(path) does not hold \(what); it is left as it is (making a new one would lose what the old one keeps)")
    }

    static func write(_ data: Data, to path: String) throws {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else { throw ToolError("cannot create \(path)") }
        }
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
    }

    static func randomHex(_ bytes: Int) -> String { (0..<bytes).map { _ in UInt8.random(in: 0...255) }.hexString }
}

/// A network running in this process, as `startLocal` left it.
struct LocalNetwork: Sendable {
    let node: Node
    let server: Task<Void, any Error>
    let httpPort: Int
    let switchPort: Int

    func stop() async {
        server.cancel()
        _ = await server.result
        await node.shutdown()
    }
}

/// The options of the tools that work on an existing network's data (`settle`, `trace`).
struct NodeOptions: ParsableArguments {
    @Option(help: "Data directory of the network.") var dataDir = "cloudtap-data"
    @Option(help: "postgres://… when the network runs on PostgreSQL.") var database: String?

    /// Opens the network's node, runs `body` and shuts the node down, also when `body` throws.
    func withNode(_ body: @escaping @Sendable (Node) async throws -> Void) throws {
        var configuration = NodeConfiguration()
        configuration.dataDirectory = dataDir
        configuration.database = database
        var logger = Logger(label: "cloudtap")
        logger.logLevel = .warning
        let settings = configuration, log = logger
        try blockingAsync { () async throws -> Void in
            let node = try await Node.open(settings, logger: log)
            do {
                try await body(node)
            } catch {
                await node.shutdown()
                throw error
            }
            await node.shutdown()
        }
    }
}
