import Foundation
import TestSupport
import Testing

@Suite("Test work kept off Swift concurrency's shared threads")
struct SharedThreadsTests {
    static func threadName() -> String {
        (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    static func niceness() -> Int32 {
        errno = 0
        return getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
    }

    @Test("onOwnThread runs the task on its own thread at nice 10 and keeps the test for #expect; a task made inside that outlives it still runs")
    func ownThread() async throws {
        let (name, nice, inTest) = await onOwnThread { () async -> (String, Int32, Bool) in
            await Task.yield()  // after a suspension too
            return (Self.threadName(), Self.niceness(), Test.current != nil)
        }
        #expect(name == "test-own-thread")
        #expect(nice == 10)
        #expect(inTest)
        // Back on the shared threads afterwards.
        #expect(Self.threadName() != "test-own-thread")

        // A task made in the body that outlives it still runs to its end.
        let (gate, opener) = AsyncStream.makeStream(of: Void.self)
        let late = await onOwnThread {
            Task { () async -> Bool in
                for await _ in gate { break }
                return true
            }
        }
        try await Task.sleep(for: .milliseconds(50))
        opener.yield()
        #expect(await late.value)
    }

    @Test("offPool runs blocking work on a thread of its own and returns its result or its error")
    func offPoolThread() async throws {
        #expect(try await offPool { Self.threadName() } == "test-off-pool")
        struct Failure: Error {}
        await #expect(throws: Failure.self) { try await offPool { throw Failure() } }
    }
}
