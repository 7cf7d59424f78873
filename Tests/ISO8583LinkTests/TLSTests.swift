import Foundation
import NIOSSL
import Testing
import ISO8583
@testable import ISO8583Link

/// Throwaway certificates made with the openssl command-line tool (CI installs it).
struct TestPKI {
    let dir: URL

    static func make() throws -> TestPKI? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") else { return nil }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cloudtap-pki-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        func sh(_ command: String) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", command]
            p.currentDirectoryURL = dir
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw TLSTestError.openssl(command) }
        }
        let key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
        try sh("openssl req -x509 \(key) -keyout ca.key -out ca.pem -days 2 -subj '/CN=CloudTap Test CA'")
        for name in ["server", "client"] {
            try sh("openssl req \(key) -keyout \(name).key -out \(name).csr -subj '/CN=\(name == "server" ? "localhost" : "acquirer-01")'")
            try sh("printf 'subjectAltName=DNS:localhost,IP:127.0.0.1' > \(name).ext")
            try sh("openssl x509 -req -in \(name).csr -CA ca.pem -CAkey ca.key -CAcreateserial -out \(name).pem -days 2 -extfile \(name).ext")
        }
        return TestPKI(dir: dir)
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

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

enum TLSTestError: Error { case openssl(String) }

@Suite("TLS links", .serialized)
struct TLSTests {
    @Test("mutual TLS: a client with a certificate from the network's CA is served; one without is refused")
    func mutualTLS() async throws {
        guard let pki = try TestPKI.make() else {
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
