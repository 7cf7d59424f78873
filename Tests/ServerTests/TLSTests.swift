import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOSSL
import Server
import StorageTestSupport
import TLSTestSupport
import Testing

/// Certificates for one test run (TLSTestSupport): a CA, a server certificate for localhost and
/// two banks' client certificates.
struct TestPKI {
    let certificates: TestCertificates
    var dir: URL { certificates.directory }

    static func make() async throws -> TestPKI? {
        try await TestCertificates.make(clients: [("bank-a", "bank-a"), ("bank-b", "bank-b")]).map(TestPKI.init)
    }

    func path(_ name: String) -> String { certificates.path(name) }

    func clientTLS(certificate: String?) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(path("ca.pem"))
        if let certificate {
            tls.certificateChain = [.certificate(try NIOSSLCertificate(file: path("\(certificate).pem"), format: .pem))]
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: path("\(certificate).key"), format: .pem))
        }
        return tls
    }

    func sha256(of certificate: String) throws -> String {
        Array(SHA256.hash(data: try NIOSSLCertificate(file: path("\(certificate).pem"), format: .pem).toDERBytes())).map { String(format: "%02x", $0) }.joined()
    }
}

@Suite("HTTP API over TLS", .serialized)
struct TLSTests {
    @Test("plain HTTP only on loopback")
    func plainOnlyOnLoopback() async throws {
        try await TestDatabases.withEach("api-listen") { db in
            let f = try await APIFixture(db)
            #expect(throws: ListenerError.self) { _ = try f.api.application(listener: APIListener(host: "0.0.0.0", port: 8080)) }
            #expect(throws: ListenerError.self) { _ = try f.api.application(listener: APIListener(host: "10.1.2.3", port: 8080)) }
            _ = try f.api.application(listener: APIListener(host: "127.0.0.1", port: 8080))
            _ = try f.api.application(listener: APIListener(host: "::1", port: 8080))
        }
    }

    @Test("mutual TLS: a bank's key counts only with its pinned client certificate; no certificate, no connection")
    func mutualTLS() async throws {
        guard let pki = try await TestPKI.make() else {
            print("skipping mutual TLS test: /usr/bin/openssl is not installed")
            return
        }
        defer { try? FileManager.default.removeItem(at: pki.dir) }
        try await TestDatabases.withEach("api-mtls") { db in
            let f = try await APIFixture(db)
            // Set the deployment up and pin bank A's certificate through the operator API.
            let credentials = try await Application(router: f.api.router()).test(.router) { client in
                let c = try await f.provision(client)
                try await client.execute(uri: "/v1/operator/banks/BANKA/client-certificate", method: .put, headers: APIFixture.operatorHeaders,
                                         body: json(["sha256": try pki.sha256(of: "bank-a")])) { r in #expect(r.status == .noContent) }
                return c
            }
            let listener = APIListener(host: "127.0.0.1", port: 0, tls: .init(certificateChainFile: pki.path("server.pem"), privateKeyFile: pki.path("server.key"),
                                                                          clientCAFile: pki.path("ca.pem")))
            let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
            let app = try f.api.application(listener: listener) { portSink.yield($0) }
            let server = Task {
                defer { portSink.finish() }
                try await app.runService()
            }
            defer { server.cancel() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else {
                Issue.record("the server did not start: \(await server.result)")
                return
            }
            do {
                func call(_ uri: String, headers: HTTPFields, certificate: String?) async throws -> (HTTPResponse.Status, [String: Any]) {
                    let client = TestClient(host: "localhost", port: port, configuration: .init(tlsConfiguration: try pki.clientTLS(certificate: certificate), serverName: "localhost"))
                    client.connect()
                    let response: TestClient.Response
                    do {
                        response = try await client.execute(TestClient.Request(uri, method: .get, authority: "localhost", headers: headers))
                    } catch {
                        try? await client.shutdown()
                        throw error
                    }
                    try? await client.shutdown()
                    return (response.status, object(response.body ?? ByteBuffer()))
                }
                let bankA = APIFixture.bank("BANKA", credentials.bankA), bankB = APIFixture.bank("BANKB", credentials.bankB)
                #expect(try await call("/v1/cards", headers: bankA, certificate: "bank-a").0 == .ok)
                // Bank A's key over a connection with another (CA-valid) certificate: refused.
                let wrong = try await call("/v1/cards", headers: bankA, certificate: "bank-b")
                #expect(wrong.0 == .unauthorized)
                #expect(wrong.1["code"] as? String == "client-certificate-required")
                // Bank B has no pinned certificate: any CA-valid one carries its key.
                #expect(try await call("/v1/cards", headers: bankB, certificate: "bank-b").0 == .ok)
                // No client certificate: the handshake fails.
                await #expect(throws: (any Error).self) { _ = try await call("/health", headers: [:], certificate: nil) }
            }
            server.cancel()
            _ = await server.result
        }
    }
}
