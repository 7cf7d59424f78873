import Foundation
import SQLKit
import SQLiteDirect
import Storage
import StorageTestSupport
import Testing

@Suite("Storage on SQLite and PostgreSQL")
struct StorageTests {
    static let migrations = [
        Migration(id: 1, name: "counters") { e in
            ["CREATE TABLE counters (name TEXT PRIMARY KEY, value \(e.bigint) NOT NULL)"]
        },
        Migration(id: 2, name: "blobs") { e in
            ["CREATE TABLE blobs (id \(e.autoID), data \(e.blob) NOT NULL)"]
        },
    ]

    @Test("migrations apply once, in order, on every engine")
    func migrations() async throws {
        for location in try await TestDatabases.locations("migrate") {
            let db = try await Database.open(location)
            try await db.migrate(Self.migrations)
            try await db.migrate(Self.migrations)
            #expect(try await db.appliedMigrations() == [1, 2], "\(location)")
            await db.shutdown()
        }
    }

    @Test("a transaction commits when its body returns and rolls back when it throws")
    func transactions() async throws {
        struct Boom: Error {}
        for location in try await TestDatabases.locations("tx") {
            let db = try await Database.open(location)
            try await db.migrate(Self.migrations)
            try await db.transaction { tx in
                try await tx.raw("INSERT INTO counters (name, value) VALUES (\(bind: "a"), \(bind: 1))").run()
            }
            await #expect(throws: Boom.self) {
                try await db.transaction { tx in
                    try await tx.raw("UPDATE counters SET value = 99 WHERE name = \(bind: "a")").run()
                    throw Boom()
                }
            }
            let value = try await db.sql.raw("SELECT value FROM counters WHERE name = \(bind: "a")").first()?.decode(column: "value", as: Int64.self)
            #expect(value == 1, "\(location)")
            // Bytes round-trip.
            let bytes = Data([0x00, 0xFF, 0x10, 0x80])
            try await db.sql.raw("INSERT INTO blobs (data) VALUES (\(bind: bytes))").run()
            let back = try await db.sql.raw("SELECT data FROM blobs").first()?.decode(column: "data", as: Data.self)
            #expect(back == bytes, "\(location)")
            await db.shutdown()
        }
    }

    @Test("an unflushed statement commits without waiting for the disk on PostgreSQL (its own connections), and is visible at once; others wait; a session's statements keep generic plans, plan no sequential scans, and commit by themselves")
    func unflushedStatements() async throws {
        for location in try await TestDatabases.locations("unflushed") {
            let db = try await Database.open(location)
            try await db.migrate(Self.migrations)
            try await db.statement(unflushed: true) { tx in try await tx.raw("INSERT INTO counters (name, value) VALUES ('u', 7)").run() }
            #expect(try await db.sql.raw("SELECT value FROM counters WHERE name = 'u'").first()?.decode(column: "value", as: Int64.self) == 7)
            if db.engine == .postgres {
                func setting(unflushed: Bool) async throws -> String? {
                    try await db.statement(unflushed: unflushed) { tx in try await tx.raw("SHOW synchronous_commit").first()?.decode(column: "synchronous_commit", as: String.self) }
                }
                #expect(try await setting(unflushed: true) == "off")
                #expect(try await setting(unflushed: false) == "on")
                #expect(try await db.transaction { tx in try await tx.raw("SHOW synchronous_commit").first()?.decode(column: "synchronous_commit", as: String.self) } == "on")
                // A held session's statements keep one plan each; they commit by themselves, and wait.
                @Sendable func plans(_ on: any SQLDatabase) async throws -> String? {
                    try await on.raw("SHOW plan_cache_mode").first()?.decode(column: "plan_cache_mode", as: String.self)
                }
                #expect(try await db.heldSession().run { try await plans($0) } == "force_generic_plan")
                #expect(try await plans(db.sql) == "auto")
                // …and plan no sequential scans: a plan made while a table was small keeps finding rows by key once it has grown.
                #expect(try await db.heldSession().run { try await $0.raw("SHOW enable_seqscan").first()?.decode(column: "enable_seqscan", as: String.self) } == "off")
                #expect(try await db.sql.raw("SHOW enable_seqscan").first()?.decode(column: "enable_seqscan", as: String.self) == "on")
                #expect(try await db.heldSession().run { try await $0.raw("SHOW synchronous_commit").first()?.decode(column: "synchronous_commit", as: String.self) } == "on")
            }
            try await db.heldSession().run { session in try await session.raw("INSERT INTO counters (name, value) VALUES ('s', 8)").run() }
            #expect(try await db.sql.raw("SELECT value FROM counters WHERE name = 's'").first()?.decode(column: "value", as: Int64.self) == 8)
            await db.shutdown()
        }
    }

    @Test("arrays bound to a PostgreSQL statement come back element for element, from the first run, by unnest and as the rows of many columns: quotes, backslashes, braces, NULLs, any byte, the integers' ends; a NUL in text is refused, not sent")
    func arrays() async throws {
        for location in try await TestDatabases.locations("arrays") {
            let db = try await Database.open(location)
            guard db.engine == .postgres else { await db.shutdown(); continue }
            let texts: [String?] = ["plain", "", "it's", #"say "hi""#, #"back\slash"#, #"\x41"#, "{brace,comma}", "NULL", nil, "一二三 €"]
            let bytes: [Data?] = [Data(), Data([0]), Data([0x5C, 0x27, 0x22]), Data((0...255).map(UInt8.init)), nil, Data([0xFF]), Data("x".utf8), nil, Data([1]), Data([2])]
            let integers: [Int64?] = [0, -1, 1, .max, .min, nil, 42, -42, 1_000_000_000_000, 7]
            let flags: [Bool] = [true, false, true, true, false, false, true, false, true, false]
            for run in 0..<2 {  // the first run prepares; the second executes what was prepared
                let rows = try await db.sql.raw("""
                    SELECT q.n, q.t, q.b, q.i, q.f FROM unnest(\(bind: PostgresArray(texts)), \(bind: PostgresArray(bytes)), \(bind: PostgresArray(integers)),
                                                             \(bind: PostgresArray(flags))) WITH ORDINALITY AS q(t, b, i, f, n) ORDER BY q.n
                    """).all()
                #expect(rows.count == texts.count, "run \(run)")
                for (k, row) in rows.enumerated() {
                    #expect(try row.decode(column: "t", as: String?.self) == texts[k], "text \(k)")
                    #expect(try row.decode(column: "b", as: Data?.self) == bytes[k], "bytes \(k)")
                    #expect(try row.decode(column: "i", as: Int64?.self) == integers[k], "integer \(k)")
                    #expect(try row.decode(column: "f", as: Bool.self) == flags[k], "flag \(k)")
                }
                // The same as the rows of many columns: a row an index, each array's element under its name.
                let table = try await db.sql.all("""
                    SELECT r.* FROM (\(PostgresArray.rows([("i", PostgresArray(integers)), ("t", PostgresArray(texts)), ("b", PostgresArray(bytes)),
                                                           ("f", PostgresArray(flags))]))) r
                    """ as Statement)
                func line(_ i: Int64?, _ t: String?, _ b: Data?, _ f: Bool) -> String { "\(i.map(String.init) ?? "-")|\(t ?? "-")|\(b?.base64EncodedString() ?? "-")|\(f)" }
                let read = try table.map { try line($0.decode(column: "i", as: Int64?.self), $0.decode(column: "t", as: String?.self),
                                                   $0.decode(column: "b", as: Data?.self), $0.decode(column: "f", as: Bool.self)) }
                #expect(read.sorted() == texts.indices.map { line(integers[$0], texts[$0], bytes[$0], flags[$0]) }.sorted(), "run \(run)")
            }
            #expect(!PostgresArray.canHold("a\u{0}b"))
            await #expect(throws: StorageError.self) {
                try await db.sql.raw("SELECT unnest(\(bind: PostgresArray(["a\u{0}b"]))) AS t").run()
            }
            await db.shutdown()
        }
    }

    @Test("a prepared statement's row captured: integers of each width, text, booleans, bytes and NULLs read back as the row did; a column set; only the columns asked for; a cell of another type captures nothing; described by its columns' names, not its values")
    func capturedRows() async throws {
        for location in try await TestDatabases.locations("captured") {
            let db = try await Database.open(location)
            guard db.engine == .postgres else { await db.shutdown(); continue }
            // Over an array, so the statement runs prepared and its rows are read cell by cell.
            let rows = try await db.sql.raw("""
                SELECT q.t, q.n, q.n::int4 AS small, q.n::int2 AS tiny, q.n > 1 AS flag, decode('00ff', 'hex') AS b, NULL::text AS missing,
                       q.n::numeric AS exact
                FROM unnest(\(bind: PostgresArray([Int64(7)])), \(bind: PostgresArray(["it's"]))) AS q(n, t)
                """).all()
            let row = try #require(rows.first)
            #expect(CapturedRow(capturing: row) == nil)  // numeric is not kept
            let captured = try #require(CapturedRow(capturing: row, columns: ["t", "n", "small", "tiny", "flag", "b", "missing"]))
            #expect(Set(captured.allColumns) == ["t", "n", "small", "tiny", "flag", "b", "missing"])
            #expect(try captured.decode(column: "t", as: String.self) == "it's")
            #expect(try captured.decode(column: "n", as: Int64.self) == 7)
            #expect(try captured.decode(column: "small", as: Int.self) == 7)
            #expect(try captured.decode(column: "tiny", as: Int64?.self) == 7)
            #expect(try captured.decode(column: "flag", as: Bool.self))
            #expect(try captured.decode(column: "b", as: Data.self) == Data([0, 0xFF]))
            #expect(try captured.decode(column: "missing", as: String?.self) == nil)
            #expect(try captured.decodeNil(column: "missing"))
            #expect(throws: StorageError.self) { try captured.decode(column: "missing", as: String.self) }
            #expect(throws: StorageError.self) { try captured.decode(column: "t", as: Int64.self) }
            #expect(throws: StorageError.self) { try captured.decode(column: "exact", as: Int64.self) }
            let changed = captured.setting(["n": .integer(8), "missing": .text("here")])
            #expect(try changed.decode(column: "n", as: Int64.self) == 8 && changed.decode(column: "missing", as: String.self) == "here")
            #expect(try captured.decode(column: "n", as: Int64.self) == 7)
            // Described by its columns, never its values.
            for text in [String(describing: captured), String(reflecting: captured), { var s = ""; dump(captured, to: &s); return s }()] {
                #expect(!text.contains("it's") && !text.contains("00ff") && text.contains("CapturedRow"), "\(text)")
            }
            await db.shutdown()
        }
    }

    @Test("a statement run again runs prepared: every bind type, quotes and NULLs come back as sent; what cannot go prepared goes as it is")
    func preparedStatements() async throws {
        for location in try await TestDatabases.locations("prepared") {
            let db = try await Database.open(location)
            try await db.migrate(Self.migrations)
            let names = ["plain", "it's", "''", "a\\b", "中文 ✓", ""]
            let bytes = [Data(), Data([0x00, 0x27, 0x5C, 0xFF]), Data(repeating: 0xAB, count: 300)]
            // Three rounds: seen, prepared, then run prepared — in a transaction and outside one.
            for round in 0..<3 {
                for (i, name) in names.enumerated() {
                    let key = "\(name)#\(round)"
                    let amount = Int64(i) * 1_000_000_007 - 5
                    try await db.transaction { tx in
                        try await tx.raw("INSERT INTO counters (name, value) VALUES (\(bind: key), \(bind: amount))").run()
                    }
                    let row = try await db.sql.raw("SELECT name, value FROM counters WHERE name = \(bind: key) AND value > \(bind: Int32(-10))").first()
                    #expect(try row?.decode(column: "name", as: String.self) == key, "\(location)")
                    #expect(try row?.decode(column: "value", as: Int64.self) == amount, "\(location)")
                }
                for data in bytes {
                    let id = try await db.transaction { tx in
                        try await tx.raw("INSERT INTO blobs (data) VALUES (\(bind: data)) RETURNING id").first()!.decode(column: "id", as: Int64.self)
                    }
                    let back = try await db.sql.raw("SELECT data FROM blobs WHERE id = \(bind: id)").first()?.decode(column: "data", as: Data.self)
                    #expect(back == data, "\(location)")
                }
                // A nil bind, and a bind whose parameter's type only the value gives.
                let none: String? = nil
                let found = try await db.sql.raw("SELECT COUNT(*) AS n FROM counters WHERE name = COALESCE(\(bind: none), 'plain#0')").first()
                #expect(try found?.decode(column: "n", as: Int.self) == 1, "\(location)")
                let echoed = try await db.sql.raw("SELECT \(bind: "x'y") AS v").first()
                #expect(try echoed?.decode(column: "v", as: String.self) == "x'y", "\(location)")
                // A failed statement inside a transaction still rolls the whole unit back.
                await #expect(throws: (any Error).self) {
                    try await db.transaction { tx in
                        try await tx.raw("UPDATE counters SET value = 0 WHERE name = \(bind: "plain#0")").run()
                        try await tx.raw("INSERT INTO counters (name, value) VALUES (\(bind: "plain#0"), 1)").run()
                    }
                }
                let kept = try await db.sql.raw("SELECT value FROM counters WHERE name = \(bind: "plain#0")").first()?.decode(column: "value", as: Int64.self)
                #expect(kept == -5, "\(location)")
            }
            let count = try await db.sql.raw("SELECT COUNT(*) AS n FROM counters").first()?.decode(column: "n", as: Int.self)
            #expect(count == names.count * 3, "\(location)")
            if db.engine == .postgres {
                // On one connection, a statement's second run is prepared there: by the protocol
                // (not SQL's PREPARE), its placeholder cast to the bind's type.
                let prepared = try await db.transaction { tx in
                    for _ in 0..<2 { _ = try await tx.raw("SELECT value AS once_more FROM counters WHERE name = \(bind: "once more")").all() }
                    return try await tx.raw("""
                        SELECT COUNT(*) AS n FROM pg_prepared_statements
                        WHERE NOT from_sql AND statement = 'SELECT value AS once_more FROM counters WHERE name = ($1::text)'
                        """).first()!.decode(column: "n", as: Int.self)
                }
                #expect(prepared == 1)
                // A statement first met inside a failed transaction is not refused for good.
                let marked: SQLQueryString = "SELECT value AS marker_7 FROM counters WHERE name = \(bind: "after failure")"
                _ = try await db.sql.raw(marked).all()
                await #expect(throws: (any Error).self) {
                    try await db.transaction { tx in
                        _ = try? await tx.raw("SELECT * FROM no_such_table").all()
                        _ = try await tx.raw(marked).all()
                    }
                }
                let found = try await db.transaction { tx in
                    _ = try await tx.raw(marked).all()
                    return try await tx.raw("SELECT COUNT(*) AS n FROM pg_prepared_statements WHERE statement LIKE '%marker_7%'").first()!.decode(column: "n", as: Int.self)
                }
                #expect(found == 1)
            }
            await db.shutdown()
        }
    }

    @Test("every bind type CloudTap reads directly, and optionals of them, comes back as sent, first run and prepared")
    func bindTypes() async throws {
        for location in try await TestDatabases.locations("binds") {
            let db = try await Database.open(location)
            try await db.migrate(Self.migrations)
            func echo<T: Decodable & Equatable & Encodable & Sendable>(_ value: T, _ line: Int = #line) async throws {
                for _ in 0..<3 {
                    let row = try await db.sql.raw("SELECT \(bind: value) AS v").first()
                    do {
                        #expect(try row?.decode(column: "v", as: T.self) == value, "\(location), line \(line)")
                    } catch {
                        Issue.record(error, "\(location), line \(line)")
                    }
                }
            }
            try await echo(Int(-7_000_000_000))
            try await echo(Int64.min + 1)
            try await echo(Int32(-70_000))
            try await echo(Int16(-300))
            // Unsigned integers go as the next wider signed type and are read back as Int64
            // (PostgresNIO's decoder stops the process on an int8 read as UInt32).
            let unsigned: [(any Encodable & Sendable, Int64)] = [(UInt32(4_000_000_000), 4_000_000_000), (UInt16(60_000), 60_000), (UInt8(200), 200)]
            for (value, expected) in unsigned {
                for _ in 0..<3 {
                    let back = try await db.sql.raw("SELECT \(bind: value) AS v").first()?.decode(column: "v", as: Int64.self)
                    #expect(back == expected, "\(location)")
                }
            }
            try await echo(true)
            try await echo(false)
            try await echo(2.5)
            try await echo("it's")
            try await echo(Data([0x00, 0x27, 0xFF]))
            // Bytes bound as an array come back as Data (rows decode blobs as Data).
            let bytes: [UInt8] = [0x01, 0x5C, 0x02]
            for _ in 0..<3 {
                let back = try await db.sql.raw("SELECT \(bind: bytes) AS v").first()?.decode(column: "v", as: Data.self)
                #expect(back == Data(bytes), "\(location)")
            }
            try await echo(Int?.some(5))
            try await echo(Data?.some(Data([0xAB])))
            // A nil of each kind is NULL.
            let nils: [any Encodable & Sendable] = [String?.none, Int64?.none, Data?.none]
            for none in nils {
                let isNull = try await db.sql.raw("SELECT \(bind: none) IS NULL AS n").first()?.decode(column: "n", as: Bool.self)
                #expect(isNull == true, "\(location)")
            }
            await db.shutdown()
        }
    }

    @Test("concurrent read-modify-write transactions lose no update")
    func concurrency() async throws {
        for location in try await TestDatabases.locations("conc") {
            let db = try await Database.open(location)
            try await db.migrate(Self.migrations)
            try await db.sql.raw("INSERT INTO counters (name, value) VALUES ('c', 0)").run()
            let forUpdate = db.engine.forUpdate
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<40 {
                    group.addTask {
                        try await db.transaction { tx in
                            let v = try await tx.raw("SELECT value FROM counters WHERE name = 'c'\(unsafeRaw: forUpdate)").first()!.decode(column: "value", as: Int64.self)
                            try await tx.raw("UPDATE counters SET value = \(bind: v + 1) WHERE name = 'c'").run()
                        }
                    }
                }
                try await group.waitForAll()
            }
            let value = try await db.sql.raw("SELECT value FROM counters WHERE name = 'c'").first()?.decode(column: "value", as: Int64.self)
            #expect(value == 40, "\(location)")
            await db.shutdown()
        }
    }

    @Test("locations parse and never print a password")
    func locations() {
        #expect(DatabaseLocation("postgres://u:secret@h:5432/db") == .postgres(url: "postgres://u:secret@h:5432/db"))
        #expect(!DatabaseLocation("postgres://u:secret@h:5432/db").description.contains("secret"))
        #expect(DatabaseLocation("sqlite:/tmp/x.db") == .sqlite(path: "/tmp/x.db"))
        #expect(DatabaseLocation("cloudtap.sqlite") == .sqlite(path: "cloudtap.sqlite"))
    }
}

