import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing
import ISO8583
@testable import ISO8583Link

@Suite("Links over loopback", .serialized)
struct LoopbackTests {
    static func approve(_ request: Message) async -> Message? {
        guard let mti = MessageType.responseMTI(for: request.mti) else { return nil }
        var r = Message(mti: mti)
        for n in [2, 3, 4, 11, 41, 42, 49, 70] { r.set(n, bytes: request.bytes(n)) }
        r[39] = "00"
        return r
    }

    static func clientConfiguration(style: NetworkManagement.Style) -> ClientLinkStateMachine.Configuration {
        var c = ClientLinkStateMachine.Configuration(
            signOnMessage: { NetworkManagement(code: .signOn, stan: $0, terminalID: "TERM0001").message(style: style) },
            echoMessage: { NetworkManagement(code: .echo, stan: $0, terminalID: "TERM0001").message(style: style) })
        c.requestTimeoutNanos = 30_000_000_000
        c.initialBackoffNanos = 10_000_000
        return c
    }

    static func request(_ i: Int) -> Message {
        var m = Message(mti: "0200")
        m[3] = "000000"
        m[4] = "000000003850"
        m[11] = String(format: "%06d", i)
        m[41] = "TERM0001"
        m[42] = "MERCHANT0000001"
        m[49] = "156"
        return m
    }

    @Test("a message the dialect cannot carry fails at once, to the caller, not after the timeout")
    func unpackableRequest() async throws {
        let spec = try MessageSpec.dialect("terminal")
        let server = ISO8583Server(endpoint: LinkEndpoint(host: "127.0.0.1", port: 0, spec: spec, framing: .binaryLength2), handler: Self.approve)
        let port = try await server.start()
        let client = try ISO8583Client(endpoint: LinkEndpoint(host: "127.0.0.1", port: port, spec: spec, framing: .binaryLength2),
                                       configuration: Self.clientConfiguration(style: .terminal))
        client.start()
        var bad = Self.request(1)
        bad[43] = "TOO SHORT"  // DE43 is 40 characters
        await #expect(throws: ISO8583Error.self) { _ = try await client.send(bad) }
        #expect(try await client.send(Self.request(2))[39] == "00")
        await client.shutdown()
        await server.shutdown()
    }

    @Test("a request's handler runs on its connection's event loop, not on Swift's global executor")
    func handlerOnTheLoop() async throws {
        let spec = try MessageSpec.dialect("terminal")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let seen = Mutex<[Bool]>([])
        let server = ISO8583Server(endpoint: LinkEndpoint(host: "127.0.0.1", port: 0, spec: spec, framing: .binaryLength2), group: group) { request in
            seen.withLock { $0.append(MultiThreadedEventLoopGroup.currentEventLoop === loop) }
            // After a wait, too: the task comes back to the loop.
            try? await Task.sleep(for: .milliseconds(1))
            seen.withLock { $0.append(MultiThreadedEventLoopGroup.currentEventLoop === loop) }
            return await Self.approve(request)
        }
        let port = try await server.start()
        let client = try ISO8583Client(endpoint: LinkEndpoint(host: "127.0.0.1", port: port, spec: spec, framing: .binaryLength2),
                                       configuration: Self.clientConfiguration(style: .terminal))
        client.start()
        for i in 1...3 { #expect(try await client.send(Self.request(i))[39] == "00") }
        await client.shutdown()
        await server.shutdown()
        try await group.shutdownGracefully()
        let onLoop = seen.withLock { $0 }
        #expect(onLoop.count >= 6)
        #expect(onLoop.allSatisfy { $0 })
    }

    @Test("many requests in flight on one connection, each answered, in each dialect", arguments: [
        ("terminal", Framing.binaryLength2), ("network", .networkHeader), ("iso87ascii", .asciiLength4),
    ])
    func manyInFlight(dialect: String, framing: Framing) async throws {
        let spec = try MessageSpec.dialect(dialect)
        let server = ISO8583Server(endpoint: LinkEndpoint(host: "127.0.0.1", port: 0, spec: spec, framing: framing), handler: Self.approve)
        let port = try await server.start()
        let client = try ISO8583Client(endpoint: LinkEndpoint(host: "127.0.0.1", port: port, spec: spec, framing: framing),
                                       configuration: Self.clientConfiguration(style: dialect == "terminal" ? .terminal : .network))
        client.start()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 1...200 {
                group.addTask {
                    let response = try await client.send(Self.request(i))
                    #expect(response.mti == "0210")
                    #expect(response[11] == String(format: "%06d", i))
                    #expect(response[39] == "00")
                }
            }
            try await group.waitForAll()
        }
        await client.shutdown()
        await server.shutdown()
    }

