import Foundation

// Swift concurrency runs every test's tasks on as many threads as the machine has cores (two on
// CI). A test that holds one of them for seconds — a fuzz loop in a debug build, a child process
// waited for, a database cluster started — stalls every other test meanwhile: their timers fire
// late, their in-process servers stop answering, and a test that checks a time limit fails for
// a reason that is not its own. These two keep long work off those threads, or make it share them.

/// Runs `body` on a thread of its own and resumes with its result: for blocking work (a child
/// process, `initdb`, `openssl`) and for long computations that check nothing as they go.
/// Expectations belong after the `await`: `#expect` finds its test through the calling task.
///
/// A new thread, not `DispatchQueue.global()`: on Linux that queue's threads are the very ones
/// Swift concurrency runs its tasks on, as many as there are cores.
public func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.name = "test-off-pool"
        thread.start()
    }
}

/// Runs `body` for each index in `range`, in order, giving the thread to other tasks whenever it
/// has held it for `slice`: for a long loop that checks expectations as it goes (a fuzz run, a
/// cipher iterated a million times), which must stay on its test's task.
public func sharingThread(_ range: Range<Int>, slice: Duration = .milliseconds(2), _ body: (Int) async throws -> Void) async rethrows {
    let clock = ContinuousClock()
    var since = clock.now
    for index in range {
        try await body(index)
        if clock.now - since >= slice {
            await Task.yield()
            since = clock.now
        }
    }
}
