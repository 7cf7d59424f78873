@preconcurrency import AsyncKit
import Logging
import NIOCore
import SQLiteKit
import SQLKit

/// An `SQLDatabase` over a pool of SQLite connections: each statement borrows a connection;
/// a session keeps one for its whole closure (what a transaction needs).
struct PooledSQLiteDatabase: SQLDatabase, @unchecked Sendable {
    let pool: EventLoopGroupConnectionPool<SQLiteConnectionSource>
    let logger: Logger

    var eventLoop: any EventLoop { pool.eventLoopGroup.any() }
    var dialect: any SQLDialect { SQLiteDialect() }
    var queryLogLevel: Logger.Level? { .debug }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) -> EventLoopFuture<Void> {
        pool.withConnection(logger: logger) { connection in
            connection.sql().execute(sql: query, onRow)
        }
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        let box = try await pool.withConnection(logger: logger) { connection in
            connection.eventLoop.makeFutureWithTask { UncheckedBox(try await closure(connection.sql())) }
        }.get()
        return box.value
    }
}

/// Carries a value out of a pool closure.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
