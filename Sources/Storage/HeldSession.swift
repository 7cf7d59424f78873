import Logging
import LoopExecutor
import NIOCore
import PostgresKit
import SQLKit
import Synchronization

/// A connection held by one caller for as long as the database is open, for work that runs
/// statement after statement without pause, each statement committing by itself (see
/// ``Database/heldSession()`` for how its connections plan).
///
/// A connection leased from a pool for each piece of work costs a hop to the pool's event loop,
/// a new task on the connection's loop, and the caller's resumption a hop back. A held session
/// keeps its connection and its loop: ``run(_:)`` runs the
/// body on that loop (a task that already prefers ``executor`` stays where it is), so a caller
/// that runs its whole loop of work with ``executor`` as its task executor makes its statements
/// with no thread hand-off at all. When the connection closes (the server restarted, the
/// network failed) the statement fails and the next ``run(_:)`` opens a new one.
///
/// One caller at a time: the connection runs one statement at a time, and ``run(_:)`` does not
/// queue callers. On SQLite the body gets the database's own statements.
public final class HeldSession: Sendable {
    private let database: Database
    private let loop: (any EventLoop)?
    /// The connection's event loop as a task executor; nil on SQLite.
    public let executor: (any TaskExecutor)?
    private let connection = Mutex<PostgresConnection?>(nil)

    init(database: Database, loop: (any EventLoop)?) {
        self.database = database
        self.loop = loop
        self.executor = loop.map { EventLoopTaskExecutor($0) }
    }

    /// Runs `body` on the held connection, on its event loop.
    public func run<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        guard let executor, let statements = database.held?.statements else { return try await body(database.sql) }
        return try await withTaskExecutorPreference(executor) {
            let connection = try await self.open()
            return try await body(PreparingPostgresDatabase(connection: connection, statements: statements, inTransaction: false))
        }
    }

    /// The open connection, or a new one.
    private func open() async throws -> PostgresConnection {
        if let held = connection.withLock({ $0 }), !held.isClosed { return held }
        guard let loop, let source = database.held?.source else { throw StorageError("not a PostgreSQL database") }
        guard database.isOpen else { throw StorageError("the database is shut down") }
        let opened = try await source.makeConnection(logger: database.logger, on: loop).get()
        let previous = connection.withLock { held in
            defer { held = opened }
            return held
        }
        database.heldConnections.withLock { held in
            held.removeAll { $0 === previous }
            held.append(opened)
        }
        if let previous { try? await previous.close().get() }
        // Shut down meanwhile: the shutdown may not have seen this connection.
        if !database.isOpen {
            try? await opened.close().get()
            throw StorageError("the database is shut down")
        }
        return opened
    }
}
