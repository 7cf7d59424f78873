import ISO8583
import NIOSSL

/// Where a link goes and how it talks: address, dialect, framing, and TLS.
public struct LinkEndpoint: Sendable {
    public var host: String
    public var port: Int
    public var spec: MessageSpec
    public var framing: Framing
    public var maximumFrameLength: Int
    /// TLS (and mutual TLS, with a certificate on both sides and client verification on the
    /// server) when set; plain TCP when nil, for loopback development.
    public var tls: TLSConfiguration?
    /// The name the client expects in the server's certificate.
    public var serverHostname: String?

    public init(host: String, port: Int, spec: MessageSpec, framing: Framing, maximumFrameLength: Int = 8192,
                tls: TLSConfiguration? = nil, serverHostname: String? = nil) {
        self.host = host
        self.port = port
        self.spec = spec
        self.framing = framing
        self.maximumFrameLength = maximumFrameLength
        self.tls = tls
        self.serverHostname = serverHostname
    }

    var parser: FrameParser { FrameParser(framing: framing, maximumLength: maximumFrameLength) }
}
