import Foundation
import SQLKit

/// One versioned schema change. Each module owns a range of ids (IssuerHost 1000–1999,
/// TokenService 2000–2999, …) and ships its migrations in order.
public struct Migration: Sendable {
    public let id: Int
    public let name: String
    /// The statements, rendered for the engine (types differ slightly; see ``Engine``).
    public let statements: @Sendable (Engine) -> [String]

    public init(id: Int, name: String, statements: @escaping @Sendable (Engine) -> [String]) {
        self.id = id
        self.name = name
        self.statements = statements
    }
}

extension Migration {
    /// PostgreSQL statements for a count of the changes to some columns: a one-row table
    /// `counter` (column `n`, from 0) that statement triggers move by one after every statement
    /// that sets any of `columns` in its table, deletes from it or truncates it, whether or not
    /// it changed a row. A caller that decides from rows it read before selects the count with
    /// them and checks, when it writes, that the count is the same: one single-row lookup, where
    /// comparing the rows themselves would read them all again. Statements that set none of the
    /// columns pay nothing. SQLite: none (nothing reads the count there).
    public static func changeCount(_ counter: String, of columns: [(table: String, columns: [String])], on engine: Engine) -> [String] {
        guard engine == .postgres else { return [] }
        return [
            "CREATE TABLE \(counter) (id INTEGER PRIMARY KEY CHECK (id = 1), n BIGINT NOT NULL)",
            "INSERT INTO \(counter) (id, n) VALUES (1, 0)",
            """
            CREATE FUNCTION \(counter)_moved() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE \(counter) SET n = n + 1 WHERE id = 1;
                RETURN NULL;
            END $$
            """,
        ] + columns.map { watched in
            """
            CREATE TRIGGER \(watched.table)_\(counter) AFTER UPDATE OF \(watched.columns.joined(separator: ", ")) OR DELETE OR TRUNCATE
                ON \(watched.table) FOR EACH STATEMENT EXECUTE FUNCTION \(counter)_moved()
            """
        }
    }
}

extension Database {
    /// Applies the migrations not yet applied, in id order, each in its own transaction, and
    /// records them in `schema_migrations`. Safe to run at every start.
    public func migrate(_ migrations: [Migration]) async throws {
        try await sql.raw("CREATE TABLE IF NOT EXISTS schema_migrations (id \(unsafeRaw: engine.bigint) PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)").run()
        let applied = Set(try await sql.raw("SELECT id FROM schema_migrations").all().map { try $0.decode(column: "id", as: Int.self) })
        for migration in migrations.sorted(by: { $0.id < $1.id }) where !applied.contains(migration.id) {
            let statements = migration.statements(engine)
            let now = Date().ISO8601Format()
            try await transaction { db in
                for statement in statements { try await db.raw(SQLQueryString(statement)).run() }
                try await db.raw("INSERT INTO schema_migrations (id, name, applied_at) VALUES (\(bind: migration.id), \(bind: migration.name), \(bind: now))").run()
            }
            logger.info("applied migration", metadata: ["id": "\(migration.id)", "name": "\(migration.name)"])
        }
    }

    /// Ids of the applied migrations.
    public func appliedMigrations() async throws -> [Int] {
        try await sql.raw("SELECT id FROM schema_migrations ORDER BY id").all().map { try $0.decode(column: "id", as: Int.self) }
    }
}
