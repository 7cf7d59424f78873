import Foundation
import TestSupport

/// Throwaway certificates for TLS tests, made with the openssl command line (CI installs it): a
/// CA (`ca.pem`, `ca.key`), a server certificate for localhost and 127.0.0.1 (`server.pem`,
/// `server.key`) and one client certificate per name (`<name>.pem`, `<name>.key`), all P-256,
/// valid for two days, in a new directory under the system's temporary one.
public struct TestCertificates: Sendable {
    public let directory: URL

    /// The certificates, with a client certificate for each (file name, common name); nil when
    /// `/usr/bin/openssl` is not installed. The openssl runs are waited for off the shared threads.
    public static func make(clients: [(file: String, commonName: String)]) async throws -> TestCertificates? {
        let clients = clients.map { Client(file: $0.file, commonName: $0.commonName) }
        return try await offPool { try makeBlocking(clients: clients) }
    }

    private struct Client: Sendable { let file: String; let commonName: String }

    private static func makeBlocking(clients: [Client]) throws -> TestCertificates? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") else { return nil }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cloudtap-pki-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let made = TestCertificates(directory: directory)
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        try made.openssl(["req", "-x509"] + key + ["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=CloudTap Test CA"])
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n".write(to: directory.appendingPathComponent("server.ext"), atomically: true, encoding: .utf8)
        try "extendedKeyUsage=clientAuth\n".write(to: directory.appendingPathComponent("client.ext"), atomically: true, encoding: .utf8)
        for (file, commonName, ext) in [("server", "localhost", "server.ext")] + clients.map({ ($0.file, $0.commonName, "client.ext") }) {
            try made.openssl(["req"] + key + ["-keyout", "\(file).key", "-out", "\(file).csr", "-subj", "/CN=\(commonName)"])
            try made.openssl(["x509", "-req", "-in", "\(file).csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "\(file).pem",
                              "-days", "2", "-extfile", ext])
        }
        return made
    }

    public func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Removes the directory and everything in it.
    public func remove() { try? FileManager.default.removeItem(at: directory) }

    func openssl(_ arguments: [String]) throws {
        let result = try runCommand(["/usr/bin/openssl"] + arguments, in: directory)
        guard result.status == 0 else { throw CertificateError(command: "openssl " + arguments.joined(separator: " ")) }
    }
}

/// An openssl command that failed.
public struct CertificateError: Error, CustomStringConvertible {
    public let command: String
    public var description: String { "\(command) failed" }
}
