import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Synchronization
import Testing
import Wallet

/// A server on a thread of its own, of blocking sockets, that answers every request on a
/// connection with `answer(n)` (n counts requests over all connections) and closes the
/// connection after it when `close(n)`; it counts the connections it accepted.
final class ScriptedHTTPServer: Sendable {
    let port: Int
    private let listener: Int32
    private let counts = Counts()

    final class Counts: Sendable {
        let value = Mutex<(connections: Int, requests: Int)>((0, 0))
    }

    init(answer: @escaping @Sendable (Int) -> String, close: @escaping @Sendable (Int) -> Bool) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 8) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard bound else { throw POSIXError(.EADDRNOTAVAIL) }
        port = Int(UInt16(bigEndian: address.sin_port))
        let counts = counts
        Thread.detachNewThread {
            while true {
                let connection = accept(listener, nil, nil)
                guard connection >= 0 else {
                    // Stopped. The listener is closed here, by the only thread that uses it: closed
                    // in stop(), its number could go to another test's socket before this loop
                    // came back to accept() on it, and take that socket's connections.
                    Glibc.close(listener)
                    return
                }
                counts.value.withLock { $0.connections += 1 }
                Thread.detachNewThread {
                    defer { Glibc.close(connection) }
                    var pending: [UInt8] = []
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    while true {
                        // One request: the head, then as many body bytes as it says.
                        var end: Int?
                        while end == nil {
                            if let range = Self.headEnd(pending) { end = range; break }
                            let n = read(connection, &buffer, buffer.count)
                            guard n > 0 else { return }
                            pending += buffer[0..<n]
                        }
                        let head = String(decoding: pending[0..<end!], as: UTF8.self).lowercased()
                        let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                            .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                        while pending.count < end! + length {
                            let n = read(connection, &buffer, buffer.count)
                            guard n > 0 else { return }
                            pending += buffer[0..<n]
                        }
                        pending.removeFirst(end! + length)
                        let n = counts.value.withLock { c in
                            c.requests += 1
                            return c.requests
                        }
                        let bytes = Array(answer(n).utf8)
                        // send, not write: a client that closed first must not raise SIGPIPE here.
                        _ = bytes.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                        if close(n) { return }
                    }
                }
            }
        }
    }

    var connections: Int { counts.value.withLock { $0.connections } }

    /// Stops accepting: the accepting thread's accept() fails, and it closes the listener.
    func stop() { shutdown(listener, Int32(SHUT_RDWR)) }

    private static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 { return i + 4 }
        return nil
    }

    static func answer(_ status: String, _ body: String, close: Bool = false) -> String {
        "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\(close ? "Connection: close\r\n" : "")\r\n\(body)"
    }
}

@Suite("Keep-alive HTTP/1.1 for many wallets in one process")
struct KeepAliveHTTPTests {
    static func request(_ port: Int, _ path: String, body: String? = nil) -> URLRequest {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = body == nil ? "GET" : "POST"
        request.httpBody = body.map { Data($0.utf8) }
        return request
    }

    @Test("calls one after another share a connection; answers, statuses and bodies come back whole")
    func reuse() async throws {
        let server = try ScriptedHTTPServer(answer: { n in ScriptedHTTPServer.answer(n == 3 ? "409 Conflict" : "200 OK", "{\"n\":\(n)}") },
                                            close: { _ in false })
        defer { server.stop() }
        let transport = KeepAliveHTTPTransport(host: "127.0.0.1", port: server.port)
        for n in 1...4 {
            let (status, body) = try await transport.exchange(Self.request(server.port, "/v1/x?n=\(n)", body: n % 2 == 0 ? "{\"a\":1}" : nil))
            #expect(status == (n == 3 ? 409 : 200))
            #expect(String(decoding: body, as: UTF8.self) == "{\"n\":\(n)}")
        }
        #expect(server.connections == 1)
        #expect(transport.idleConnections == 1)
        await transport.close()
    }

