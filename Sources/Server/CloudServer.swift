import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL

/// Where the API listens and how: TLS by configuration, with client certificates checked
/// against a CA when `clientCAFile` is set (mutual TLS, for banks and the switch). Plain HTTP
/// is refused on anything but a loopback address.
public struct APIListener: Sendable {
    public struct TLS: Sendable {
        /// PEM certificate chain, leaf first.
        public var certificateChainFile: String
        /// PEM private key.
        public var privateKeyFile: String
        /// PEM CA certificates that sign client certificates; set for mutual TLS.
        public var clientCAFile: String?

        public init(certificateChainFile: String, privateKeyFile: String, clientCAFile: String? = nil) {
            self.certificateChainFile = certificateChainFile
            self.privateKeyFile = privateKeyFile
            self.clientCAFile = clientCAFile
        }
    }

    public var host: String
    public var port: Int
    public var tls: TLS?

    public init(host: String = "127.0.0.1", port: Int = 8443, tls: TLS? = nil) {
        self.host = host
        self.port = port
        self.tls = tls
    }

    public var isLoopback: Bool { host == "localhost" || host == "::1" || host.hasPrefix("127.") }

    /// The server-side TLS configuration: TLS 1.2 or later; with a client CA, a client
    /// certificate signed by it is required.
    public func tlsConfiguration() throws -> TLSConfiguration? {
        guard let tls else { return nil }
        let chain = try NIOSSLCertificate.fromPEMFile(tls.certificateChainFile).map { NIOSSLCertificateSource.certificate($0) }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: tls.privateKeyFile, format: .pem)))
        configuration.minimumTLSVersion = .tlsv12
        if let ca = tls.clientCAFile {
            configuration.trustRoots = .file(ca)
            configuration.certificateVerification = .noHostnameVerification
        }
        return configuration
    }
}

public struct ListenerError: Error, CustomStringConvertible {
    public let description: String
}

extension CloudAPI {
    /// The API as a runnable application on `listener`; `onListening` is told the port it
    /// bound (useful with port 0).
    public func application(listener: APIListener, logger: Logger = Logger(label: "cloudtap.api"),
                            onListening: @escaping @Sendable (Int) async -> Void = { _ in })
        throws -> Application<RouterResponder<CloudRequestContext>>
    {
        let configuration = ApplicationConfiguration(address: .hostname(listener.host, port: listener.port), serverName: "CloudTap")
        let running: @Sendable (any Channel) async -> Void = { channel in await onListening(channel.localAddress?.port ?? listener.port) }
        if let tls = try listener.tlsConfiguration() {
            return Application(router: router(), server: try .tls(.http1(), tlsConfiguration: tls), configuration: configuration,
                               onServerRunning: running, logger: logger)
        }
        guard listener.isLoopback else {
            throw ListenerError(description: "plain HTTP is allowed only on a loopback address; configure TLS to listen on \(listener.host)")
        }
        return Application(router: router(), configuration: configuration, onServerRunning: running, logger: logger)
    }
}
