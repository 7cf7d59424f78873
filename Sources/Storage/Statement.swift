import Foundation
import SQLKit
import SQLiteDirect
import Synchronization

/// A statement written in the source with its values bound, for the statements a sale runs
/// every time. SQLKit's `SQLQueryString` renders its text anew on every run — fragment by
/// fragment, a placeholder made for each bind — and the engine's statement cache then hashes
/// that text to find the prepared statement: on SQLite's only writer that was a tenth of its
/// time at full load. A `Statement`'s fixed pieces are the literals of the source
/// (`StaticString`), so what its text will be is known from their addresses: its text is
/// rendered once for each engine (``RenderedStatement``), and SQLite and PostgreSQL find the
/// prepared statement by a number. Any engine can still run it as an SQLKit expression.
///
///     let row = try await tx.first("SELECT id FROM t WHERE key = \(bind: key)" as Statement)
///
/// Besides binds, a statement may hold text decided at run time (`\(unsafeRaw:)`, part of what the
/// cache keys on, so keep it to a few forms: never a value), another statement (its pieces and
/// binds taken in), or any SQLKit expression (`\(sql:)`: such a statement is rendered by SQLKit
/// on every run, as before).
public struct Statement: SQLExpression, ExpressibleByStringInterpolation, Sendable {
    /// What decides the text: the literals (by address), run-time text and bind positions.
    enum Piece: Hashable, Sendable {
        case literal(UInt, Int)
        case text(String)
        case bind
    }

    var pieces: [Piece] = []
    var binds: [Bind] = []
    /// Pieces SQLKit must render (`\(sql:)`), by their place in `pieces` (as `.text("")`).
    var expressions: [(index: Int, expression: any SQLExpression)] = []

    public struct StringInterpolation: StringInterpolationProtocol, Sendable {
        public typealias StringLiteralType = StaticString
        var statement = Statement()

        public init(literalCapacity: Int, interpolationCount: Int) {
            statement.pieces.reserveCapacity(2 * interpolationCount + 1)
            statement.binds.reserveCapacity(interpolationCount)
        }

        public mutating func appendLiteral(_ literal: StaticString) { statement.append(literal) }

        /// A value, as a placeholder.
        public mutating func appendInterpolation(bind value: any Encodable & Sendable) { append(.other(value)) }
        // The types a sale binds, kept as what they are: no existential to open again for
        // SQLite. A nil keeps its optional's type, which PostgreSQL declares the bind by.
        public mutating func appendInterpolation(bind value: String) { append(.text(value)) }
        public mutating func appendInterpolation(bind value: Int) { append(.integer(Int64(value))) }
        public mutating func appendInterpolation(bind value: Int64) { append(.integer(value)) }
        public mutating func appendInterpolation(bind value: Data) { append(.data(value)) }
        public mutating func appendInterpolation(bind value: String?) { append(value.map { .text($0) } ?? .other(value)) }
        public mutating func appendInterpolation(bind value: Int64?) { append(value.map { .integer($0) } ?? .other(value)) }
        public mutating func appendInterpolation(bind value: Data?) { append(value.map { .data($0) } ?? .other(value)) }

        mutating func append(_ bind: Bind) {
            statement.pieces.append(.bind)
            statement.binds.append(bind)
        }

        /// Text decided at run time: a table name, a clause chosen among a few (never a value:
        /// it is neither escaped nor bound, and each text is a statement of its own to the cache).
        public mutating func appendInterpolation(unsafeRaw text: String) { statement.pieces.append(.text(text)) }

        /// Another statement, pieces and binds.
        public mutating func appendInterpolation(_ other: Statement) { statement.append(other) }

        /// Any SQLKit expression: the statement is then rendered by SQLKit every time.
        public mutating func appendInterpolation(sql expression: any SQLExpression) {
            statement.expressions.append((statement.pieces.count, expression))
            statement.pieces.append(.text(""))
        }
    }

