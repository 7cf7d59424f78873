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

    @Test("runCommand gathers a command's output and status, runs it in the directory asked, and passes on no other descriptor")
    func command() throws {
        let echoed = try runCommand(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"])
        #expect(echoed.status == 3)
        #expect(echoed.output == "out\nerr\n")
        #expect(try runCommand(["/bin/pwd"], in: URL(fileURLWithPath: "/tmp")).output == "/tmp\n")
        #expect(try runCommand(["/bin/sh", "-c", "kill -TERM $$"]).status == 128 + SIGTERM)
        #expect(throws: CommandError.self) { try runCommand(["/nonexistent/tool"]) }
        // A descriptor this process holds open, not close-on-exec, is not the child's.
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        let held = dup2(ends[1], 200)
        defer { close(ends[0]); close(ends[1]); close(held) }
        #expect(held == 200)
        let listed = try runCommand(["/bin/sh", "-c", "ls /proc/$$/fd"]).output.split(separator: "\n")
        #expect(listed.contains("1") && !listed.contains("200"), "\(listed)")
    }
}
