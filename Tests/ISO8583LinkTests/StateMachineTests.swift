import Testing
import ISO8583
@testable import ISO8583Link

@Suite("Client link state machine")
struct StateMachineTests {
    typealias SM = ClientLinkStateMachine

    static func configuration(signOn: Bool = true) -> SM.Configuration {
        var c = SM.Configuration(
            signOnMessage: { stan in NetworkManagement(code: .signOn, stan: stan).message(style: .network) },
            echoMessage: { stan in NetworkManagement(code: .echo, stan: stan).message(style: .network) })
        c.signOn = signOn
        c.requestTimeoutNanos = 1_000
        c.idleEchoNanos = 10_000
        c.initialBackoffNanos = 100
        c.maximumBackoffNanos = 400
        return c
    }

    static func request(stan: String, tid: String = "TERM0001") -> Message {
        var m = Message(mti: "0200")
        m[11] = stan
        m[41] = tid
        return m
    }

    static func response(to m: Message, code: String = "00") -> Message {
        var r = Message(mti: MessageType.responseMTI(for: m.mti)!)
        r[11] = m[11]
        r[41] = m[41]
        r[39] = code
        return r
    }

    @Test("signs on first, holds requests until then, and matches responses by terminal id and STAN")
    func signOnAndMatch() {
        var sm = SM(configuration: Self.configuration())
        #expect(sm.start(now: 0) == [.connect])
        let early = Self.request(stan: "000100")
        #expect(sm.submit(early, id: 1, now: 1).isEmpty)  // queued
        let actions = sm.connected(now: 2)
        guard case .send(let signOn) = actions.first else { Issue.record("no sign-on"); return }
        #expect(signOn.mti == "0800")
        #expect(signOn[70] == "001")
        // The sign-on answer releases the queued request.
        #expect(sm.received(Self.response(to: signOn), now: 3) == [.send(early)])
        #expect(sm.state == .ready)
        // Two in flight; answers in any order find their requests.
        let second = Self.request(stan: "000101")
        #expect(sm.submit(second, id: 2, now: 4) == [.send(second)])
        #expect(sm.inFlightCount == 2)
        #expect(sm.received(Self.response(to: second), now: 5) == [.succeed(id: 2, response: Self.response(to: second))])
        #expect(sm.received(Self.response(to: early), now: 6) == [.succeed(id: 1, response: Self.response(to: early))])
        #expect(sm.inFlightCount == 0)
    }

    @Test("a second request with a key in flight is refused")
    func duplicate() {
        var sm = SM(configuration: Self.configuration(signOn: false))
        _ = sm.start(now: 0)
        _ = sm.connected(now: 0)
        let r = Self.request(stan: "000001")
        #expect(sm.submit(r, id: 1, now: 1) == [.send(r)])
        let actions = sm.submit(r, id: 2, now: 2)
        guard case .fail(2, .duplicateInFlight)? = actions.first else { Issue.record("\(actions)"); return }
        // The same STAN from another terminal is a different key.
        let other = Self.request(stan: "000001", tid: "TERM0002")
        #expect(sm.submit(other, id: 3, now: 3) == [.send(other)])
    }

    @Test("a request times out and its late answer is reported apart")
    func timeoutAndLate() {
        var sm = SM(configuration: Self.configuration(signOn: false))
        _ = sm.start(now: 0)
        _ = sm.connected(now: 0)
        let r = Self.request(stan: "000002")
        _ = sm.submit(r, id: 7, now: 10)
        #expect(sm.tick(now: 500).isEmpty)
        #expect(sm.tick(now: 1_010) == [.fail(id: 7, .timedOut)])
        #expect(sm.received(Self.response(to: r), now: 1_100) == [.late(Self.response(to: r))])
    }

    @Test("an idle line is echoed, and the echo's answer is absorbed")
    func echo() {
        var sm = SM(configuration: Self.configuration(signOn: false))
        _ = sm.start(now: 0)
        _ = sm.connected(now: 0)
        #expect(sm.tick(now: 5_000).isEmpty)
        let actions = sm.tick(now: 10_000)
        guard case .send(let echo)? = actions.first else { Issue.record("no echo"); return }
        #expect(echo[70] == "301")
        #expect(sm.received(Self.response(to: echo), now: 10_001).isEmpty)
    }

    @Test("a lost connection fails what is in flight and reconnects with growing backoff")
    func reconnect() {
        var sm = SM(configuration: Self.configuration(signOn: false))
        _ = sm.start(now: 0)
        _ = sm.connected(now: 0)
        _ = sm.submit(Self.request(stan: "000003"), id: 1, now: 1)
        let lost = sm.disconnected(now: 10)
        #expect(lost.contains(.fail(id: 1, .connectionLost)))
        #expect(lost.contains(.scheduleReconnect(atNanos: 110)))
        #expect(sm.tick(now: 50).isEmpty)
        #expect(sm.tick(now: 110) == [.connect])
        #expect(sm.connectFailed(now: 120) == [.scheduleReconnect(atNanos: 320)])
        #expect(sm.tick(now: 320) == [.connect])
        #expect(sm.connectFailed(now: 330) == [.scheduleReconnect(atNanos: 730)])
        #expect(sm.tick(now: 730) == [.connect])
        #expect(sm.connectFailed(now: 740) == [.scheduleReconnect(atNanos: 1_140)])  // capped at 400
        #expect(sm.tick(now: 1_140) == [.connect])
        #expect(sm.connected(now: 1_150).isEmpty)
        #expect(sm.state == .ready)
    }

    @Test("a refused sign-on fails the queue and closes; shutdown fails everything")
    func refusalAndShutdown() {
        var sm = SM(configuration: Self.configuration())
        _ = sm.start(now: 0)
        _ = sm.submit(Self.request(stan: "000004"), id: 1, now: 0)
        guard case .send(let signOn)? = sm.connected(now: 1).first else { Issue.record("no sign-on"); return }
        let refused = sm.received(Self.response(to: signOn, code: "96"), now: 2)
        #expect(refused == [.fail(id: 1, .signOnRefused("96")), .close])

        var other = SM(configuration: Self.configuration(signOn: false))
        _ = other.start(now: 0)
        _ = other.connected(now: 0)
        _ = other.submit(Self.request(stan: "000005"), id: 9, now: 0)
        #expect(other.shutdown() == [.fail(id: 9, .shuttingDown), .close])
        #expect(other.submit(Self.request(stan: "000006"), id: 10, now: 1) == [.fail(id: 10, .shuttingDown)])
    }
}
