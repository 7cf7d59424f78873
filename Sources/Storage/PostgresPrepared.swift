import Foundation
import Logging
import LoopExecutor
import NIOCore
import PostgresKit
import SQLKit

/// PostgreSQL with server-side prepared statements. SQLKit's statements reach PostgresNIO as
/// unnamed statements, which the server parses, analyses and plans anew every time — most of a
/// short statement's cost. Here a statement the process has run before is prepared once per
/// connection as a named statement of the extended query protocol (Parse), each placeholder
/// cast to its bind's type (`$1::int8`, `$2::text[]`: the types an unnamed statement would
/// have declared), a `nil` bind written into the statement as NULL; after that each run is a
/// Bind of its values in PostgreSQL's binary formats and an Execute, so the server runs the
/// cached plan with nothing to parse and no text to read values from.
///
/// A statement the server will not prepare, a bind of a type not handled here or text holding
/// a NUL, statements other than SELECT, INSERT, UPDATE, DELETE and WITH, and statements seen
/// only once go through unprepared, as before. Inside a transaction a first Parse runs under a
/// savepoint, so its failure does not abort the caller's work. A statement with an array bind
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
        try checkOpen()
        // A ``Statement`` fixed in the source: its text rendered once, known by its number (no
        // rendering by SQLKit, and no hashing of the text to find the statement prepared).
        let sql: String, binds: [any Encodable & Sendable], key: PreparedStatements.Key
        if let statement = query as? Statement, let rendered = statement.rendered {
            (sql, binds, key) = (rendered.postgres, statement.binds.map(\.value), .rendered(rendered.slot))
        } else {
            (sql, binds) = serialize(query)
            key = .text(sql)
        }
        let arguments = BoundArgument.all(binds)
        // A statement with an array bind runs prepared from its first call, or not at all.
        if arguments?.contains(where: \.isArray) ?? binds.contains(where: { $0 is PostgresArray }) {
            guard let arguments, let (name, body) = statements.statement(sql, key, arguments) else {
                throw StorageError("a statement over arrays has an argument that cannot be sent (a NUL in array text, or in a text bind)")
            }
            if let prepared = statements.prepared(name, on: connection) { return try await run(name, prepared, arguments, onRow) }
            // Required: prepared, or the server's refusal thrown.
            guard let prepared = try await prepare(name, body, key, required: true) else { throw StorageError("statement \(name) not prepared") }
            return try await run(name, prepared, arguments, onRow)
        }
        guard statements.shouldPrepare(sql, key), let arguments, let (name, body) = statements.statement(sql, key, arguments) else {
            return try await base.execute(sql: query, onRow)
        }
        if let prepared = statements.prepared(name, on: connection) { return try await run(name, prepared, arguments, onRow) }
        guard let prepared = try await prepare(name, body, key) else {
            try checkOpen()
            return try await base.execute(sql: query, onRow)
        }
        try await run(name, prepared, arguments, onRow)
    }

    /// Throws when the connection has closed (the server went away). PostgresNIO hands a
    /// statement to its channel without a promise for the write, so one written to a closed
    /// channel would never be answered: its caller would wait for ever. Checked on the
    /// connection's event loop, where a body of ``PooledPreparingDatabase/withConnection(inTransaction:_:)``
    /// or ``HeldSession/run(_:)`` runs, the channel cannot close between this check and the
    /// write that follows it in the same turn of the loop.
    private func checkOpen() throws {
        if connection.isClosed { throw StorageError("the PostgreSQL connection is closed") }
    }

    /// Runs the prepared statement with these arguments' values (a Bind and an Execute); its
    /// rows are ``PostgresResultRow``s.
    private func run(_ name: String, _ prepared: PreparedQuery, _ arguments: [BoundArgument], _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        // Logged by name: the values are the statement's data.
        if let level = queryLogLevel { logger.log(level: level, "Executing prepared statement", metadata: ["statement": .string(name)]) }
        try checkOpen()
        try await prepared.execute(arguments.compactMap(\.value)) { onRow(PostgresResultRow($0)) }.get()
    }

    /// Prepares the statement on this connection (a Parse of `body`); nil when the server
    /// refused it (the statement is then never prepared again) or the connection holds as many
    /// as it may. `required` (a statement over arrays, which has no other way): prepared
    /// whatever the count, and the server's refusal thrown.
    private func prepare(_ name: String, _ body: String, _ key: PreparedStatements.Key, required: Bool = false) async throws -> PreparedQuery? {
        guard required || statements.hasRoom(on: connection) else { return nil }
        try checkOpen()
        let prepared: PreparedQuery
        do {
            if inTransaction {
                try await base.raw("SAVEPOINT ct_prepare").run()
                do {
                    prepared = try await connection.prepare(query: body).get()
                } catch {
                    try await base.raw("ROLLBACK TO SAVEPOINT ct_prepare").run()
                    throw error
                }
                try await base.raw("RELEASE SAVEPOINT ct_prepare").run()
            } else {
                prepared = try await connection.prepare(query: body).get()
            }
        } catch where postgresSQLState(error) != nil {
            // A transaction already failed refuses everything; that says nothing of the statement.
            if postgresSQLState(error) == "25P02" || required { throw error }
            logger.debug("statement not prepared: \(String(reflecting: error))")
            statements.refuse(key)
            return nil
        }
        statements.add(name, prepared, on: connection)
        return prepared
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await closure(self)
    }
}