    @Test("calls at once each take a connection, and all are kept for the next")
    func concurrent() async throws {
        let server = try ScriptedHTTPServer(answer: { n in ScriptedHTTPServer.answer("200 OK", "{\"n\":\(n)}") }, close: { _ in false })
        defer { server.stop() }
        let transport = KeepAliveHTTPTransport(host: "127.0.0.1", port: server.port)
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<6 { group.addTask { try await transport.exchange(Self.request(server.port, "/")).status } }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses == Array(repeating: 200, count: 6))
        #expect(server.connections <= 6)
        #expect(transport.idleConnections == server.connections)
        await transport.close()
    }

    @Test("a connection the server closes, in its answer or while idle, is not used again")
    func closed() async throws {
        // The first answer says "Connection: close"; the second is kept-alive, but the server
        // closes the connection after it anyway.
        let server = try ScriptedHTTPServer(answer: { n in ScriptedHTTPServer.answer("200 OK", "{}", close: n == 1) }, close: { n in n <= 2 })
        defer { server.stop() }
        let transport = KeepAliveHTTPTransport(host: "127.0.0.1", port: server.port)
        #expect(try await transport.exchange(Self.request(server.port, "/")).status == 200)
        #expect(transport.idleConnections == 0)
        #expect(try await transport.exchange(Self.request(server.port, "/")).status == 200)
        // The server's close reaches the idle connection; it is not counted as idle any more.
        for _ in 0..<200 where transport.idleConnections > 0 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(transport.idleConnections == 0)
        #expect(try await transport.exchange(Self.request(server.port, "/")).status == 200)
        #expect(server.connections == 3)
        #expect(transport.idleConnections == 1)
        await transport.close()
    }

    @Test("a call ends at its request's time limit, an answer too large fails, and a request for another server is not sent",
          .timeLimit(.minutes(1)))
    func limits() async throws {
        let silent = try ScriptedHTTPServer(answer: { _ in "" }, close: { _ in false })
        defer { silent.stop() }
        let transport = KeepAliveHTTPTransport(host: "127.0.0.1", port: silent.port)
        var request = Self.request(silent.port, "/")
        request.timeoutInterval = 0.2
        let started = ContinuousClock.now
        await #expect(throws: URLError(.timedOut)) { _ = try await transport.exchange(request) }
        #expect(ContinuousClock.now - started < .seconds(5))
        await #expect(throws: URLError(.badURL)) { _ = try await transport.exchange(Self.request(silent.port + 1, "/")) }
        await transport.close()

        let large = String(repeating: "x", count: KeepAliveHTTPTransport.largestBody + 1)
        let talker = try ScriptedHTTPServer(answer: { _ in ScriptedHTTPServer.answer("200 OK", large) }, close: { _ in false })
        defer { talker.stop() }
        let other = KeepAliveHTTPTransport(host: "127.0.0.1", port: talker.port)
        await #expect(throws: (any Error).self) { _ = try await other.exchange(Self.request(talker.port, "/")) }
        #expect(other.idleConnections == 0)
        await other.close()
    }

    @Test("a call to a server that never answers ends when its task is cancelled; a closed transport refuses calls", .timeLimit(.minutes(1)))
    func cancelled() async throws {
        let server = try ScriptedHTTPServer(answer: { _ in "" }, close: { _ in false })
        defer { server.stop() }
        let transport = KeepAliveHTTPTransport(host: "127.0.0.1", port: server.port)
        let call = Task { try await transport.exchange(Self.request(server.port, "/")) }
        try await Task.sleep(for: .milliseconds(200))
        let started = ContinuousClock.now
        call.cancel()
        await #expect(throws: (any Error).self) { _ = try await call.value }
        #expect(ContinuousClock.now - started < .seconds(5))
        await transport.close()
        await #expect(throws: (any Error).self) { _ = try await transport.exchange(Self.request(server.port, "/")) }
    }
}
