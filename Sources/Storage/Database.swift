@preconcurrency import AsyncKit
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import SQLiteKit
import SQLKit

/// Where the data lives: an embedded SQLite file (the default) or a PostgreSQL server.
public enum DatabaseLocation: Sendable, Hashable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(url: String)

    /// `postgres://…` or `postgresql://…` for PostgreSQL; anything else is a SQLite file path
    /// (an optional `sqlite:` prefix is dropped).
    public init(_ text: String) {
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(url: text)
        } else {
            self = .sqlite(path: text.hasPrefix("sqlite:") ? String(text.dropFirst(7)) : text)
        }
    }

    /// The URL without its password.
    public var description: String {
        switch self {
        case .sqlite(let path): return "sqlite:\(path)"
        case .postgres(let url):
            guard var c = URLComponents(string: url) else { return "postgres://…" }
            if c.password != nil { c.password = "****" }
            return c.string ?? "postgres://…"
        }
    }
}

/// The SQL engine behind a ``Database``: what little differs between them.
public enum Engine: String, Sendable {
    case sqlite, postgres

    /// 64-bit integer column type.
    public var bigint: String { self == .sqlite ? "INTEGER" : "BIGINT" }
    /// Byte string column type.
    public var blob: String { self == .sqlite ? "BLOB" : "BYTEA" }
    /// An auto-assigned 64-bit primary key column.
    public var autoID: String { self == .sqlite ? "INTEGER PRIMARY KEY AUTOINCREMENT" : "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY" }
    /// Appended to a SELECT that must lock the rows it reads for the rest of the transaction
    /// (SQLite locks the whole database for a write transaction instead).
    public var forUpdate: String { self == .postgres ? " FOR UPDATE" : "" }
    /// Statement that opens a write transaction.
    var begin: String { self == .sqlite ? "BEGIN IMMEDIATE" : "BEGIN" }
}

/// A connection pool on one engine, with transactions and migrations. Queries are written once
/// against SQLKit's `SQLDatabase`; the engine's dialect renders them.
public final class Database: @unchecked Sendable {  // the pools are thread-safe; the rest is immutable
    public let engine: Engine
    public let location: DatabaseLocation
    let sqlitePool: EventLoopGroupConnectionPool<SQLiteConnectionSource>?
    let postgresPool: EventLoopGroupConnectionPool<PostgresConnectionSource>?
    let logger: Logger
    /// SQLite's own event loop: one connection, so one writer, as SQLite allows.
    let sqliteGroup: MultiThreadedEventLoopGroup?

    private init(location: DatabaseLocation, sqlite: EventLoopGroupConnectionPool<SQLiteConnectionSource>?,
                 postgres: EventLoopGroupConnectionPool<PostgresConnectionSource>?, sqliteGroup: MultiThreadedEventLoopGroup? = nil,
                 logger: Logger) {
        self.sqliteGroup = sqliteGroup
        self.location = location
        self.engine = sqlite != nil ? .sqlite : .postgres
        self.sqlitePool = sqlite
        self.postgresPool = postgres
        self.logger = logger
    }

    /// Opens a pool. SQLite: one connection (SQLite has one writer at a time; a single
    /// connection serializes transactions without lock contention), WAL journal,
    /// `synchronous=FULL` (SQLite's default, checked here: a commit is on disk before it
    /// returns), foreign keys on. PostgreSQL: by URL, `connectionsPerEventLoop` per loop.
    ///
    /// Inside ``transaction(_:)`` use only the database the body is given: on SQLite another
    /// statement would wait for the one connection the transaction holds.
    public static func open(
        _ location: DatabaseLocation, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "cloudtap.storage"), connectionsPerEventLoop: Int = 2
    ) async throws -> Database {
        switch location {
        case .sqlite(let path):
            let source = SQLiteConnectionSource(configuration: SQLiteConfiguration(storage: .file(path: path), enableForeignKeys: true),
                                                threadPool: NIOThreadPool.singleton)
            let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let pool = EventLoopGroupConnectionPool(source: source, maxConnectionsPerEventLoop: 1, logger: logger, on: loop)
            let db = Database(location: location, sqlite: pool, postgres: nil, sqliteGroup: loop, logger: logger)
            return try await db.checked {
                try await db.sql.raw("PRAGMA journal_mode=WAL").run()
                let synchronous = try await db.sql.raw("PRAGMA synchronous").first()?.decode(column: "synchronous", as: Int.self)
                guard synchronous == 2 else { throw StorageError("SQLite synchronous is \(synchronous.map(String.init) ?? "unknown"), not FULL") }
            }
        case .postgres(let url):
            let configuration = try SQLPostgresConfiguration(url: url)
            let pool = EventLoopGroupConnectionPool(
                source: PostgresConnectionSource(sqlConfiguration: configuration),
                maxConnectionsPerEventLoop: connectionsPerEventLoop, logger: logger, on: group)
            let db = Database(location: location, sqlite: nil, postgres: pool, logger: logger)
            return try await db.checked { try await db.sql.raw("SELECT 1").run() }
        }
    }

    /// Runs the opening checks; on failure shuts the pools down (a pool must not be dropped
    /// while running) and rethrows.
    private func checked(_ body: () async throws -> Void) async throws -> Database {
        do {
            try await body()
            return self
        } catch {
            await shutdown()
            throw error
        }
    }

    /// A database for single statements (each its own implicit transaction).
    public var sql: any SQLDatabase {
        if let sqlitePool { return PooledSQLiteDatabase(pool: sqlitePool, logger: logger) }
        return postgresPool!.database(logger: logger).sql()
    }

    /// Runs `body` in one transaction on one connection: committed when it returns, rolled
    /// back when it throws. SQLite write transactions begin IMMEDIATE so writers queue rather
    /// than fail; on PostgreSQL, lock what you read with ``Engine/forUpdate``.
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        let begin = engine.begin
        return try await sql.withSession { session in
            try await session.raw(SQLQueryString(begin)).run()
            do {
                let result = try await body(session)
                try await session.raw("COMMIT").run()
                return result
            } catch {
                try? await session.raw("ROLLBACK").run()
                throw error
            }
        }
    }

    public func shutdown() async {
        try? await sqlitePool?.shutdownAsync()
        try? await postgresPool?.shutdownAsync()
        try? await sqliteGroup?.shutdownGracefully()
    }
}

/// A storage failure that is not the driver's own error.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