@Suite("SQLite's WAL writes gathered")
struct WALGatheringTests {
    @Test("a kept statement's column names follow a schema change on its connection; text binds keep their length")
    func columnNamesAfterSchemaChange() throws {
        let handle = try SQLiteHandle(path: TestDatabases.sqlitePath("columns"))
        try handle.execute("CREATE TABLE t (a, b)")
        try handle.execute("INSERT INTO t VALUES (?, ?)", binds: [.text(""), .text("x\u{0}y 中文")])
        func read() throws -> ([String], [SQLiteValue]) {
            var out: ([String], [SQLiteValue]) = ([], [])
            try handle.execute("SELECT * FROM t") { columns, values in out = (columns, values) }
            return out
        }
        #expect(try read() == (["a", "b"], [.text(""), .text("x\u{0}y 中文")]))
        try handle.execute("ALTER TABLE t RENAME COLUMN a TO c")
        #expect(try read().0 == ["c", "b"])
        handle.close()
    }

    @Test("SQLite counts no memory (no mutex on its allocations) once a handle is open")
    func noMemoryStatistics() throws {
        let handle = try SQLiteHandle(path: TestDatabases.sqlitePath("memstat"))
        try handle.execute("CREATE TABLE t (x)")
        try handle.execute("INSERT INTO t VALUES (?)", binds: [.blob([UInt8](repeating: 7, count: 10_000))])
        #expect(SQLiteHandle.memoryCounted == 0)
        handle.close()
    }