    public init(stringLiteral literal: StaticString) { append(literal) }
    public init(stringInterpolation: StringInterpolation) { self = stringInterpolation.statement }
    init() {}

    mutating func append(_ literal: StaticString) {
        // (A literal of one Unicode scalar may be held as the scalar, with no address.)
        guard literal.hasPointerRepresentation else { return pieces.append(.text(literal.description)) }
        guard literal.utf8CodeUnitCount > 0 else { return }
        pieces.append(.literal(UInt(bitPattern: literal.utf8Start), literal.utf8CodeUnitCount))
    }

    mutating func append(_ other: Statement) {
        if !other.expressions.isEmpty { expressions += other.expressions.map { ($0.index + pieces.count, $0.expression) } }
        pieces += other.pieces
        binds += other.binds
    }

    public static func + (lhs: Statement, rhs: Statement) -> Statement {
        var joined = lhs
        joined.append(rhs)
        return joined
    }

    /// Whether the text is fixed by the pieces alone (no SQLKit expression in it).
    var isFixed: Bool { expressions.isEmpty }

    public func serialize(to serializer: inout SQLSerializer) {
        var binds = self.binds.makeIterator(), expressions = self.expressions.makeIterator()
        var nextExpression = expressions.next()
        for (i, piece) in pieces.enumerated() {
            switch piece {
            case .literal(let address, let count): serializer.write(Self.text(address, count))
            case .text(let text):
                if let (index, expression) = nextExpression, index == i {
                    expression.serialize(to: &serializer)
                    nextExpression = expressions.next()
                } else {
                    serializer.write(text)
                }
            case .bind: serializer.write(bind: binds.next()!.value)
            }
        }
    }

    static func text(_ address: UInt, _ count: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: address), count: count), as: UTF8.self)
    }

    /// The statement's texts, rendered once for its pieces (nil when SQLKit must render it).
    /// Past ``RenderedStatement/limit`` texts, new ones are not kept (run-time text that varies
    /// more than it should): they are rendered by SQLKit, as any expression.
    var rendered: RenderedStatement? { rendered(keepingAtMost: RenderedStatement.limit) }

    func rendered(keepingAtMost limit: Int) -> RenderedStatement? {
        guard isFixed else { return nil }
        return RenderedStatement.cache.withLock { cache in
            if let rendered = cache[pieces] { return rendered }
            guard cache.count < limit else { return nil }
            // Placeholders as each engine's SQLKit dialect writes them: ?1 for SQLite, $1 for PostgreSQL.
            var sqlite = "", postgres = "", position = 0
            for piece in pieces {
                switch piece {
                case .literal(let address, let count):
                    let text = Self.text(address, count)
                    sqlite += text
                    postgres += text
                case .text(let raw):
                    sqlite += raw
                    postgres += raw
                case .bind:
                    position += 1
                    sqlite += "?\(position)"
                    postgres += "$\(position)"
                }
            }
            let rendered = RenderedStatement(sql: sqlite, postgres: postgres, slot: cache.count)
            cache[pieces] = rendered
            return rendered
        }
    }
}

extension Statement {
    /// A bound value: the common types as themselves, the rest as SQLKit takes them.
    enum Bind: Sendable {
        case text(String)
        case integer(Int64)
        case data(Data)
        case other(any Encodable & Sendable)

        /// As SQLKit's serializer takes it (an integer as `Int64`, which PostgreSQL declares
        /// `int8`, as it does `Int`).
        var value: any Encodable & Sendable {
            switch self {
            case .text(let v): v
            case .integer(let v): v
            case .data(let v): v
            case .other(let v): v
            }
        }

        /// As SQLite takes it.
        func sqlite() throws -> SQLiteValue {
            switch self {
            case .text(let v): .text(v)
            case .integer(let v): .integer(v)
            case .data(let v): .blob(Array(v))
            case .other(let v): try SQLiteSession.value(v)
            }
        }
    }

