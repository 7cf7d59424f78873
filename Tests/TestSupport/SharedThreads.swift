import Foundation

// Swift concurrency runs every test's tasks on as many threads as the machine has cores (two on
// CI). A test that holds one of them for seconds — a fuzz loop in a debug build, a child process
// waited for, a database cluster started — stalls every other test meanwhile: their timers fire
// late, their in-process servers stop answering, and a test of a time limit fails for a reason
// not its own. A loop that only yields now and then is no cure: every hop of another test's
// flow then queues behind its slices, and a switch test's 100 ms issuer timeout fires. So long
// work goes to a thread of its own, at a lower priority, and the kernel shares the cores.

/// Runs `body` on a thread of its own and resumes with its result: for blocking work (a child
/// process, `initdb`, `openssl`) and long computations that check nothing as they go.
///
/// A new thread, not `DispatchQueue.global()`: on Linux that queue's threads are the very ones
/// Swift concurrency runs its tasks on.
public func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            nameThisThread("test-off-pool")
            continuation.resume(with: Result { try body() })
        }.start()
    }
}

/// Runs `body` — asynchronous code, in the calling task — on a thread of its own: for a long
/// loop that checks expectations as it goes (a fuzz run, a cipher iterated a million times).
/// `#expect` finds its test through the task, so the loop cannot leave it; the task's jobs go to
/// this thread instead of the shared ones until `body` returns.
public func onOwnThread<T>(_ body: () async throws -> T) async rethrows -> T {
    let executor = ThreadExecutor(name: "test-own-thread")
    defer { executor.finish() }
    return try await withTaskExecutorPreference(executor, operation: body)
}

/// A task executor with one thread at a time, which runs the jobs given to it in order. Once
/// finished it ends its thread when idle; a job that came later would start another.
final class ThreadExecutor: TaskExecutor, @unchecked Sendable {  // state behind the condition
    private let name: String
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var finished = false
    private var running = false

    init(name: String) {
        self.name = name
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let start = condition.withLock {
            jobs.append(job)
            condition.signal()
            defer { running = true }
            return !running
        }
        if start {
            let thread = Thread { [self] in
                // Nice 10: the kernel gives the shared threads the cores first, so this one fills
                // the time they leave instead of slowing every other test's hops. (On Linux a
                // nice value is a thread's, and `who` 0 is the calling thread.)
                _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
                nameThisThread(name)
                run()
            }
            thread.start()
        }
    }

    /// No more jobs are expected: the thread ends when it has run those it has.
    func finish() {
        condition.withLock {
            finished = true
            condition.signal()
        }
    }

    private func run() {
        while true {
            condition.lock()
            while jobs.isEmpty && !finished { condition.wait() }
            if jobs.isEmpty {
                running = false
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

/// Names the calling thread as `top -H`, perf and /proc show it (15 bytes at most). Foundation's
/// `Thread.name` does not reach the kernel on Linux: the thread keeps its creator's name.
func nameThisThread(_ name: String) {
    guard let comm = FileHandle(forWritingAtPath: "/proc/thread-self/comm") else { return }
    comm.write(Data(name.utf8.prefix(15)))
    try? comm.close()
}
