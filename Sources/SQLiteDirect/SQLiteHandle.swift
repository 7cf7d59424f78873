internal import CSQLite3
internal import CSQLiteWAL

/// SQLite's C API, as much as CloudTap's storage needs: one connection, prepared statements
/// cached by their SQL text, values in and out. This module keeps the system's `sqlite3.h`
/// away from modules that also see SQLiteNIO's bundled copy of it.

/// A value in or out of SQLite.
public enum SQLiteValue: Sendable, Hashable {
    case integer(Int64)
    case float(Double)
    case text(String)
    case blob([UInt8])
    case null
}


/// One SQLite connection and its prepared statements. Used by one thread at a time.
public final class SQLiteHandle: @unchecked Sendable {
    private var db: OpaquePointer?
    private var statements: [String: Prepared] = [:]
    /// The same statements by the number a caller keeps for their text (see ``execute(_:slot:binds:_:)``).
    private var slots: [Prepared?] = []

    /// A prepared statement and its result columns' names, read once and again only after
    /// SQLite has prepared the statement anew (a schema change, such as a migration's, makes it).
    private final class Prepared {
        let statement: OpaquePointer
        var columns: [String]?
        /// SQLite's count of the statement's re-preparations when `columns` were read.
        var columnsAt: Int32 = 0
        init(_ statement: OpaquePointer) { self.statement = statement }

        func columnNames() -> [String] {
            let reprepared = sqlite3_stmt_status(statement, SQLITE_STMTSTATUS_REPREPARE, 0)
            if let columns, columnsAt == reprepared { return columns }
            let names = (0..<sqlite3_column_count(statement)).map { String(cString: sqlite3_column_name(statement, $0)) }
            (columns, columnsAt) = (names, reprepared)
            return names
        }
    }

