import Crypto
import Hummingbird
import NIOCore
import NIOSSL

/// The request context of the cloud API: Hummingbird's core context plus the connection, so
/// a handler can see the TLS client certificate the connection presented.
public struct CloudRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: (any Channel)?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// The SHA-256 of the DER client certificate this connection presented, if it is a TLS
    /// connection with one.
    func clientCertificateSHA256() async -> [UInt8]? {
        guard let channel else { return nil }
        let der: [UInt8]?? = try? await channel.eventLoop.submit { () throws -> [UInt8]? in
            try channel.pipeline.syncOperations.handler(type: NIOSSLHandler.self).peerCertificate?.toDERBytes()
        }.get()
        return (der ?? nil).map { Array(SHA256.hash(data: $0)) }
    }
}
