import Foundation
import LoopExecutor
import NIOCore
import SQLKit
@testable import Storage
import StorageTestSupport
import Testing

@Suite("Held sessions")
struct HeldSessionTests {
    @Test("a held session keeps its connection and its event loop from one run to the next, and the body runs on that loop")
    func keeps() async throws {
        for location in try await TestDatabases.locations("held") {
            let db = try await Database.open(location)
            try await db.migrate(StorageTests.migrations)
            let session = db.heldSession()
            try await session.run { try await $0.run("INSERT INTO counters (name, value) VALUES (\(bind: "a"), \(bind: 1))") }
            #expect(try await session.run { try await $0.first(StatementTests.lookUp("a"))?.decode(column: "value", as: Int64.self) } == 1)
            if case .postgres = location {
                let loop = try #require(session.executor as? EventLoopTaskExecutor).loop
                let first = try await session.run { db in (loop.inEventLoop, try await Self.backend(db)) }
                let second = try await session.run { db in (loop.inEventLoop, try await Self.backend(db)) }
                #expect(first.0 && second.0)
                #expect(first.1 == second.1, "one connection for both runs")
                // Another held session has a connection of its own.
                #expect(try await db.heldSession().run { try await Self.backend($0) } != first.1)
            }
            await db.shutdown()
        }
    }

    @Test("a held session whose connection the server closed fails that statement and opens a new connection for the next; shutdown closes it",
          .timeLimit(.minutes(1)))
    func reopens() async throws {
        guard let location = try await TestDatabases.locations("held-reopen").first(where: { if case .postgres = $0 { true } else { false } }) else { return }
        let db = try await Database.open(location)
        let session = db.heldSession()
        let before = try await session.run { try await Self.backend($0) }
        _ = try await db.sql.raw("SELECT pg_terminate_backend(\(bind: before))").all()
        // The server's close may reach the client before or after the next statement is sent.
        var after: Int32?
        for _ in 0..<50 where after == nil {
            after = try? await session.run { try await Self.backend($0) }
            if after == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        let reopened = try #require(after)
        #expect(reopened != before)
        #expect(try await Self.alive(reopened, on: db.sql))
        // Shut down: the held connection is closed with the pools, and the session refuses to open another.
        let watcher = try await Database.open(location)
        await db.shutdown()
        var alive = true
        for _ in 0..<50 where alive {
            alive = try await Self.alive(reopened, on: watcher.sql)
            if alive { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(!alive, "the held connection's backend is gone after shutdown")
        await #expect(throws: StorageError.self) { try await session.run { try await Self.backend($0) } }
        await watcher.shutdown()
    }

    static func alive(_ backend: Int32, on db: any SQLDatabase) async throws -> Bool {
        try await db.raw("SELECT COUNT(*) AS n FROM pg_stat_activity WHERE pid = \(bind: backend)").first()?.decode(column: "n", as: Int.self) == 1
    }

    static func backend(_ db: any SQLDatabase) async throws -> Int32 {
        try await db.raw("SELECT pg_backend_pid() AS pid").first()?.decode(column: "pid", as: Int32.self) ?? 0
    }
}