    /// Opens `path` through CloudTap's write-gathering VFS (CSQLiteWAL): a commit's log frames
    /// reach the file as one write instead of two per page.
    public init(path: String) throws {
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let registered = cloudtap_register_wal_vfs()
        guard registered == SQLITE_OK else { throw SQLiteEngineError(code: registered, message: "cannot register the cloudtap-wal VFS") }
        let status = sqlite3_open_v2(path, &db, flags, "cloudtap-wal")
        guard status == SQLITE_OK else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close_v2(db)
            throw SQLiteEngineError(code: status, message: "\(path): \(message)")
        }
        sqlite3_extended_result_codes(db, 1)
    }

    /// SQLite's count of the memory it holds: 0 while its memory statistics are off, as the
    /// first handle turns them off (counting puts a process-wide mutex on every allocation).
    public static var memoryCounted: Int64 { sqlite3_memory_used() }

    /// The name of the VFS the main database file is open through, as the VFS reports it.
    public var vfsName: String? {
        var name: UnsafeMutablePointer<CChar>?
        guard let db, sqlite3_file_control(db, "main", SQLITE_FCNTL_VFSNAME, &name) == SQLITE_OK, let name else { return nil }
        defer { sqlite3_free(name) }
        return String(cString: name)
    }

    /// Rows the last INSERT, UPDATE or DELETE that finished on this connection wrote
    /// (`sqlite3_changes64`; rows written by triggers and foreign-key actions not counted).
    public var changes: Int { Int(sqlite3_changes64(db)) }

    /// The rowid of the last row an INSERT that finished on this connection wrote; an INSERT that
    /// wrote nothing leaves it as it was.
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(db) }

    public func close() {
        for prepared in statements.values { sqlite3_finalize(prepared.statement) }
        statements = [:]
        slots = []
        sqlite3_close_v2(db)
        db = nil
    }

    func error(_ status: Int32, _ sql: String) -> SQLiteEngineError {
        SQLiteEngineError(code: status, message: db.map { String(cString: sqlite3_errmsg($0)) } ?? "closed", sql: sql)
    }

    private func prepared(_ sql: String, slot: Int?) throws -> Prepared {
        if let slot, slot < slots.count, let cached = slots[slot] { return cached }
        let prepared = try prepared(sql)
        if let slot {
            if slot >= slots.count { slots += Array(repeating: nil, count: slot + 1 - slots.count) }
            slots[slot] = prepared
        }
        return prepared
    }

    private func prepared(_ sql: String) throws -> Prepared {
        if let cached = statements[sql] { return cached }
        var statement: OpaquePointer?
        let status = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard status == SQLITE_OK, let statement else { throw error(status, sql) }
        let prepared = Prepared(statement)
        statements[sql] = prepared
        return prepared
    }

    /// Runs one statement with its binds, handing each result row (column names, values) to `onRow`.
    /// A caller that numbers the texts it runs passes the text's number as `slot`: its prepared
    /// statement is then found by the number rather than by hashing the text (the same text
    /// always under the same number, and a number never for another text).
    public func execute(_ sql: String, slot: Int? = nil, binds: [SQLiteValue] = [], _ onRow: ([String], [SQLiteValue]) -> Void = { _, _ in }) throws {
        guard db != nil else { throw SQLiteEngineError(code: SQLITE_MISUSE, message: "the connection is closed", sql: sql) }
        let prepared = try prepared(sql, slot: slot)
        let statement = prepared.statement
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (i, value) in binds.enumerated() {
            let index = Int32(i + 1)
            let status: Int32
            switch value {
            case .integer(let n): status = sqlite3_bind_int64(statement, index, n)
            case .float(let d): status = sqlite3_bind_double(statement, index, d)
            case .text(var s):
                // With its length, so SQLite need not look for the end (an empty string still
                // needs an address: a null one would bind NULL).
                status = s.isEmpty ? sqlite3_bind_text(statement, index, "", 0, Self.transient) : s.withUTF8 {
                    $0.withMemoryRebound(to: CChar.self) { sqlite3_bind_text(statement, index, $0.baseAddress, Int32($0.count), Self.transient) }
                }
            case .blob(let bytes):
                status = bytes.withUnsafeBytes { sqlite3_bind_blob(statement, index, $0.baseAddress, Int32($0.count), Self.transient) }
            case .null: status = sqlite3_bind_null(statement, index)
            }
            guard status == SQLITE_OK else { throw error(status, sql) }
        }
        while true {
            let status = sqlite3_step(statement)
            if status == SQLITE_DONE { return }
            guard status == SQLITE_ROW else { throw error(status, sql) }
            let count = Int(sqlite3_column_count(statement))
            var values: [SQLiteValue] = []
            values.reserveCapacity(count)
            for i in 0..<Int32(count) {
                switch sqlite3_column_type(statement, i) {
                case SQLITE_INTEGER: values.append(.integer(sqlite3_column_int64(statement, i)))
                case SQLITE_FLOAT: values.append(.float(sqlite3_column_double(statement, i)))
                case SQLITE_TEXT:
                    // By its length, as it was bound (the text first, then its length, as
                    // SQLite's documentation orders the two calls).
                    let text = sqlite3_column_text(statement, i)
                    let length = Int(sqlite3_column_bytes(statement, i))
                    values.append(.text(text.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: length), as: UTF8.self) } ?? ""))
                case SQLITE_BLOB:
                    let length = Int(sqlite3_column_bytes(statement, i))
                    let bytes = length > 0 ? sqlite3_column_blob(statement, i).map { [UInt8](UnsafeRawBufferPointer(start: $0, count: length)) } ?? [] : []
                    values.append(.blob(bytes))
                default: values.append(.null)
                }
            }
            onRow(prepared.columnNames(), values)
        }
    }

    /// SQLITE_TRANSIENT: SQLite copies the bound bytes before the call returns.
    static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}

public struct SQLiteEngineError: Error, CustomStringConvertible, Sendable {
    public let code: Int32
    public let message: String
    public var sql: String = ""
    public init(code: Int32, message: String, sql: String = "") {
        self.code = code
        self.message = message
        self.sql = sql
    }
    public var description: String { "SQLite error \(code): \(message)" + (sql.isEmpty ? "" : " in \(sql.prefix(120))") }
    /// A UNIQUE, PRIMARY KEY or other constraint refused the write.
    public var isConstraint: Bool { code & 0xFF == SQLITE_CONSTRAINT }
}

