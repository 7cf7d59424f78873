import Foundation
import Logging
import NIOCore
import PostgresKit
import SQLKit

/// PostgreSQL with server-side prepared statements. SQLKit's statements reach PostgresNIO as
/// unnamed statements, which the server parses, analyses and plans anew every time — most of a
/// short statement's cost. Here a statement the process has run before is prepared once per
/// connection with SQL's `PREPARE ct_… (types) AS …` — the types those of the binds, as the
/// unnamed statement would have declared them, a `nil` bind written into the statement as
/// NULL — and then run as `EXECUTE ct_…(arguments)`: the server parses only that short call
/// and runs the cached plan. (`EXECUTE` takes no protocol-level parameters, so the arguments
/// travel as literals: numbers, strings without a backslash or NUL with quotes doubled, bytes
/// as `decode('…', 'hex')` — nothing whose reading depends on the server's settings.)
///
/// A statement the server will not prepare, a bind without a literal form here, statements
/// other than SELECT, INSERT, UPDATE, DELETE and WITH, and statements seen only once go
/// through unprepared, as before. Inside a transaction a first PREPARE runs under a savepoint,
/// so its failure does not abort the caller's work. A statement with an array bind
/// (``PostgresArray``) is the exception: prepared from its first run, whatever the count of
/// statements prepared on the connection, or it fails — it has no unprepared form here.
struct PreparingPostgresDatabase: SQLDatabase, @unchecked Sendable {  // the connection is used by one task at a time
    let connection: PostgresConnection
    let base: any SQLDatabase
    let statements: PreparedStatements
    let inTransaction: Bool

    init(connection: PostgresConnection, statements: PreparedStatements, inTransaction: Bool) {
        self.connection = connection
        self.base = connection.sql()
        self.statements = statements
        self.inTransaction = inTransaction
    }

    var logger: Logger { base.logger }
    var eventLoop: any EventLoop { base.eventLoop }
    var version: (any SQLDatabaseReportedVersion)? { base.version }
    var dialect: any SQLDialect { base.dialect }
    var queryLogLevel: Logger.Level? { base.queryLogLevel }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        promise.completeWithTask { try await self.execute(sql: query, onRow) }
        return promise.futureResult
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        let (sql, binds) = serialize(query)
        let arguments = LiteralArgument.all(binds)
        // A statement with an array bind runs prepared from its first call, or not at all.
        if arguments?.contains(where: \.isArray) ?? binds.contains(where: { $0 is PostgresArray }) {
            guard let arguments, let (name, prepare) = statements.statement(sql, arguments) else {
                throw StorageError("a statement over arrays has an argument without a literal form (a NUL in array text, or a backslash or NUL in a text bind)")
            }
            if !statements.isPrepared(name, on: connection) {
                _ = try await self.prepare(name, prepare, sql, required: true)
            }
            return try await run(name, arguments, onRow)
        }
        guard statements.shouldPrepare(sql), let arguments, let (name, prepare) = statements.statement(sql, arguments) else {
            return try await base.execute(sql: query, onRow)
        }
        if !statements.isPrepared(name, on: connection) {
            guard try await self.prepare(name, prepare, sql) else { return try await base.execute(sql: query, onRow) }
        }
        try await run(name, arguments, onRow)
    }

    /// Runs the prepared statement `name` with these arguments. The call has no binds, so it goes
    /// to PostgresNIO directly, and its rows are ``PostgresResultRow``s.
    private func run(_ name: String, _ arguments: [LiteralArgument], _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        let given = arguments.compactMap(\.literal)
        let call = given.isEmpty ? "EXECUTE \(name)" : "EXECUTE \(name)(" + given.joined(separator: ", ") + ")"
        // Logged by name: the call's literals are the statement's data.
        if let level = queryLogLevel { logger.log(level: level, "Executing prepared statement", metadata: ["statement": .string(name)]) }
        _ = try await connection.query(PostgresQuery(unsafeSQL: call), logger: logger) { onRow(PostgresResultRow($0)) }.get()
    }

    /// Runs the PREPARE on this connection; false when the server refused it (the statement is
    /// then never prepared again) or the connection holds as many as it may. `required` (a
    /// statement over arrays, which has no other way): prepared whatever the count, and the
    /// server's refusal thrown.
    private func prepare(_ name: String, _ statement: String, _ sql: String, required: Bool = false) async throws -> Bool {
        guard required || statements.hasRoom(on: connection) else { return false }
        let prepare = RenderedSQL(sql: statement, binds: [])
        do {
            if inTransaction {
                try await base.raw("SAVEPOINT ct_prepare").run()
                do {
                    try await base.execute(sql: prepare) { _ in }
                } catch {
                    try await base.raw("ROLLBACK TO SAVEPOINT ct_prepare").run()
                    throw error
                }
                try await base.raw("RELEASE SAVEPOINT ct_prepare").run()
            } else {
                try await base.execute(sql: prepare) { _ in }
            }
        } catch let error as PSQLError where error.serverInfo != nil {
            // A transaction already failed refuses everything; that says nothing of the statement.
            if error.serverInfo?[.sqlState] == "25P02" || required { throw error }
            logger.debug("statement not prepared: \(String(reflecting: error))")
            statements.refuse(sql)
            return false
        }
        statements.add(name, on: connection)
        return true
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await closure(self)
    }
}