    @Test("commits bigger than one gathered write, small ones after them, reads from another connection and after a reopen all see the same rows")
    func roundTrip() async throws {
        let path = TestDatabases.sqlitePath("wal-gather")
        let handle = try SQLiteHandle(path: path)
        #expect(handle.vfsName?.hasPrefix("cloudtap-wal") == true)
        handle.close()
        var expected: [Int64: [UInt8]] = [:]
        do {
            let db = try await Database.open(.sqlite(path: path))
            try await db.transaction { tx in try await tx.raw("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)").run() }
            // 600 KiB in one commit: several pieces of the gathered write (the underlying VFS
            // takes under 128 KiB a call); then single rows, each its own small commit.
            let big = (1...300).map { i in (Int64(i), (0..<2048).map { UInt8(truncatingIfNeeded: $0 &* i &+ i) }) }
            try await db.transaction { tx in
                for (id, body) in big { try await tx.raw("INSERT INTO blobs (id, body) VALUES (\(bind: id), \(bind: Data(body)))").run() }
            }
            for (id, body) in big { expected[id] = body }
            for i in Int64(301)...320 {
                let body = [UInt8](repeating: UInt8(i & 0xFF), count: 100)
                try await db.transaction { tx in try await tx.raw("INSERT INTO blobs (id, body) VALUES (\(bind: i), \(bind: Data(body)))").run() }
                expected[i] = body
            }
            // The read connection sees every commit whole.
            let read = try await db.sql.raw("SELECT id, body FROM blobs ORDER BY id").all()
            #expect(read.count == expected.count)
            for row in read {
                let id = try row.decode(column: "id", as: Int64.self)
                #expect(Array(try row.decode(column: "body", as: Data.self)) == expected[id])
            }
            await db.shutdown()
        }
        let reopened = try await Database.open(.sqlite(path: path))
        let rows = try await reopened.sql.raw("SELECT id, body FROM blobs ORDER BY id").all()
        #expect(try rows.map { try $0.decode(column: "id", as: Int64.self) } == expected.keys.sorted())
        #expect(try rows.allSatisfy { Array(try $0.decode(column: "body", as: Data.self)) == expected[try $0.decode(column: "id", as: Int64.self)] })
        await reopened.shutdown()
    }
}

