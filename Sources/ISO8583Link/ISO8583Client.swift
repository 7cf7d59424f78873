import Foundation
import ISO8583
import NIOCore
import NIOPosix
import NIOSSL

/// The client end of an ISO 8583 link: ``ClientLinkStateMachine`` decides; this class carries
/// out its actions on one event loop (connect, write, complete requests, close) and feeds it
/// events (connected, frames, timers).
public final class ISO8583Client: @unchecked Sendable {
    // Everything below is touched only on `loop`.
    private var machine: ClientLinkStateMachine
    private var promises: [Int: EventLoopPromise<Message>] = [:]
    private var nextID = 0
    private var channel: (any Channel)?
    private var timer: RepeatedTask?

    let endpoint: LinkEndpoint
    /// The event loop the link runs on.
    public let loop: any EventLoop
    let sslContext: NIOSSLContext?
    let started = ContinuousClock.now
    private let lateContinuation: AsyncStream<Message>.Continuation
    /// Responses that matched no request in flight (their request timed out, or never was).
    public let lateResponses: AsyncStream<Message>

    public init(endpoint: LinkEndpoint, configuration: ClientLinkStateMachine.Configuration,
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        self.endpoint = endpoint
        self.machine = ClientLinkStateMachine(configuration: configuration)
        self.loop = group.next()
        self.sslContext = try endpoint.tls.map { try NIOSSLContext(configuration: $0) }
        (lateResponses, lateContinuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1000))
    }

    private var now: UInt64 {
        let d = ContinuousClock.now - started
        return UInt64(d.components.seconds) * 1_000_000_000 + UInt64(d.components.attoseconds / 1_000_000_000)
    }

    /// Connects (and signs on, when configured); requests sent before that wait in order.
    public func start() {
        loop.execute {
            let every = Self.tickInterval(self.machine.configuration)
            self.timer = self.loop.scheduleRepeatedTask(initialDelay: every, delay: every) { _ in
                self.run(self.machine.tick(now: self.now))
            }
            self.run(self.machine.start(now: self.now))
        }
    }

    /// Sends a request and waits for its response. Throws the packing error when the dialect
    /// cannot carry the message, and ``ClientLinkStateMachine/Failure`` on timeout, a lost
    /// connection, a duplicate key in flight, or shutdown.
    public func send(_ request: Message) async throws -> Message {
        // A message the dialect cannot carry fails here, to the caller, rather than on the wire.
        _ = try endpoint.spec.pack(request)
        let promise = loop.makePromise(of: Message.self)
        loop.execute {
            let id = self.nextID
            self.nextID += 1
            self.promises[id] = promise
            self.run(self.machine.submit(request, id: id, now: self.now))
        }
        return try await promise.futureResult.get()
    }

    /// Fails what is in flight, closes the connection and stops reconnecting.
    public func shutdown() async {
        let done = loop.makePromise(of: Void.self)
        loop.execute {
            self.timer?.cancel()
            self.run(self.machine.shutdown())
            self.lateContinuation.finish()
            done.succeed(())
        }
        try? await done.futureResult.get()
    }

    /// Whether the link is connected and signed on.
    public var isReady: Bool {
        get async { (try? await loop.submit { self.machine.state == .ready }.get()) ?? false }
    }

    // MARK: Carrying out actions (on the loop)

    private func run(_ actions: [ClientLinkStateMachine.Action]) {
        loop.preconditionInEventLoop()
        for action in actions {
            switch action {
            case .connect:
                connect()
            case .send(let message):
                guard let channel, let bytes = try? endpoint.spec.pack(message) else { continue }
                channel.writeAndFlush(bytes, promise: nil)
            case .succeed(let id, let response):
                promises.removeValue(forKey: id)?.succeed(response)
            case .fail(let id, let failure):
                promises.removeValue(forKey: id)?.fail(failure)
            case .late(let message):
                lateContinuation.yield(message)
            case .close:
                channel?.close(promise: nil)
                channel = nil
            case .scheduleReconnect(let at):
                // On time, not at the next look at the timeouts.
                let now = self.now
                loop.scheduleTask(in: .nanoseconds(Int64(clamping: at > now ? at - now : 0))) { self.run(self.machine.tick(now: self.now)) }
            }
        }
    }

    /// How often the link looks at its timeouts and its idle time: a fiftieth of the shorter of
    /// the request timeout and the echo interval, between 10 and 100 ms. (A look every 10 ms on
    /// every link was most of a load generator's timer work, 6,400 a second for 64 terminals —
    /// about 5 % of its CPU; on the whole load run the difference is within the noise.)
    static func tickInterval(_ configuration: ClientLinkStateMachine.Configuration) -> TimeAmount {
        let fiftieth = min(configuration.requestTimeoutNanos, configuration.idleEchoNanos) / 50
        return .nanoseconds(Int64(min(max(fiftieth, 10_000_000), 100_000_000)))
    }

    private func connect() {
        let endpoint = self.endpoint, sslContext = self.sslContext
        ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: sslContext, serverHostname: endpoint.serverHostname))
                    }
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(FrameDecoder(parser: endpoint.parser)),
                        MessageToByteHandler(FrameEncoder(parser: endpoint.parser)),
                        ClientConnectionHandler(client: self),
                    ])
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    self.channel = channel
                    channel.closeFuture.whenComplete { _ in
                        if self.channel === channel { self.channel = nil }
                        self.run(self.machine.disconnected(now: self.now))
                    }
                    self.run(self.machine.connected(now: self.now))
                case .failure:
                    self.run(self.machine.connectFailed(now: self.now))
                }
            }
    }

    fileprivate func received(_ bytes: [UInt8]) {
        guard let message = try? endpoint.spec.unpack(bytes) else { return }  // an unreadable answer matches nothing
        run(machine.received(message, now: now))
    }
}

/// Hands frames from the connection to the client on its loop.
final class ClientConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = [UInt8]
    let client: ISO8583Client

    init(client: ISO8583Client) { self.client = client }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        client.received(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