/// A bind as an SQL literal, with its type; nil literal for NULL.
struct LiteralArgument {
    /// The value as a literal; nil for NULL, which is written into the prepared statement.
    let literal: String?
    /// The type the unnamed statement would have declared for it.
    let type: String

    /// Every bind as a literal, or nil when one has none here.
    static func all(_ binds: [any Encodable & Sendable]) -> [LiteralArgument]? {
        var out: [LiteralArgument] = []
        out.reserveCapacity(binds.count)
        for bind in binds {
            guard let argument = LiteralArgument(bind) else { return nil }
            out.append(argument)
        }
        return out
    }

    /// Whether it is an array (``PostgresArray``).
    var isArray: Bool { type.hasSuffix("[]") }

    init?(_ bind: any Encodable & Sendable) {
        switch CommonBind(bind) {
        case nil:
            guard let array = bind as? PostgresArray, let (literal, type) = array.literal else { return nil }
            (self.literal, self.type) = (literal, type)
        case .null: (literal, type) = (nil, "")
        case .text(let v):
            guard let quoted = Self.quoted(v) else { return nil }
            (literal, type) = (quoted, "text")
        case .integer(let n, let postgresType): (literal, type) = (String(n), postgresType)
        case .bool(let v): (literal, type) = (v ? "true" : "false", "bool")
        case .double(let v):
            guard v.isFinite else { return nil }
            (literal, type) = ("'\(v)'", "float8")
        case .data(let v): (literal, type) = ("decode('" + Self.hex(v) + "', 'hex')", "bytea")
        case .bytes(let v): (literal, type) = ("decode('" + Self.hex(v) + "', 'hex')", "bytea")
        }
    }

    /// `text` in single quotes, quotes doubled. A backslash reads differently under
    /// standard_conforming_strings off; such a value, and one with a NUL, has no literal here
    /// (it goes the unprepared way).
    static func quoted(_ text: String) -> String? {
        var quoted: [UInt8] = [0x27]
        quoted.reserveCapacity(text.utf8.count + 2)
        for c in text.utf8 {
            guard c != 0x5C, c != 0 else { return nil }
            quoted.append(c)
            if c == 0x27 { quoted.append(0x27) }
        }
        quoted.append(0x27)
        return String(decoding: quoted, as: UTF8.self)
    }

