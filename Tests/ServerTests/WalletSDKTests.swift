import CloudWire
import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import PaymentCore
import PaymentCrypto
import Server
import Storage
import StorageTestSupport
import Terminal
import Testing
import TokenService
import Wallet

@Suite("The wallet SDK against the HTTP API", .serialized)
struct WalletSDKTests {
    @Test("a phone provisions its token and replenishes over HTTP, taps, and the cloud checks the tap; another phone's key is refused")
    func provisionAndReplenish() async throws {
        try await TestDatabases.withEach("api-wallet") { db in try await Self.run(db) }
    }

    @Test("the same over keep-alive HTTP/1.1 (SwiftNIO): every call on one connection, a refusal as the cloud gave it")
    func keepAlive() async throws {
        try await TestDatabases.withEach("api-wallet-nio") { db in try await Self.run(db, keepAlive: true) }
    }

    @Test("a call to a cloud that never answers ends when the caller's task is cancelled")
    func cancelledCall() async throws {
        // A listener that takes the connection and never reads or answers.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(listener >= 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && listen(listener, 4) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let cloud = HTTPCloudConnection(baseURL: URL(string: "http://127.0.0.1:\(port)")!, requestorID: "WALLET00001", apiKey: "key")
        let phone = try Wallet(store: MemorySecureStore(), deviceID: "phone-A")
        let call = Task { try await cloud.provision(tokenID: 1, wallet: phone) }
        try await Task.sleep(for: .milliseconds(300))
        let started = ContinuousClock.now
        call.cancel()
        await #expect(throws: (any Error).self) { _ = try await call.value }
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    static func setUp(_ f: APIFixture, phone: Wallet) async throws -> (APIFixture.Credentials, Int64) {
        let app = Application(router: f.api.router())
        return try await app.test(.router) { client -> (APIFixture.Credentials, Int64) in
            let c = try await f.provision(client)
            let token = try await f.enroll(client, wallet: APIFixture.requestor("WALLET00001", c.walletA), pan: APIFixture.panA, expiry: "2912",
                                           device: "phone-A", publicKey: phone.devicePublicKey)
            return (c, token)
        }
    }

    static func run(_ db: Database, keepAlive: Bool = false) async throws {
            let f = try await APIFixture(db)
            let phone = try Wallet(store: MemorySecureStore(), deviceID: "phone-A")
            let (credentials, tokenID) = try await setUp(f, phone: phone)
            let (ports, sink) = AsyncStream.makeStream(of: Int.self)
            let app = try f.api.application(listener: APIListener(host: "127.0.0.1", port: 0)) { sink.yield($0) }
            let server = Task {
                defer { sink.finish() }
                try await app.runService()
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { Issue.record("the API did not start: \(await server.result)"); return }
            let base = URL(string: "http://127.0.0.1:\(port)")!
            let transport = try KeepAliveHTTPTransport(baseURL: base)
            let cloud = keepAlive ? HTTPCloudConnection(baseURL: base, requestorID: "WALLET00001", apiKey: credentials.walletA, transport: transport)
                                  : HTTPCloudConnection(baseURL: base, requestorID: "WALLET00001", apiKey: credentials.walletA)

            let card = try await phone.provision(cardID: "bank-a", tokenID: tokenID, from: cloud)
            #expect(card.pan.hasPrefix("623456"))
            #expect(try await phone.replenishIfNeeded(cardID: "bank-a", tokenID: tokenID, from: cloud) == 5)
            #expect(try await phone.replenishIfNeeded(cardID: "bank-a", tokenID: tokenID, from: cloud) == 0)  // not low: nothing asked

            // Offline tap; the switch's check at the token service.
            var kernel = ContactlessKernel(configuration: TerminalConfiguration(), transaction: TransactionInput(amount: 3850))
            let box = SharedCardApplet(phone.applet())
            guard case .onlineRequest(let online) = await Reader.tap(&kernel, over: InProcessTransport { box.process($0) }).0 else {
                Issue.record("no online request"); return
            }
            var values: [UInt32: [UInt8]] = [:]
            for tag in TransactionData.minimumSet.map(\.tag) + [0x9F10] { values[tag] = online.data[tag] }
            guard case .valid = try await f.tsp.validate(CryptogramCheck(token: online.pan, data: try TransactionData(values: values), arqc: online.data[0x9F26]!)) else {
                Issue.record("the cloud refused the tap"); return
            }
            // Back online: the signed log accounts for the tap; the pool is topped up again.
            #expect(try await phone.replenishIfNeeded(cardID: "bank-a", tokenID: tokenID, from: cloud, force: true) == 0)
            #expect(phone.cards.first?.reconciledATC == 1)

            // Another phone cannot fetch this token's profile.
            let thief = try Wallet(store: MemorySecureStore(), deviceID: "phone-A")
            await #expect(throws: CloudRefusal(status: 403, code: "device-signature-invalid",
                                               detail: "the signature does not verify with the device key, or is not fresh")) {
                try await thief.provision(cardID: "stolen", tokenID: tokenID, from: cloud)
            }
            if keepAlive {
                // Five calls, one after another, and a refusal: one connection, kept.
                #expect(transport.idleConnections == 1)
                await transport.close()
                #expect(transport.idleConnections == 0)
                await #expect(throws: (any Error).self) { _ = try await phone.replenishIfNeeded(cardID: "bank-a", tokenID: tokenID, from: cloud, force: true) }
            }
            server.cancel()
            _ = await server.result
    }
}