    @Test("a request that cannot be unpacked is answered with the format-error code; garbage closes the link")
    func formatError() async throws {
        let spec = MessageSpec.iso87ascii
        let server = ISO8583Server(endpoint: LinkEndpoint(host: "127.0.0.1", port: 0, spec: spec, framing: .asciiLength4), handler: Self.approve)
        let port = try await server.start()
        let parser = FrameParser(framing: .asciiLength4)
        var bad = try spec.pack(Self.request(1))
        let de4 = try #require(bad.firstRange(of: Array("000000003850".utf8))?.lowerBound)
        bad[de4] = UInt8(ascii: "X")  // DE4 no longer numeric
        let reply = try await RawSocket.exchange(port: port, bytes: try parser.frame(bad), parser: parser)
        let m = try spec.unpack(try #require(reply))
        #expect(m.mti == "0210")
        #expect(m[39] == "30")
        #expect(m[11] == "000001")
        // A frame prefix that is not a length: the server closes the connection.
        let closed = try await RawSocket.exchange(port: port, bytes: Array("ABCD".utf8), parser: parser)
        #expect(closed == nil)
        await server.shutdown()
    }

    @Test("requests in progress finish before shutdown closes the connections")
    func drain() async throws {
        let spec = MessageSpec.iso87ascii
        let server = ISO8583Server(endpoint: LinkEndpoint(host: "127.0.0.1", port: 0, spec: spec, framing: .asciiLength4)) { request in
            try? await Task.sleep(for: .milliseconds(300))
            return await Self.approve(request)
        }
        let port = try await server.start()
        let client = try ISO8583Client(endpoint: LinkEndpoint(host: "127.0.0.1", port: port, spec: spec, framing: .asciiLength4),
                                       configuration: Self.clientConfiguration(style: .network))
        client.start()
        while !(await client.isReady) { try await Task.sleep(for: .milliseconds(5)) }
        // The sign-on's handler counts as in flight until its task ends, which can be after the
        // client has its answer: wait for it, so the count seen next is the 0200's.
        for _ in 0..<400 where server.inFlight > 0 { try await Task.sleep(for: .milliseconds(5)) }
        async let answer = client.send(Self.request(42))
        for _ in 0..<400 where server.inFlight == 0 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(server.inFlight == 1)
        await server.shutdown()
        #expect(try await answer[39] == "00")
        await client.shutdown()
    }

    @Test("a link looks at its timers a fiftieth of its shortest timeout apart, between 10 and 100 ms")
    func tickInterval() {
        var c = Self.clientConfiguration(style: .network)
        #expect(ISO8583Client.tickInterval(c) == .milliseconds(100))  // 30 s and 60 s
        c.requestTimeoutNanos = 2_000_000_000
        #expect(ISO8583Client.tickInterval(c) == .milliseconds(40))
        c.requestTimeoutNanos = 200_000_000
        #expect(ISO8583Client.tickInterval(c) == .milliseconds(10))
        c.idleEchoNanos = 1_000_000_000
        c.requestTimeoutNanos = 30_000_000_000
        #expect(ISO8583Client.tickInterval(c) == .milliseconds(20))
    }

    @Test("a client reconnects after the server comes back, and times out against a silent one")
    func reconnectAndTimeout() async throws {
        let spec = MessageSpec.iso87ascii
        let silent = ISO8583Server(endpoint: LinkEndpoint(host: "127.0.0.1", port: 0, spec: spec, framing: .asciiLength4)) { request in
            request.mti == "0800" ? await Self.approve(request) : nil
        }
        let port = try await silent.start()
        var configuration = Self.clientConfiguration(style: .network)
        configuration.requestTimeoutNanos = 200_000_000
        let client = try ISO8583Client(endpoint: LinkEndpoint(host: "127.0.0.1", port: port, spec: spec, framing: .asciiLength4),
                                       configuration: configuration)
        client.start()
        do {
            _ = try await client.send(Self.request(1))
            Issue.record("a silent server answered")
        } catch let failure as ClientLinkStateMachine.Failure {
            #expect(failure == .timedOut)
        }
        await silent.shutdown()
        let again = ISO8583Server(endpoint: LinkEndpoint(host: "127.0.0.1", port: port, spec: spec, framing: .asciiLength4), handler: Self.approve)
        // The port can be taken for a moment by another test's outgoing connection; try again.
        var bound = false
        for _ in 0..<100 where !bound {
            do {
                try await again.start()
                bound = true
            } catch {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        try #require(bound)
        var answered = false
        for _ in 0..<500 where !answered {
            if let r = try? await client.send(Self.request(2)), r[39] == "00" { answered = true } else { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(answered)
        await client.shutdown()
        await again.shutdown()
    }
}

/// A plain blocking socket for sending raw bytes, as a misbehaving peer would.
enum RawSocket {
    static func exchange(port: Int, bytes: [UInt8], parser: FrameParser) async throws -> [UInt8]? {
        let box = Box()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port)
            .flatMapThrowing { channel -> any Channel in
                try channel.pipeline.syncOperations.addHandlers([ByteToMessageHandler(FrameDecoder(parser: parser)), Collector(box: box)])
                return channel
            }.get()
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
        let deadline = ContinuousClock.now + .seconds(2)
        while ContinuousClock.now < deadline {
            if let frame = box.first {
                try? await channel.close()
                return frame
            }
            if !channel.isActive { return nil }
            try await Task.sleep(for: .milliseconds(10))
        }
        try? await channel.close()
        return nil
    }

    final class Box: @unchecked Sendable {
        private let lock = NSLock()
        private var frames: [[UInt8]] = []
        func add(_ f: [UInt8]) { lock.withLock { frames.append(f) } }
        var first: [UInt8]? { lock.withLock { frames.first } }
    }

    final class Collector: ChannelInboundHandler {
        typealias InboundIn = [UInt8]
        let box: Box
        init(box: Box) { self.box = box }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { box.add(unwrapInboundIn(data)) }
    }
}