@Suite("SQLite's WAL kept short")
struct WALRestartTests {
    @Test("under writes that never pause, the WAL starts over after the background checkpoints (its header's checkpoint count moves)")
    func restartsUnderLoad() async throws {
        let path = TestDatabases.sqlitePath("wal-restart")
        let db = try await Database.open(.sqlite(path: path))
        try await db.transaction { tx in try await tx.raw("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)").run() }
        // Eight writers back to back for 2.6 s: the writer thread is never idle, so only the
        // hand-off after each background checkpoint (once a second) can start the WAL over.
        let end = ContinuousClock.now + .milliseconds(2600)
        let body = Data(repeating: 0xA5, count: 1500)
        let written = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var n = 0
                    while ContinuousClock.now < end {
                        try await db.transaction { tx in try await tx.raw("INSERT INTO blobs (body) VALUES (\(bind: body))").run() }
                        n += 1
                    }
                    return n
                }
            }
            return try await group.reduce(0, +)
        }
        let header = try #require(FileHandle(forReadingAtPath: path + "-wal")).readData(ofLength: 32)
        let checkpoints = header.count == 32 ? header[12..<16].reduce(UInt32(0)) { $0 << 8 | UInt32($1) } : 0
        #expect(checkpoints >= 1, "the WAL never started over in \(written) commits")
        #expect(try await db.sql.raw("SELECT COUNT(*) AS n FROM blobs").first()?.decode(column: "n", as: Int.self) == written)
        await db.shutdown()
    }
}

@Suite("Storage failures")
struct StorageFailureTests {
    @Test("an unreachable PostgreSQL or an unwritable SQLite path is an error, not a crash")
    func unreachable() async throws {
        await #expect(throws: (any Error).self) {
            _ = try await Database.open(.postgres(url: "postgres://nobody@127.0.0.1:1/none?sslmode=disable"))
        }
        await #expect(throws: (any Error).self) {
            _ = try await Database.open(.sqlite(path: "/proc/cloudtap-cannot-write-here/x.sqlite"))
        }
    }
}