    /// The binds as SQLite takes them.
    func sqliteValues() throws -> [SQLiteValue] {
        var values: [SQLiteValue] = []
        values.reserveCapacity(binds.count)
        for bind in binds { values.append(try bind.sqlite()) }
        return values
    }
}

/// A ``Statement``'s texts, and the number the connections keep its prepared form under.
final class RenderedStatement: Sendable {
    /// SQLite's text.
    let sql: String
    /// PostgreSQL's text.
    let postgres: String
    let slot: Int
    /// Whether it is a plain SELECT, which outside a unit goes to SQLite's read connection.
    let isRead: Bool

    init(sql: String, postgres: String, slot: Int) {
        self.sql = sql
        self.postgres = postgres
        self.slot = slot
        self.isRead = SQLiteReader.isRead(sql)
    }

    /// Every text rendered in this process, by its pieces.
    static let cache = Mutex<[[Statement.Piece]: RenderedStatement]>([:])
    /// Texts kept at most: CloudTap's own statements are a few dozen.
    static let limit = 4_096
}

extension SQLDatabase {
    /// Runs the statement; its first row, if any.
    public func first(_ statement: Statement) async throws -> (any SQLRow)? {
        let box = RowBox()
        try await execute(sql: statement) { row in box.keep(row) }
        return box.row
    }

    /// Runs the statement; all its rows.
    public func all(_ statement: Statement) async throws -> [any SQLRow] {
        let box = RowBox()
        try await execute(sql: statement) { row in box.append(row) }
        return box.rows
    }

    /// Runs the statement for its effect.
    public func run(_ statement: Statement) async throws {
        try await execute(sql: statement) { _ in }
    }

    /// Runs an INSERT, UPDATE or DELETE (without RETURNING); the number of rows it wrote — an
    /// upsert's update counted, a conflict it does nothing for not. On SQLite the count comes
    /// from the connection: a statement with RETURNING buffers its rows in a temporary table
    /// before the first is handed back, which cost more than the write itself (an insert of a
    /// sale's record: 14 µs with RETURNING, 8 without). Elsewhere the statement is run with
    /// `RETURNING 1` under a `WITH` and its rows counted.
    public func changes(_ statement: Statement) async throws -> Int {
        if let sqlite = self as? any SQLiteWriting { return try await sqlite.written(statement).changes }
        let row = try await first("WITH written AS (\(statement) RETURNING 1) SELECT count(*) AS n FROM written")
        return try row?.decode(column: "n", as: Int.self) ?? 0
    }

    /// Runs an INSERT of one row into a table whose key is the integer column `id` (an
    /// `ON CONFLICT … DO NOTHING` may write none; not an upsert that updates); the new row's id,
    /// nil when it wrote none. On SQLite the id is the connection's last inserted rowid (see
    /// ``changes(_:)``); elsewhere the statement is run with `RETURNING id`.
    public func insertedID(_ statement: Statement) async throws -> Int64? {
        if let sqlite = self as? any SQLiteWriting {
            let written = try await sqlite.written(statement)
            return written.changes > 0 ? written.rowID : nil
        }
        return try await first("\(statement) RETURNING id")?.decode(column: "id", as: Int64.self)
    }
}

/// A SQLite face that can say what its last write did (``SQLDatabase/changes(_:)``).
protocol SQLiteWriting: SQLDatabase {
    /// Runs the statement; the rows it wrote and the connection's last inserted rowid after it.
    func written(_ statement: Statement) async throws -> (changes: Int, rowID: Int64)
}

/// Collects the rows of one statement (called on the thread that runs it, one row at a time).
final class RowBox: @unchecked Sendable {
    var rows: [any SQLRow] = []
    var row: (any SQLRow)? { rows.first }
    func keep(_ row: any SQLRow) { if rows.isEmpty { rows.append(row) } }
    func append(_ row: any SQLRow) { rows.append(row) }
}
