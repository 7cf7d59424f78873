import Foundation
import NIOSSL
import Testing
import ISO8583
import TLSTestSupport
@testable import ISO8583Link

/// Certificates for one test run (TLSTestSupport): a CA, a server certificate for localhost and an
/// acquirer's client certificate.
struct TestPKI {
    let certificates: TestCertificates
    var dir: URL { certificates.directory }

    static func make() async throws -> TestPKI? {
        try await TestCertificates.make(clients: [("client", "acquirer-01")]).map(TestPKI.init)
    }

    func path(_ name: String) -> String { certificates.path(name) }

    func serverTLS(requireClientCertificate: Bool) throws -> TLSConfiguration {
        var c = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(path("server.pem")).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: path("server.key"), format: .pem)))
        c.trustRoots = .file(path("ca.pem"))
        c.certificateVerification = requireClientCertificate ? .noHostnameVerification : .none
        return c
    }

    func clientTLS(withCertificate: Bool) throws -> TLSConfiguration {
        var c = TLSConfiguration.makeClientConfiguration()
        c.trustRoots = .file(path("ca.pem"))
        if withCertificate {
            c.certificateChain = try NIOSSLCertificate.fromPEMFile(path("client.pem")).map { .certificate($0) }
            c.privateKey = .privateKey(try NIOSSLPrivateKey(file: path("client.key"), format: .pem))
        }
        return c
    }
}

@Suite("TLS links", .serialized)
struct TLSTests {
    @Test("mutual TLS: a client with a certificate from the network's CA is served; one without is refused")
    func mutualTLS() async throws {
        guard let pki = try await TestPKI.make() else {
            print("skipping TLS test: /usr/bin/openssl is not installed")
            return
        }
        defer { try? FileManager.default.removeItem(at: pki.dir) }
        let spec = MessageSpec.network
        let server = ISO8583Server(endpoint: LinkEndpoint(host: "127.0.0.1", port: 0, spec: spec, framing: .networkHeader,
                                                          tls: try pki.serverTLS(requireClientCertificate: true)),
                                   handler: LoopbackTests.approve)
        let port = try await server.start()
        var configuration = LoopbackTests.clientConfiguration(style: .network)
        configuration.requestTimeoutNanos = 30_000_000_000  // generous: the whole suite may be running on two cores

        let good = try ISO8583Client(endpoint: LinkEndpoint(host: "127.0.0.1", port: port, spec: spec, framing: .networkHeader,
                                                             tls: try pki.clientTLS(withCertificate: true), serverHostname: "localhost"),
                                     configuration: configuration)
        good.start()
        let answer = try await good.send(LoopbackTests.request(7))
        #expect(answer[39] == "00")
        await good.shutdown()

        configuration.requestTimeoutNanos = 2_000_000_000
        let anonymous = try ISO8583Client(endpoint: LinkEndpoint(host: "127.0.0.1", port: port, spec: spec, framing: .networkHeader,
                                                                  tls: try pki.clientTLS(withCertificate: false), serverHostname: "localhost"),
                                          configuration: configuration)
        anonymous.start()
        await #expect(throws: (any Error).self) { _ = try await anonymous.send(LoopbackTests.request(8)) }
        await anonymous.shutdown()
        await server.shutdown()
    }
}