/// A bind as it travels to a prepared statement: its value in PostgreSQL's binary format (nil
/// for NULL, which is written into the statement instead), and the type an unnamed statement
/// would have declared for it.
struct BoundArgument {
    let value: PostgresData?
    let type: String

    /// Every bind in its binary form, or nil when one has none here.
    static func all(_ binds: [any Encodable & Sendable]) -> [BoundArgument]? {
        var out: [BoundArgument] = []
        out.reserveCapacity(binds.count)
        for bind in binds {
            guard let argument = BoundArgument(bind) else { return nil }
            out.append(argument)
        }
        return out
    }

    /// Whether it is an array (``PostgresArray``).
    var isArray: Bool { type.hasSuffix("[]") }

    init?(_ bind: any Encodable & Sendable) {
        var buffer = ByteBuffer()
        switch CommonBind(bind) {
        case nil:
            guard let array = bind as? PostgresArray, let (data, type) = array.binary else { return nil }
            (value, self.type) = (data, type)
        case .null:
            (value, type) = (nil, "")
        case .text(let v):
            guard PostgresArray.canHold(v) else { return nil }
            buffer.writeString(v)
            (value, type) = (PostgresData(type: .text, value: buffer), "text")
        case .integer(let n, let postgresType):
            let dataType: PostgresDataType
            switch postgresType {
            case "int2": buffer.writeInteger(Int16(truncatingIfNeeded: n)); dataType = .int2
            case "int4": buffer.writeInteger(Int32(truncatingIfNeeded: n)); dataType = .int4
            default: buffer.writeInteger(n); dataType = .int8
            }
            (value, type) = (PostgresData(type: dataType, value: buffer), postgresType)
        case .bool(let v):
            buffer.writeInteger(UInt8(v ? 1 : 0))
            (value, type) = (PostgresData(type: .bool, value: buffer), "bool")
        case .double(let v):
            buffer.writeInteger(v.bitPattern)
            (value, type) = (PostgresData(type: .float8, value: buffer), "float8")
        case .data(let v):
            buffer.writeBytes(v)
            (value, type) = (PostgresData(type: .bytea, value: buffer), "bytea")
        case .bytes(let v):
            buffer.writeBytes(v)
            (value, type) = (PostgresData(type: .bytea, value: buffer), "bytea")
        }
    }

