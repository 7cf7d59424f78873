import Foundation
import SQLKit
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
        for location in try TestDatabases.locations("migrate") {
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
        for location in try TestDatabases.locations("tx") {
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

    @Test("concurrent read-modify-write transactions lose no update")
    func concurrency() async throws {
        for location in try TestDatabases.locations("conc") {
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
