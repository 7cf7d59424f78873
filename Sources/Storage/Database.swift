@preconcurrency import AsyncKit
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import SQLiteKit
import SQLKit
import Synchronization

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
    /// As ``forUpdate``, locking only the rows of the table named `alias` in a join.
    public func forUpdate(of alias: String) -> String { self == .postgres ? " FOR UPDATE OF \(alias)" : "" }
    /// Statement that opens a write transaction.
    var begin: String { self == .sqlite ? "BEGIN IMMEDIATE" : "BEGIN" }
}

/// A connection pool on one engine, with transactions and migrations. Queries are written once
/// against SQLKit's `SQLDatabase`; the engine's dialect renders them.
public final class Database: @unchecked Sendable {  // the pools are thread-safe; the rest is immutable
    public let engine: Engine
    public let location: DatabaseLocation
    /// SQLite: one connection on its own thread, with group commit (``SQLiteEngine``).
    let sqlite: SQLiteEngine?
    let postgresPool: EventLoopGroupConnectionPool<PostgresConnectionSource>?
    /// PostgreSQL: the pool with prepared statements (see ``PreparingPostgresDatabase``).
    let postgres: PooledPreparingDatabase?
    /// PostgreSQL: connections opened with `synchronous_commit=off`, for
    /// ``statement(unflushed:_:)``.
    let unflushedPool: EventLoopGroupConnectionPool<PostgresConnectionSource>?
    let unflushed: PooledPreparingDatabase?
    /// PostgreSQL: how ``heldSession()`` opens its connections (`plan_cache_mode=force_generic_plan`
    /// and `enable_seqscan=off`), on which group's loops, and the statements prepared on them.
    let held: (source: PostgresConnectionSource, group: any EventLoopGroup, statements: PreparedStatements)?
    let logger: Logger

    private init(location: DatabaseLocation, sqlite: SQLiteEngine?, postgres: EventLoopGroupConnectionPool<PostgresConnectionSource>?,
                 unflushed: EventLoopGroupConnectionPool<PostgresConnectionSource>? = nil,
                 held: (source: PostgresConnectionSource, group: any EventLoopGroup)? = nil, logger: Logger) {
        self.location = location
        self.engine = sqlite != nil ? .sqlite : .postgres
        self.sqlite = sqlite
        self.postgresPool = postgres
        let statements = PreparedStatements()
        self.postgres = postgres.map { PooledPreparingDatabase(pool: $0, statements: statements, logger: logger) }
        self.unflushedPool = unflushed
        self.unflushed = unflushed.map { PooledPreparingDatabase(pool: $0, statements: statements, logger: logger) }
        self.held = held.map { ($0.source, $0.group, statements) }
        self.logger = logger
    }

    /// SQLite: how many units wait for the writer now (nil on PostgreSQL). A caller with a
    /// choice of how to split its work can ask whether the writer is the bottleneck.
    public var writerBacklog: Int? { sqlite?.backlog }

