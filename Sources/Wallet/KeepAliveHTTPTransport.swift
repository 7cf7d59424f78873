import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// How a ``HTTPCloudConnection`` puts its requests on the wire.
public protocol HTTPTransport: Sendable {
    /// The answer's status and body.
    func exchange(_ request: URLRequest) async throws -> (status: Int, body: Data)
}

/// URLSession: what a phone uses.
public struct URLSessionTransport: HTTPTransport {
    public let session: URLSession

    public init(_ session: URLSession) { self.session = session }

    public func exchange(_ request: URLRequest) async throws -> (status: Int, body: Data) {
        let (data, response) = try await HTTPCloudConnection.exchange(request, on: session)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }
}

/// HTTP/1.1 over SwiftNIO with keep-alive connections to one server, for many wallets in one
/// process (`cloudtap load`'s phones). A request takes an idle connection, or opens one when
/// none is idle; the connection is kept for the next request when the answer leaves it open.
///
/// Where URLSession is swift-corelibs-foundation's, each exchange passes through libcurl's
/// multi handle and several dispatch queues: in a load run at 1,000 sales a second, its threads
/// woke about twenty times a sale, for replenishments that come once in forty sales
/// (docs/benchmarks.md). Here an exchange is a write and a read on one event loop.
///
/// A request is sent once: one that fails because its connection closed is not sent again
/// (a replenishment is not idempotent), and its caller sees the error. A request goes only to
/// the transport's server, ends at its `timeoutInterval`, and an answer whose body passes
/// ``largestBody`` fails and closes its connection.
public final class KeepAliveHTTPTransport: HTTPTransport {
    public let host: String
    public let port: Int
    let group: any EventLoopGroup
    /// The largest answer body taken (the cloud's largest, a key batch with a long history of
    /// unseen ATCs, is a few kilobytes).
    public static let largestBody = 1 << 20
    private let idle = Mutex<(channels: [any Channel], closed: Bool)>(([], false))

    public init(host: String, port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.host = host
        self.port = port
        self.group = group
    }

    /// The server of an `http://` URL.
    public convenience init(baseURL: URL, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        guard baseURL.scheme == "http", let host = baseURL.host else {
            throw CloudRefusal(status: 0, code: "unsupported-url", detail: "keep-alive HTTP speaks plain http:// only")
        }
        self.init(host: host, port: baseURL.port ?? 80, group: group)
    }

    /// The idle connections still open.
    public var idleConnections: Int { idle.withLock { $0.channels.filter(\.isActive).count } }

    public func exchange(_ request: URLRequest) async throws -> (status: Int, body: Data) {
        guard let url = request.url, url.host == host, (url.port ?? 80) == port else { throw URLError(.badURL) }
        var target = url.path.isEmpty ? "/" : url.path
        if let query = url.query { target += "?" + query }
        var headers = HTTPHeaders()
        for (name, value) in request.allHTTPHeaderFields ?? [:] { headers.add(name: name, value: value) }
        headers.replaceOrAdd(name: "Host", value: port == 80 ? host : "\(host):\(port)")
        let body = request.httpBody ?? Data()
        if !body.isEmpty || request.httpMethod != "GET" { headers.replaceOrAdd(name: "Content-Length", value: String(body.count)) }
        let head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: request.httpMethod ?? "GET"), uri: target, headers: headers)

        let channel = try await connection()
        let promise = channel.eventLoop.makePromise(of: ExchangeHandler.Answer.self)
        let exchange = ExchangeHandler.Request(head: head, body: body.isEmpty ? nil : ByteBuffer(bytes: body), answer: promise)
        // A write to a connection that closed meanwhile fails here, not in the handler (which
        // is gone from a closed channel's pipeline): its answer fails with it.
        channel.writeAndFlush(exchange).whenFailure { promise.fail($0) }
        // The request's own time limit, as URLSession keeps it (60 s unless the request says).
        let timeout = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(max(0, request.timeoutInterval) * 1e9))) {
            promise.fail(URLError(.timedOut))
            channel.close(promise: nil)
        }
        promise.futureResult.whenComplete { _ in timeout.cancel() }
        let answer: ExchangeHandler.Answer
        do {
            answer = try await withTaskCancellationHandler {
                try await promise.futureResult.get()
            } onCancel: {
                channel.close(promise: nil)
            }
        } catch {
            channel.close(promise: nil)
            throw error
        }
        if answer.keepAlive { giveBack(channel) } else { channel.close(promise: nil) }
        return (Int(answer.head.status.code), Data(answer.body.readableBytesView))
    }

    /// Closes the idle connections; later requests fail.
    public func close() async {
        let channels = idle.withLock { state in
            state.closed = true
            defer { state.channels = [] }
            return state.channels
        }
        for channel in channels { try? await channel.close() }
    }

    private func connection() async throws -> any Channel {
        enum Taken { case closed, idle(any Channel), none }
        while true {
            let taken = idle.withLock { state -> Taken in
                if state.closed { return .closed }
                return state.channels.popLast().map { .idle($0) } ?? .none
            }
            switch taken {
            case .closed: throw ChannelError.ioOnClosedChannel
            case .idle(let channel):
                if channel.isActive { return channel }  // else the server closed it while idle: take another
            case .none:
                return try await ClientBootstrap(group: group)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHTTPClientHandlers()
                            try channel.pipeline.syncOperations.addHandler(ExchangeHandler())
                        }
                    }
                    .connect(host: host, port: port).get()
            }
        }
    }

    private func giveBack(_ channel: any Channel) {
        let kept = idle.withLock { state in
            guard !state.closed, channel.isActive else { return false }
            state.channels.append(channel)
            return true
        }
        if !kept { channel.close(promise: nil) }
    }
}

/// One request at a time on a connection: writes it, gathers its answer, fails it when the
/// connection closes or errs first.
final class ExchangeHandler: ChannelDuplexHandler {
    struct Request {
        let head: HTTPRequestHead
        let body: ByteBuffer?
        let answer: EventLoopPromise<Answer>
    }

    struct Answer: Sendable {
        let head: HTTPResponseHead
        let body: ByteBuffer
        /// The server keeps the connection open after this answer.
        let keepAlive: Bool
    }

    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Request
    typealias OutboundOut = HTTPClientRequestPart

    private var pending: EventLoopPromise<Answer>?
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        guard pending == nil else {
            request.answer.fail(ChannelError.inappropriateOperationForState)
            promise?.fail(ChannelError.inappropriateOperationForState)
            return
        }
        pending = request.answer
        head = nil
        body.clear()
        context.write(wrapOutboundOut(.head(request.head)), promise: nil)
        if let bytes = request.body { context.write(wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil) }
        context.write(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body(var bytes):
            guard body.readableBytes + bytes.readableBytes <= KeepAliveHTTPTransport.largestBody else {
                fail(HTTPParserError.invalidContentLength)
                context.close(promise: nil)
                return
            }
            body.writeBuffer(&bytes)
        case .end:
            guard let head, let pending else { return }
            self.pending = nil
            self.head = nil
            pending.succeed(Answer(head: head, body: body, keepAlive: head.isKeepAlive))
            body = ByteBuffer()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(ChannelError.eof)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }

    private func fail(_ error: any Error) {
        let pending = self.pending
        self.pending = nil
        pending?.fail(error)
    }
}
