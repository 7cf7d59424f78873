import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOSSL
import Server
import StorageTestSupport
import Testing

/// Certificates for one test run, made with the openssl command line: a CA, a server
/// certificate for localhost and two client certificates.
struct TestPKI {
    let dir: URL

    static func make() throws -> TestPKI? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") else { return nil }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cloudtap-pki-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let pki = TestPKI(dir: dir)
        try pki.openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
                         "-days", "2", "-subj", "/CN=CloudTap Test CA"])
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n".write(to: dir.appendingPathComponent("server.ext"), atomically: true, encoding: .utf8)
        try "extendedKeyUsage=clientAuth\n".write(to: dir.appendingPathComponent("client.ext"), atomically: true, encoding: .utf8)
        for (name, ext) in [("server", "server.ext"), ("bank-a", "client.ext"), ("bank-b", "client.ext")] {
            try pki.openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(name).key", "-out", "\(name).csr",
                             "-subj", "/CN=\(name == "server" ? "localhost" : name)"])
            try pki.openssl(["x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "\(name).pem",
                             "-days", "2", "-extfile", ext])
        }
        return pki
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = dir
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CocoaError(.executableLoad) }
    }

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
        guard let pki = try TestPKI.make() else {
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
