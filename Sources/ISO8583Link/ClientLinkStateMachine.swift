import ISO8583

/// The client side of an ISO 8583 link as a pure state machine: it decides, the I/O layer
/// does. Times are monotonic nanoseconds supplied by the caller, so tests drive it by hand.
///
/// It signs on after connecting (when configured), matches responses to requests by
/// ``MatchRule``, refuses a second request with a key already in flight, fails requests whose
/// time is up, reports responses nobody waits for as late, echoes when the line is idle, and
/// reconnects with exponential backoff.
public struct ClientLinkStateMachine: Sendable {
    public struct Configuration: Sendable {
        public var matchRule = MatchRule()
        public var requestTimeoutNanos: UInt64 = 30_000_000_000
        public var idleEchoNanos: UInt64 = 60_000_000_000
        public var initialBackoffNanos: UInt64 = 100_000_000
        public var maximumBackoffNanos: UInt64 = 30_000_000_000
        /// Sign on (0800/001) after each connect and wait for 0810 "00" before sending requests.
        public var signOn = true
        /// Network management messages the link makes itself, for a STAN.
        public var signOnMessage: @Sendable (String) -> Message
        public var echoMessage: @Sendable (String) -> Message

        public init(signOnMessage: @escaping @Sendable (String) -> Message, echoMessage: @escaping @Sendable (String) -> Message) {
            self.signOnMessage = signOnMessage
            self.echoMessage = echoMessage
        }
    }

    /// Why a request failed.
    public enum Failure: Error, Hashable, Sendable {
        case duplicateInFlight(MatchKey)
        case timedOut
        case connectionLost
        case shuttingDown
        case signOnRefused(String)
    }

    public enum Action: Sendable, Equatable {
        case connect
        case send(Message)
        case succeed(id: Int, response: Message)
        case fail(id: Int, Failure)
        /// A response that matched nothing in flight (its request timed out, or it was never sent).
        case late(Message)
        case close
        /// Reconnect no earlier than this time.
        case scheduleReconnect(atNanos: UInt64)
    }

    public enum State: Sendable, Equatable {
        case idle
        case connecting
        case signingOn(MatchKey)
        case ready
        case waitingToReconnect(atNanos: UInt64)
        case shutDown
    }

    struct InFlight: Sendable {
        var id: Int
        var deadline: UInt64
    }

    public private(set) var state: State = .idle
    let configuration: Configuration
    var inFlight: [MatchKey: InFlight] = [:]
    /// Requests submitted before the link was ready, in order.
    var queued: [(id: Int, message: Message, deadline: UInt64)] = []
    var lastTraffic: UInt64 = 0
    var backoff: UInt64
    var stan: Int = 0
    var echoKey: MatchKey?

    public init(configuration: Configuration) {
        self.configuration = configuration
        self.backoff = configuration.initialBackoffNanos
    }

    public var inFlightCount: Int { inFlight.count }

    mutating func nextSTAN() -> String {
        stan = stan % 999_999 + 1
        let s = String(stan)
        return String(repeating: "0", count: 6 - s.count) + s
    }

    // MARK: Events

    public mutating func start(now: UInt64) -> [Action] {
        guard state == .idle else { return [] }
        state = .connecting
        return [.connect]
    }

    public mutating func connected(now: UInt64) -> [Action] {
        guard state == .connecting else { return [] }
        backoff = configuration.initialBackoffNanos
        lastTraffic = now
        if configuration.signOn {
            let message = configuration.signOnMessage(nextSTAN())
            state = .signingOn(configuration.matchRule.key(for: message))
            return [.send(message)]
        }
        state = .ready
        return flush(now: now)
    }

    public mutating func connectFailed(now: UInt64) -> [Action] {
        guard state == .connecting else { return [] }
        return scheduleReconnect(now: now)
    }

