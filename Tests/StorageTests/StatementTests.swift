import Foundation
import Logging
import SQLKit
import SQLiteDirect
@testable import Storage
import StorageTestSupport
import Testing

@Suite("Statements fixed in the source")
struct StatementTests {
    static func lookUp(_ name: String) -> Statement { "SELECT value FROM counters WHERE name = \(bind: name)" }

    static func put(_ name: String, _ value: Int64) -> Statement {
        "INSERT INTO counters (name, value) VALUES (\(bind: name), \(bind: value)) ON CONFLICT (name) DO NOTHING"
    }

    static func update(_ name: String, by delta: Int64, only condition: String?) -> Statement {
        "UPDATE counters SET value = value + \(bind: delta) WHERE name = \(bind: name)\(unsafeRaw: condition.map { " AND \($0)" } ?? "") RETURNING value"
    }

    @Test("SQLite's and PostgreSQL's texts are rendered once for the place a statement is written: the same texts and number for any binds, other text for other run-time text, none for an SQLKit expression")
    func rendering() throws {
        let a = try #require(Self.lookUp("a").rendered), b = try #require(Self.lookUp("b").rendered)
        #expect(a === b)
        #expect(a.sql == "SELECT value FROM counters WHERE name = ?1")
        #expect(a.postgres == "SELECT value FROM counters WHERE name = $1")
        #expect(a.isRead)
        let plain = try #require(Self.update("a", by: 1, only: nil).rendered)
        let conditional = try #require(Self.update("a", by: 1, only: "value < 10").rendered)
        #expect(plain !== conditional && plain.slot != conditional.slot)
        #expect(plain.sql == "UPDATE counters SET value = value + ?1 WHERE name = ?2 RETURNING value")
        #expect(conditional.sql == "UPDATE counters SET value = value + ?1 WHERE name = ?2 AND value < 10 RETURNING value")
        #expect(conditional.postgres == "UPDATE counters SET value = value + $1 WHERE name = $2 AND value < 10 RETURNING value")
        #expect(!plain.isRead)
        // Nested statements take their pieces and binds in order; SQLKit renders the same text.
        let inner: Statement = "\(bind: 7), \(bind: "x")"
        let outer: Statement = "INSERT INTO t (n, s, d) VALUES (\(inner), \(bind: Data([1])))"
        #expect(outer.rendered?.sql == "INSERT INTO t (n, s, d) VALUES (?1, ?2, ?3)")
        #expect(outer.binds.count == 3 && outer.binds[1].value as? String == "x")
        let (sql, binds) = SQLiteRenderer().serialize(outer)
        #expect(sql == "INSERT INTO t (n, s, d) VALUES (?1, ?2, ?3)" && binds.count == 3)
        let joined = "SELECT " + inner + " AS pair"
        #expect(joined.rendered?.sql == "SELECT ?1, ?2 AS pair")
        // An SQLKit expression inside: rendered by SQLKit every time, never cached.
        let mixed: Statement = "SELECT \(sql: SQLLiteral.numeric("1")) AS one WHERE \(bind: 1) = 1"
        #expect(mixed.rendered == nil)
        #expect(SQLiteRenderer().serialize(mixed).0 == "SELECT 1 AS one WHERE ?1 = 1")
        let nested = "SELECT \(bind: 0) AS zero, " + ("\(sql: SQLLiteral.numeric("1")) AS one" as Statement)
        #expect(nested.rendered == nil)
        #expect(SQLiteRenderer().serialize(nested).0 == "SELECT ?1 AS zero, 1 AS one")
        // With the cache full, a text already kept is still found, a new one is left to SQLKit.
        let kept = RenderedStatement.cache.withLock { $0.count }
        #expect(Self.lookUp("c").rendered(keepingAtMost: kept) === a)
        let new = "SELECT value FROM counters WHERE name = \(bind: "d")\(unsafeRaw: " LIMIT 1")" as Statement
        #expect(new.rendered(keepingAtMost: 0) == nil)
        #expect(SQLiteRenderer().serialize(new).0 == "SELECT value FROM counters WHERE name = ?1 LIMIT 1")
    }