    /// `sql` with its placeholders outside quotes renumbered over the non-NULL arguments, each
    /// cast to its argument's type, and a NULL argument's placeholder replaced by NULL.
    static func renumbered(_ sql: String, _ arguments: [BoundArgument]) -> String {
        var placeholder: [String] = []
        var next = 0
        for a in arguments {
            if a.value != nil { next += 1 }
            placeholder.append(a.value != nil ? "($\(next)::\(a.type))" : "NULL")
        }
        let bytes = Array(sql.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 12 * arguments.count)
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
                if n >= 1, n <= placeholder.count {
                    out.append(contentsOf: Array(placeholder[n - 1].utf8))
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
    /// Statement → whether it has been seen more than once.
    private var seen: [Key: Bool] = [:]
    private var refused: Set<Key> = []
    /// Name → the statement it stands for (a second statement with the same digest goes unprepared).
    private var named: [String: String] = [:]
    /// Statement shape → its name and the statement prepared.
    private var shapes: [StatementShape: (name: String, body: String)] = [:]
    /// By connection: the connection and the statements it has prepared, by name.
    private var connections: [ObjectIdentifier: (connection: PostgresConnection, prepared: [String: PreparedQuery])] = [:]

    /// What a statement is known by: its text, or for a ``Statement`` the number its rendered
    /// text has in this process (``RenderedStatement/slot``).
    enum Key: Hashable {
        case text(String)
        case rendered(Int)
    }

    /// Whether the statement (`sql`, known by `key`) is to run prepared: a SELECT, INSERT,
    /// UPDATE, DELETE or WITH seen before and not refused by the server.
    func shouldPrepare(_ sql: String, _ key: Key) -> Bool {
        lock.withLock {
            if let again = seen[key] {
                if !again { seen[key] = true }
                return true
            }
            guard seen.count < Self.distinctStatements, !refused.contains(key), Self.isPreparable(sql) else { return false }
            seen[key] = false
            return false
        }
    }

    /// The name and the statement to prepare for `sql` (known by `key`) with these arguments'
    /// types and NULLs, worked out once per such shape.
    func statement(_ sql: String, _ key: Key, _ arguments: [BoundArgument]) -> (name: String, body: String)? {
        let shape = StatementShape(key: key, types: arguments.map { $0.value == nil ? "" : $0.type })
        if let known = lock.withLock({ shapes[shape] }) { return known }
        let body = BoundArgument.renumbered(sql, arguments)
        let name = "ct_" + Self.digest(body)
        return lock.withLock {
            // A second statement whose digest is taken goes unprepared.
            if let taken = named[name], taken != body { return nil }
            guard named.count < Self.distinctStatements else { return nil }
            named[name] = body
            shapes[shape] = (name, body)
            return (name, body)
        }
    }

    /// A statement with its arguments' types ("" for a NULL).
    struct StatementShape: Hashable {
        let key: Key
        let types: [String]
    }

    /// The statement `name` as `connection` has prepared it, if it has.
    func prepared(_ name: String, on connection: PostgresConnection) -> PreparedQuery? {
        lock.withLock { connections[ObjectIdentifier(connection)]?.prepared[name] }
    }

    func hasRoom(on connection: PostgresConnection) -> Bool {
        lock.withLock { (connections[ObjectIdentifier(connection)]?.prepared.count ?? 0) < Self.perConnection }
    }

    func add(_ name: String, _ prepared: PreparedQuery, on connection: PostgresConnection) {
        lock.withLock {
            let id = ObjectIdentifier(connection)
            if connections[id] == nil {
                // A new connection: forget the ones the pool has closed.
                connections = connections.filter { !$0.value.connection.isClosed }
                connections[id] = (connection, [:])
            }
            connections[id]!.prepared[name] = prepared
        }
    }

    func refuse(_ key: Key) {
        lock.withLock {
            refused.insert(key)
            seen[key] = nil
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

/// A result row of a prepared statement. The common types (integers, text, booleans, bytes and
/// their optionals) are decoded straight from their cells by PostgresNIO; the rest through
/// PostgresKit's row, which reads every column through its Codable translation — a coding path
/// and a dynamic protocol cast a cell, 5–7 % of the switch's CPU on a PostgreSQL load run.
///
/// Every cell is read as binary: PostgresNIO's Bind asks for every result column in the binary
/// format, but the row description a statement prepared through `prepare(query:)` keeps is the
/// one its Describe returned, which names the text format (the server cannot know the formats
/// before the Bind), so the cells arrive marked as text.
struct PostgresResultRow: SQLRow {
    let row: PostgresRow
    let random: PostgresRandomAccessRow

    init(_ row: PostgresRow) {
        self.row = row
        self.random = row.makeRandomAccess()
    }

    /// The row's cells, each marked with the format it came in.
    var cells: LazyMapSequence<PostgresRandomAccessRow, PostgresCell> { random.lazy.map(Self.binary) }

    private static func binary(_ cell: PostgresCell) -> PostgresCell {
        var cell = cell
        cell.format = .binary
        return cell
    }

    var allColumns: [String] { random.map(\.columnName) }
    func contains(column: String) -> Bool { random.contains(column) }

    func decodeNil(column: String) throws -> Bool { !random.contains(column) || random[column].bytes == nil }

    func decode<D: Decodable>(column: String, as type: D.Type) throws -> D {
        guard random.contains(column) else { throw StorageError("no column \(column) in the row") }
        let cell = Self.binary(random[column])
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
        // Any other type PostgresNIO reads (a Double, a Date, a UUID, their optionals).
        if let decodable = D.self as? any PostgresDecodable.Type {
            func read<T: PostgresDecodable>(_: T.Type) throws -> T { try cell.decode(T.self) }
            guard let value = try read(decodable) as? D else { throw StorageError("column \(column) is not a \(D.self)") }
            return value
        }
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

/// The SQLSTATE of a PostgreSQL server's error; nil for any other error. PostgresNIO reports a
/// server's error as a `PSQLError`, except on a statement prepared through `prepare(query:)`
/// (``PreparingPostgresDatabase``), whose Parse and runs report it as a `PostgresError`.
public func postgresSQLState(_ error: any Error) -> String? {
    if let error = error as? PSQLError { return error.serverInfo?[.sqlState] }
    if case .server(let message) = error as? PostgresError { return message.fields[.sqlState] }
    return nil
}