    /// Opens the database. SQLite: one connection on its own thread (SQLite has one writer at a
    /// time) with group commit — see ``SQLiteEngine`` — WAL journal, a commit on disk before
    /// anyone hears of it (the writer's `synchronous=NORMAL` checked here, the log synced by the
    /// engine), foreign keys on. PostgreSQL: by URL, `connectionsPerEventLoop` per loop.
    ///
    /// Inside ``transaction(_:)`` use only the database the body is given: on SQLite another
    /// statement would wait for the unit the body is part of.
    public static func open(
        _ location: DatabaseLocation, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "cloudtap.storage"), connectionsPerEventLoop: Int = 2
    ) async throws -> Database {
        switch location {
        case .sqlite(let path):
            let db = Database(location: location, sqlite: try SQLiteEngine(path: path, logger: logger), postgres: nil, logger: logger)
            return try await db.checked {
                let synchronous = try await db.sql.raw("PRAGMA synchronous").first()?.decode(column: "synchronous", as: Int.self)
                // The writer's commits leave the log's sync to the engine's syncer, which answers
                // no caller before it (SQLiteEngine, WALSyncer).
                guard synchronous == 1 else {
                    throw StorageError("SQLite synchronous is \(synchronous.map(String.init) ?? "unknown") on the writer, not NORMAL with the log synced by the engine")
                }
            }
        case .postgres(let url):
            let configuration = try SQLPostgresConfiguration(url: url)
            let pool = EventLoopGroupConnectionPool(
                source: PostgresConnectionSource(sqlConfiguration: configuration),
                maxConnectionsPerEventLoop: connectionsPerEventLoop, logger: logger, on: group)
            var unflushedConfiguration = configuration
            unflushedConfiguration.coreConfiguration.options.additionalStartupParameters.append(("synchronous_commit", "off"))
            let unflushed = EventLoopGroupConnectionPool(
                source: PostgresConnectionSource(sqlConfiguration: unflushedConfiguration),
                maxConnectionsPerEventLoop: connectionsPerEventLoop, logger: logger, on: group)
            var genericConfiguration = configuration
            genericConfiguration.coreConfiguration.options.additionalStartupParameters += [("plan_cache_mode", "force_generic_plan"), ("enable_seqscan", "off")]
            let db = Database(location: location, sqlite: nil, postgres: pool, unflushed: unflushed,
                              held: (PostgresConnectionSource(sqlConfiguration: genericConfiguration), group), logger: logger)
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
        if let sqlite { return QueuedSQLiteDatabase(engine: sqlite, logger: logger) }
        return postgres!
    }

    /// Runs `body` in one transaction on one connection: committed when it returns, rolled
    /// back when it throws. SQLite write transactions begin IMMEDIATE so writers queue rather
    /// than fail; on PostgreSQL, lock what you read with ``Engine/forUpdate``.
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        // SQLite: a unit of the next group commit (its own savepoint, answered after the commit).
        if let sqlite { return try await sqlite.unit(body) }
        let begin = engine.begin
        return try await postgres!.withConnection(inTransaction: true) { session in
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

    /// Runs `body`, which issues one statement, as a unit of its own: on SQLite a unit of the
    /// next group commit, as ``transaction(_:)``; on PostgreSQL the statement alone, which the
    /// server commits by itself — without the BEGIN and COMMIT round trips.
    public func statement<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await statement(unflushed: false, body)
    }

    /// As ``statement(_:)``; with `unflushed` on PostgreSQL the server commits it without waiting
    /// for its WAL to reach the disk (a connection opened with `synchronous_commit=off`). A crash
    /// can then lose it — unless a later commit that does wait has been made: the WAL is one
    /// sequence, and that commit's flush takes everything before it. Use it only for a statement
    /// whose effect nothing outside the database acts on until such a commit follows. On SQLite
    /// every unit's group commit is on disk before anyone hears of it, as without.
    public func statement<T: Sendable>(unflushed: Bool, _ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        if let sqlite { return try await sqlite.unit(body) }
        return try await (unflushed ? self.unflushed! : postgres!).withConnection(inTransaction: false) { try await body($0) }
    }

    /// A connection held for one caller that issues statements, each committing by itself (as
    /// ``statement(_:)``), one after another (see ``HeldSession``), on an event loop of the
    /// database's group; opened when first used, closed when the database shuts down. On SQLite
    /// its statements are the database's own, each a unit of the next group commit.
    ///
    /// Its PostgreSQL connections keep one generic plan for each prepared statement
    /// (`plan_cache_mode`): a statement over arrays (``PostgresArray``) is otherwise planned anew
    /// on every run for as long as its plan for the arrays given looks cheaper than one for any
    /// arrays — for small batches, always (0.4–0.7 ms a statement). They plan no sequential scan
    /// where an index serves (`enable_seqscan=off`): a plan is kept for the connection's life,
    /// and one made while a table held a page would otherwise go on reading the whole table, for
    /// every row of every batch, once it held thousands. Write such statements so that any plan
    /// is a good one: rows found by key, no EXISTS the planner could turn into a hash of a whole
    /// table.
    public func heldSession() -> HeldSession {
        HeldSession(database: self, loop: held?.group.next())
    }

    /// The connections ``HeldSession``s hold, closed at shutdown.
    let heldConnections = Mutex<[PostgresConnection]>([])

    /// Whether ``shutdown()`` has not been called.
    var isOpen: Bool { !closed.isClosed }

    public func shutdown() async {
        guard closed.close() else { return }
        for connection in heldConnections.withLock({ held in defer { held = [] }; return held }) { try? await connection.close().get() }
        await sqlite?.shutdown()
        try? await postgresPool?.shutdownAsync()
        try? await unflushedPool?.shutdownAsync()
    }

    private let closed = ClosedFlag()

    /// A database dropped without ``shutdown()`` (a caller that failed half way) closes its
    /// PostgreSQL pool in the background rather than trapping in the pool's own deinit.
    deinit {
        if closed.close() {
            for connection in heldConnections.withLock({ $0 }) { connection.close().whenComplete { _ in } }
            postgresPool?.shutdownGracefully { _ in }
            unflushedPool?.shutdownGracefully { _ in }
        }
    }
}

/// Whether a database has been shut down.
final class ClosedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var closed = false
    /// Marks it closed; true the first time.
    func close() -> Bool { lock.withLock { defer { closed = true }; return !closed } }
    var isClosed: Bool { lock.withLock { closed } }
}

/// A storage failure that is not the driver's own error.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