    public mutating func disconnected(now: UInt64) -> [Action] {
        switch state {
        case .shutDown, .idle, .waitingToReconnect: return []
        default: break
        }
        var actions = inFlight.values.map { Action.fail(id: $0.id, .connectionLost) }
        inFlight.removeAll()
        echoKey = nil
        actions += scheduleReconnect(now: now)
        return actions
    }

    /// A request to send; `id` names it in the completing action.
    public mutating func submit(_ message: Message, id: Int, now: UInt64) -> [Action] {
        let deadline = now + configuration.requestTimeoutNanos
        switch state {
        case .shutDown:
            return [.fail(id: id, .shuttingDown)]
        case .ready:
            let key = configuration.matchRule.key(for: message)
            guard inFlight[key] == nil else { return [.fail(id: id, .duplicateInFlight(key))] }
            inFlight[key] = InFlight(id: id, deadline: deadline)
            lastTraffic = now
            return [.send(message)]
        default:
            let key = configuration.matchRule.key(for: message)
            if inFlight[key] != nil || queued.contains(where: { configuration.matchRule.key(for: $0.message) == key }) {
                return [.fail(id: id, .duplicateInFlight(key))]
            }
            queued.append((id, message, deadline))
            return []
        }
    }

    public mutating func received(_ message: Message, now: UInt64) -> [Action] {
        lastTraffic = now
        let key = configuration.matchRule.key(for: message)
        if case .signingOn(let signOnKey) = state, key == signOnKey {
            guard message[39] == "00" else {
                state = .shutDown
                let actions = queued.map { Action.fail(id: $0.id, .signOnRefused(message[39] ?? "")) }
                queued.removeAll()
                return actions + [.close]
            }
            state = .ready
            return flush(now: now)
        }
        if key == echoKey {
            echoKey = nil
            return []
        }
        guard let pending = inFlight.removeValue(forKey: key) else { return [.late(message)] }
        return [.succeed(id: pending.id, response: message)]
    }

    /// Timers: request deadlines, idle echo, reconnect time.
    public mutating func tick(now: UInt64) -> [Action] {
        var actions: [Action] = []
        for (key, pending) in inFlight where pending.deadline <= now {
            inFlight.removeValue(forKey: key)
            actions.append(.fail(id: pending.id, .timedOut))
        }
        let expired = queued.filter { $0.deadline <= now }
        queued.removeAll { $0.deadline <= now }
        actions += expired.map { .fail(id: $0.id, .timedOut) }
        switch state {
        case .ready where now >= lastTraffic + configuration.idleEchoNanos && echoKey == nil:
            let echo = configuration.echoMessage(nextSTAN())
            echoKey = configuration.matchRule.key(for: echo)
            lastTraffic = now
            actions.append(.send(echo))
        case .waitingToReconnect(let at) where now >= at:
            state = .connecting
            actions.append(.connect)
        default:
            break
        }
        return actions
    }

    public mutating func shutdown() -> [Action] {
        guard state != .shutDown else { return [] }
        state = .shutDown
        var actions = inFlight.values.map { Action.fail(id: $0.id, .shuttingDown) }
        actions += queued.map { .fail(id: $0.id, .shuttingDown) }
        inFlight.removeAll()
        queued.removeAll()
        return actions + [.close]
    }

    // MARK: Helpers

    private mutating func flush(now: UInt64) -> [Action] {
        var actions: [Action] = []
        let pending = queued
        queued.removeAll()
        for q in pending {
            if q.deadline <= now {
                actions.append(.fail(id: q.id, .timedOut))
            } else {
                let key = configuration.matchRule.key(for: q.message)
                inFlight[key] = InFlight(id: q.id, deadline: q.deadline)
                actions.append(.send(q.message))
            }
        }
        return actions
    }

    private mutating func scheduleReconnect(now: UInt64) -> [Action] {
        let at = now + backoff
        backoff = min(backoff * 2, configuration.maximumBackoffNanos)
        state = .waitingToReconnect(atNanos: at)
        return [.scheduleReconnect(atNanos: at)]
    }
}
