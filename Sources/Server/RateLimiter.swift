import Foundation

/// A sliding-window limit per key (requestor and device), in memory: enough for one API
/// process; several processes would share it through the database.
final class RateLimiter: @unchecked Sendable {
    private let lock = NSLock()
    private var hits: [String: [Date]] = [:]
    let limit: Int
    let window: TimeInterval

    init(limit: Int, window: TimeInterval) {
        self.limit = limit
        self.window = window
    }

    /// Records an attempt; false when the key has used its allowance in the window.
    func allow(_ key: String, now: Date = Date()) -> Bool {
        lock.withLock {
            let recent = (hits[key] ?? []).filter { now.timeIntervalSince($0) < window }
            guard recent.count < limit else {
                hits[key] = recent
                return false
            }
            hits[key] = recent + [now]
            return true
        }
    }
}
