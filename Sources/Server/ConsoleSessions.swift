import Crypto
import Foundation

/// The console's sign-ins, in memory: one-time links (minted by the operator API or printed by
/// `serve` at start, five minutes, used once) and sessions (eight hours, each with its own
/// token for forms, so another site cannot make a signed-in browser post an action).
final class ConsoleSessions: @unchecked Sendable {
    struct Session { let expires: Date; let formToken: String }

    private let lock = NSLock()
    private var links: [String: Date] = [:]
    private var sessions: [String: Session] = [:]
    let linkLifetime: TimeInterval = 300
    let sessionLifetime: TimeInterval = 8 * 3600

    static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// A new one-time sign-in code.
    func mintLink(now: Date = Date()) -> String {
        let code = Self.random()
        lock.withLock {
            links = links.filter { $0.value > now }
            links[Self.digest(code)] = now.addingTimeInterval(linkLifetime)
        }
        return code
    }

    /// Spends a one-time code; a new session id when it was valid.
    func redeem(_ code: String, now: Date = Date()) -> String? {
        let valid = lock.withLock { () -> Bool in
            guard let expires = links.removeValue(forKey: Self.digest(code)) else { return false }
            return expires > now
        }
        return valid ? open(now: now) : nil
    }

    /// A new session (after a one-time code or the operator key).
    func open(now: Date = Date()) -> String {
        let id = Self.random()
        lock.withLock {
            sessions = sessions.filter { $0.value.expires > now }
            sessions[Self.digest(id)] = Session(expires: now.addingTimeInterval(sessionLifetime), formToken: Self.random())
        }
        return id
    }

    func session(_ id: String, now: Date = Date()) -> Session? {
        lock.withLock { sessions[Self.digest(id)].flatMap { $0.expires > now ? $0 : nil } }
    }

    func close(_ id: String) { lock.withLock { _ = sessions.removeValue(forKey: Self.digest(id)) } }

    /// Codes and session ids are kept only as digests: a memory dump does not sign anyone in.
    static func digest(_ secret: String) -> String { SHA256.hash(data: Array(secret.utf8)).map { String(format: "%02x", $0) }.joined() }
}