    static func hex<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `sql` with its placeholders outside quotes renumbered over the non-NULL arguments and a
    /// NULL argument's placeholder replaced by NULL.
    static func renumbered(_ sql: String, _ arguments: [LiteralArgument]) -> String {
        var number: [Int] = []
        var next = 0
        for a in arguments {
            if a.literal != nil { next += 1 }
            number.append(a.literal != nil ? next : 0)
        }
        let bytes = Array(sql.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var quote: UInt8? = nil
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            if let q = quote {
                if c == q { quote = nil }
                out.append(c)
                i += 1
            } else if c == 0x27 || c == 0x22 {  // ' or "
                quote = c
                out.append(c)
                i += 1
            } else if c == 0x24, i + 1 < bytes.count, (0x30...0x39).contains(bytes[i + 1]) {  // $n
                var j = i + 1
                var n = 0
                while j < bytes.count, (0x30...0x39).contains(bytes[j]) { n = n * 10 + Int(bytes[j] - 0x30); j += 1 }
                if n >= 1, n <= number.count {
                    out.append(contentsOf: Array((number[n - 1] == 0 ? "NULL" : "$\(number[n - 1])").utf8))
                } else {
                    out.append(contentsOf: bytes[i..<j])
                }
                i = j
            } else {
                out.append(c)
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Which statements the process prepares, under which names, and which connection has
/// prepared which.
final class PreparedStatements: @unchecked Sendable {  // state behind the lock
    /// Statements prepared per connection at most (the server keeps each one's plan).
    static let perConnection = 200
    /// Distinct statements remembered.
    static let distinctStatements = 10_000

    private let lock = NSLock()
    /// SQL → whether it has been seen more than once.
    private var seen: [String: Bool] = [:]
    private var refused: Set<String> = []
    /// Name → the PREPARE it stands for (a second statement with the same digest goes unprepared).
    private var named: [String: String] = [:]
    /// Statement shape → its name and PREPARE.
    private var shapes: [StatementShape: (name: String, prepare: String)] = [:]
    /// By connection: the connection and the names it has prepared.
    private var connections: [ObjectIdentifier: (connection: PostgresConnection, names: Set<String>)] = [:]

    /// Whether `sql` is to run prepared: a SELECT, INSERT, UPDATE, DELETE or WITH seen before
    /// and not refused by the server.
    func shouldPrepare(_ sql: String) -> Bool {
        lock.withLock {
            if let again = seen[sql] {
                if !again { seen[sql] = true }
                return true
            }
            guard seen.count < Self.distinctStatements, !refused.contains(sql), Self.isPreparable(sql) else { return false }
            seen[sql] = false
            return false
        }
    }

    /// The name and PREPARE statement for `sql` with these arguments' types and NULLs, worked
    /// out once per such shape.
    func statement(_ sql: String, _ arguments: [LiteralArgument]) -> (name: String, prepare: String)? {
        let shape = StatementShape(sql: sql, types: arguments.map { $0.literal == nil ? "" : $0.type })
        if let known = lock.withLock({ shapes[shape] }) { return known }
        let types = arguments.filter { $0.literal != nil }.map(\.type)
        let body = LiteralArgument.renumbered(sql, arguments)
        let head = types.isEmpty ? "" : " (" + types.joined(separator: ", ") + ")"
        let name = "ct_" + Self.digest(head + body)
        let prepare = "PREPARE \(name)\(head) AS \(body)"
        return lock.withLock {
            // A second statement whose digest is taken goes unprepared.
            if let taken = named[name], taken != prepare { return nil }
            guard named.count < Self.distinctStatements else { return nil }
            named[name] = prepare
            shapes[shape] = (name, prepare)
            return (name, prepare)
        }
    }

    /// A statement's SQL with its arguments' types ("" for a NULL).
    struct StatementShape: Hashable {
        let sql: String
        let types: [String]
    }

    func isPrepared(_ name: String, on connection: PostgresConnection) -> Bool {
        lock.withLock { connections[ObjectIdentifier(connection)]?.names.contains(name) ?? false }
    }

    func hasRoom(on connection: PostgresConnection) -> Bool {
        lock.withLock { (connections[ObjectIdentifier(connection)]?.names.count ?? 0) < Self.perConnection }
    }

    func add(_ name: String, on connection: PostgresConnection) {
        lock.withLock {
            let id = ObjectIdentifier(connection)
            if connections[id] == nil {
                // A new connection: forget the ones the pool has closed.
                connections = connections.filter { !$0.value.connection.isClosed }
                connections[id] = (connection, [])
            }
            connections[id]!.names.insert(name)
        }
    }

    func refuse(_ sql: String) {
        lock.withLock {
            refused.insert(sql)
            seen[sql] = nil
        }
    }

    static func isPreparable(_ sql: String) -> Bool {
        let head = sql.prefix(7).uppercased()
        return ["SELECT", "INSERT", "UPDATE", "DELETE", "WITH"].contains { head.hasPrefix($0) }
    }

    /// 64-bit FNV-1a of the text, in hex.
    static func digest(_ text: String) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// `db.sql` on PostgreSQL: each statement on a connection from the pool, prepared as above.
struct PooledPreparingDatabase: SQLDatabase, @unchecked Sendable {  // the pool is thread-safe
    let pool: EventLoopGroupConnectionPool<PostgresConnectionSource>
    let statements: PreparedStatements
    let logger: Logger

    var eventLoop: any EventLoop { pool.eventLoopGroup.any() }
    var version: (any SQLDatabaseReportedVersion)? { nil }
    var dialect: any SQLDialect { PostgresDialect() }
    var queryLogLevel: Logger.Level? { .debug }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        promise.completeWithTask { try await self.execute(sql: query, onRow) }
        return promise.futureResult
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        try await withSession { try await $0.execute(sql: query, onRow) }
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await withConnection(inTransaction: false) { try await closure($0) }
    }

    /// Runs `body` on one connection of the pool, on the connection's event loop: every
    /// statement is written and its answer read there, and the body resumes there without
    /// crossing threads — no thread wake-ups between one statement and the next.
    func withConnection<R>(inTransaction: Bool, _ body: @escaping @Sendable (PreparingPostgresDatabase) async throws -> R) async throws -> R {
        let statements = self.statements
        let box = try await pool.withConnection(logger: logger) { connection in
            connection.eventLoop.makeFutureWithTask {
                try await withTaskExecutorPreference(EventLoopTaskExecutor(connection.eventLoop)) {
                    UncheckedBox(try await body(PreparingPostgresDatabase(connection: connection, statements: statements, inTransaction: inTransaction)))
                }
            }
        }.get()
        return box.value
    }
}

/// An event loop as a task executor (SE-0417): the jobs of tasks that prefer it run on the loop.
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {  // the loop is thread-safe
    let loop: any EventLoop
    init(_ loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// A result row of a prepared statement. The common types (integers, text, booleans, bytes and
/// their optionals) are decoded straight from their cells by PostgresNIO; the rest through
/// PostgresKit's row, which reads every column through its Codable translation — a coding path
/// and a dynamic protocol cast a cell, 5–7 % of the switch's CPU on a PostgreSQL load run.
struct PostgresResultRow: SQLRow {
    let row: PostgresRow
    let cells: PostgresRandomAccessRow

    init(_ row: PostgresRow) {
        self.row = row
        self.cells = row.makeRandomAccess()
    }

    var allColumns: [String] { cells.map(\.columnName) }
    func contains(column: String) -> Bool { cells.contains(column) }

    func decodeNil(column: String) throws -> Bool { !cells.contains(column) || cells[column].bytes == nil }

    func decode<D: Decodable>(column: String, as type: D.Type) throws -> D {
        guard cells.contains(column) else { throw StorageError("no column \(column) in the row") }
        let cell = cells[column]
        // The type compared by its metadata, then the value read as the type it is.
        let wanted = ObjectIdentifier(D.self)
        if wanted == ObjectIdentifier(Int64.self) { return unsafeBitCast(try cell.decode(Int64.self), to: D.self) }
        if wanted == ObjectIdentifier(Int.self) { return unsafeBitCast(try cell.decode(Int.self), to: D.self) }
        if wanted == ObjectIdentifier(String.self) { return unsafeBitCast(try cell.decode(String.self), to: D.self) }
        if wanted == ObjectIdentifier(Bool.self) { return unsafeBitCast(try cell.decode(Bool.self), to: D.self) }
        if wanted == ObjectIdentifier(Int64?.self) { return unsafeBitCast(try cell.decode(Int64?.self), to: D.self) }
        if wanted == ObjectIdentifier(Int?.self) { return unsafeBitCast(try cell.decode(Int?.self), to: D.self) }
        if wanted == ObjectIdentifier(String?.self) { return unsafeBitCast(try cell.decode(String?.self), to: D.self) }
        if wanted == ObjectIdentifier(Bool?.self) { return unsafeBitCast(try cell.decode(Bool?.self), to: D.self) }
        if wanted == ObjectIdentifier(Data.self) { return unsafeBitCast(try cell.decode(Data.self), to: D.self) }
        if wanted == ObjectIdentifier(Data?.self) { return unsafeBitCast(try cell.decode(Data?.self), to: D.self) }
        return try row.sql().decode(column: column, as: D.self)
    }
}

/// SQL already rendered, with its binds.
struct RenderedSQL: SQLExpression {
    let sql: String
    let binds: [any Encodable & Sendable]

    func serialize(to serializer: inout SQLSerializer) {
        serializer.write(sql)
        serializer.binds += binds
    }
}

/// Whether `error` is PostgreSQL's serialization_failure (SQLSTATE 40001): the statement or
/// transaction found what it depended on changed, and trying again is the answer.
public func isSerializationFailure(_ error: any Error) -> Bool {
    postgresSQLState(error) == "40001"
}

/// The SQLSTATE of a PostgreSQL server's error; nil for any other error.
public func postgresSQLState(_ error: any Error) -> String? {
    (error as? PSQLError)?.serverInfo?[.sqlState]
}
