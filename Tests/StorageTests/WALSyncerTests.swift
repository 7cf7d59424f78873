import Foundation
import Logging
import StorageTestSupport
@testable import Storage
import Testing

/// The SQLite engine's syncer, with the disk stood in for by a sync that waits for the test.
@Suite("SQLite's log synced off the writer")
struct WALSyncerTests {
    /// A unit that records how it was answered.
    final class Probe: Work, @unchecked Sendable {
        private let lock = NSLock()
        private var answer: Result<Void, any Error>?
        var answered: Result<Void, any Error>? { lock.withLock { answer } }
        override func complete(committed error: (any Error)?) {
            lock.withLock { answer = error.map { .failure($0) } ?? .success(()) }
        }
    }

    /// A sync that blocks until released, and counts its calls.
    final class Disk: @unchecked Sendable {
        private let condition = NSCondition()
        private var open = false
        private var calls = 0
        var failure: (any Error)?
        var syncs: Int { condition.withLock { calls } }
        func sync() -> (any Error)? {
            condition.lock()
            defer { condition.unlock() }
            calls += 1
            while !open { condition.wait() }
            return failure
        }
        func release() { condition.withLock { open = true; condition.broadcast() } }
    }

    final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var set = false
        var isSet: Bool { lock.withLock { set } }
        func raise() { lock.withLock { set = true } }
    }

    static func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<200 where !condition() { try await Task.sleep(for: .milliseconds(5)) }
    }

    @Test("a committed batch is answered only after the log is synced; a read that could have seen it is held back until then; one sync takes every batch committed before it")
    func answeredAfterSync() async throws {
        let disk = Disk()
        let syncer = WALSyncer(logger: Logger(label: "test")) { disk.sync() }
        // Nothing committed: a read goes back at once.
        let idle = Flag()
        syncer.afterDurable { idle.raise() }
        #expect(idle.isSet)

        let first = Probe(), second = Probe()
        let one = syncer.announce()
        let read = Flag()
        syncer.afterDurable { read.raise() }  // could have seen batch one
        syncer.committed(one, [first])
        let two = syncer.announce()
        syncer.committed(two, [second])
        try await Self.eventually { disk.syncs > 0 }
        try await Task.sleep(for: .milliseconds(50))
        #expect(first.answered == nil && second.answered == nil)
        #expect(!read.isSet)
        disk.release()
        try await Self.eventually { first.answered != nil && second.answered != nil }
        if case .success? = first.answered {} else { Issue.record("first: \(String(describing: first.answered))") }
        if case .success? = second.answered {} else { Issue.record("second: \(String(describing: second.answered))") }
        #expect(read.isSet)
        // The first sync may have begun before batch two was committed; at most one more.
        #expect(disk.syncs <= 2)
        #expect(syncer.failure == nil)
        syncer.stop()
    }

    @Test("a sync slower than the threshold is logged as a warning, with the batches that waited for it; a quick one is not")
    func slowSync() async throws {
        let lines = CapturedLogs()
        let disk = Disk()
        let syncer = WALSyncer(logger: Logger(label: "test") { _ in CapturingLogHandler(sink: lines) }, slowSync: .milliseconds(40)) { disk.sync() }
        let slow = Probe()
        syncer.committed(syncer.announce(), [slow])
        try await Self.eventually { disk.syncs > 0 }
        try await Task.sleep(for: .milliseconds(80))
        disk.release()
        try await Self.eventually { slow.answered != nil }
        let warnings = lines.all.filter { $0.hasPrefix("warning") }
        #expect(warnings.count == 1, "\(lines.all)")
        #expect(warnings.first?.contains("to sync the SQLite log") == true && warnings.first?.contains("\"batches\": 1") == true, "\(warnings)")
        // Released: the next sync is quick, and nothing more is logged.
        let quick = Probe()
        syncer.committed(syncer.announce(), [quick])
        try await Self.eventually { quick.answered != nil }
        #expect(lines.all.filter { $0.hasPrefix("warning") }.count == 1, "\(lines.all)")
        syncer.stop()
    }

    @Test("a failed sync answers the waiting batch with its error, and the syncer reports it so the writer writes nothing more")
    func failedSync() async throws {
        let disk = Disk()
        disk.failure = StorageError("I/O error")
        disk.release()
        let syncer = WALSyncer(logger: Logger(label: "test")) { disk.sync() }
        let probe = Probe()
        syncer.committed(syncer.announce(), [probe])
        try await Self.eventually { probe.answered != nil }
        if case .failure(let error)? = probe.answered { #expect("\(error)" == "I/O error") } else { Issue.record("\(String(describing: probe.answered))") }
        #expect(syncer.failure != nil)
        let read = Flag()
        syncer.afterDurable { read.raise() }
        #expect(read.isSet)
        syncer.stop()
    }
}

@Suite("SQLite's own threads")
struct SQLiteThreadTests {
    /// The names of this process's threads, as /proc shows them.
    static func threadNames() -> [String] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.compactMap { try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8) }
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    @Test("the writer, the log's syncer and the checkpointer carry their names while a database is open")
    func named() async throws {
        let path = TestDatabases.sqlitePath("thread-names")
        let db = try await Database.open(.sqlite(path: path))
        try await db.transaction { tx in try await tx.raw("CREATE TABLE t (id INTEGER PRIMARY KEY)").run() }
        let names = Self.threadNames()
        for name in ["cloudtap-sqlite", "cloudtap-wal-sy", "cloudtap-checkp"] {
            #expect(names.contains(name), "no thread named \(name) among \(Set(names).sorted())")
        }
        await db.shutdown()
    }
}