    @Test("statements run the same on every engine: reads, writes with RETURNING, NULL binds, inside units and alone")
    func runs() async throws {
        for location in try await TestDatabases.locations("statements") {
            let db = try await Database.open(location)
            try await db.migrate(StorageTests.migrations)
            try await db.sql.run("INSERT INTO counters (name, value) VALUES (\(bind: "a"), \(bind: 1)), (\(bind: "b"), \(bind: 5))")
            let updated = try await db.transaction { tx in
                try await tx.first(Self.update("a", by: 2, only: "value < 10"))?.decode(column: "value", as: Int64.self)
            }
            #expect(updated == 3, "\(location)")
            // The condition fails: no row.
            let refused = try await db.transaction { tx in try await tx.first(Self.update("b", by: 10, only: "value > 100")) }
            #expect(refused == nil, "\(location)")
            #expect(try await db.sql.first(Self.lookUp("b"))?.decode(column: "value", as: Int64.self) == 5, "\(location)")
            let missing: String? = nil
            let none = try await db.sql.all("SELECT name FROM counters WHERE name = \(bind: missing) OR \(bind: missing) IS NULL ORDER BY name")
            #expect(try none.map { try $0.decode(column: "name", as: String.self) } == ["a", "b"], "\(location)")
            // A statement inside an SQLKit query string, as PostgreSQL's composed statements hold them.
            let composed: SQLQueryString = "SELECT COUNT(*) AS n FROM (\(Self.lookUp("a"))) AS q"
            #expect(try await db.sql.raw(composed).first()?.decode(column: "n", as: Int.self) == 1, "\(location)")
            if db.engine == .postgres {
                // Found by its number, a statement's second run on a connection is prepared there
                // from its PostgreSQL text, each placeholder cast to its bind's type.
                let prepared = try await db.transaction { tx in
                    for name in ["a", "b"] {
                        let value = try await tx.first("SELECT value AS statement_marker FROM counters WHERE name = \(bind: name)" as Statement)
                        #expect(try value?.decode(column: "statement_marker", as: Int64.self) == (name == "a" ? 3 : 5))
                    }
                    return try await tx.raw("""
                        SELECT COUNT(*) AS n FROM pg_prepared_statements
                        WHERE NOT from_sql AND statement = 'SELECT value AS statement_marker FROM counters WHERE name = ($1::text)'
                        """).first()!.decode(column: "n", as: Int.self)
                }
                #expect(prepared == 1)
            }
            await db.shutdown()
        }
    }

    @Test("a write's count of rows and an insert's new id, on every engine, inside units and alone: conflicts and failed conditions count none, and an insert that wrote nothing has no id (not the one before)")
    func writtenRows() async throws {
        for location in try await TestDatabases.locations("statements-written") {
            let db = try await Database.open(location)
            try await db.migrate(StorageTests.migrations)
            #expect(try await db.sql.changes(Self.put("a", 1)) == 1, "\(location)")
            #expect(try await db.transaction { tx in try await tx.changes(Self.put("a", 2)) } == 0, "\(location)")
            let counts = try await db.transaction { tx in
                [try await tx.changes(Self.put("b", 5)),
                 try await tx.changes("UPDATE counters SET value = value + 1 WHERE name = \(bind: "a") AND value < 10"),
                 try await tx.changes("UPDATE counters SET value = value + 1 WHERE name = \(bind: "a") AND value > 100"),
                 try await tx.changes("""
                    INSERT INTO counters (name, value) VALUES (\(bind: "b"), \(bind: 1))
                    ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value
                    """),
                 try await tx.changes("UPDATE counters SET value = value * 2")]
            }
            #expect(counts == [1, 1, 0, 1, 2], "\(location)")
            #expect(try await db.sql.first(Self.lookUp("b"))?.decode(column: "value", as: Int64.self) == 12, "\(location)")
            #expect(try await db.sql.changes("DELETE FROM counters WHERE name = \(bind: "a")") == 1, "\(location)")

            let blob = Data([1, 2, 3])
            let first = try await db.sql.insertedID("INSERT INTO blobs (data) VALUES (\(bind: blob))")
            let ids = try await db.transaction { tx in
                [try await tx.insertedID("INSERT INTO blobs (data) VALUES (\(bind: blob))"),
                 try await tx.insertedID("INSERT INTO blobs (data) SELECT \(bind: blob) WHERE 1 = 0")]
            }
            let rows = try await db.sql.all("SELECT id FROM blobs ORDER BY id").map { try $0.decode(column: "id", as: Int64.self) }
            #expect(rows.count == 2 && [first] + ids == [rows[0], rows[1], nil], "\(location)")
            if case .sqlite = location {
                // A read has no count of its own: refused rather than answered with the last write's.
                await #expect(throws: StorageError.self) { try await db.transaction { tx in try await tx.changes(Self.lookUp("b")) } }
            }
            await db.shutdown()
        }
    }

    @Test("a statement's prepared form follows the schema: run again after the table changes, it reads the new columns")
    func afterSchemaChange() async throws {
        for location in try await TestDatabases.locations("statements-schema") {
            let db = try await Database.open(location)
            try await db.migrate(StorageTests.migrations)
            try await db.sql.run("INSERT INTO counters (name, value) VALUES (\(bind: "a"), \(bind: 1))")
            let all: Statement = "SELECT * FROM counters WHERE name = \(bind: "a")"
            #expect(try await db.transaction { tx in try await tx.first(all)?.allColumns } == ["name", "value"], "\(location)")
            try await db.sql.raw("ALTER TABLE counters ADD COLUMN note TEXT").run()
            #expect(try await db.transaction { tx in try await tx.first(all)?.allColumns } == ["name", "value", "note"], "\(location)")
            await db.shutdown()
        }
    }
}

/// SQLKit's rendering of an expression with SQLite's dialect, as the writer's session would.
struct SQLiteRenderer {
    func serialize(_ expression: any SQLExpression) -> (String, [any Encodable & Sendable]) {
        // The session is only asked to render: its connection runs nothing.
        let connection = try! SQLiteHandle(path: ":memory:")
        defer { connection.close() }
        return SQLiteSession(connection: connection, logger: Logger(label: "render")).serialize(expression)
    }
}
