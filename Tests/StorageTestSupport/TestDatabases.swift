import Foundation
import Storage
import TestSupport

/// Databases for tests: a fresh SQLite file, and — when the PostgreSQL server binaries are
/// installed — a fresh database in a throwaway cluster this process starts itself (initdb and
/// pg_ctl under /tmp, loopback only, trust authentication, stopped at exit).
public enum TestDatabases {
    /// Every engine available here; each call gives new, empty databases.
    public static func locations(_ label: String = "t") async throws -> [DatabaseLocation] {
        var out: [DatabaseLocation] = [.sqlite(path: sqlitePath(label))]
        if ProcessInfo.processInfo.environment["CLOUDTAP_TEST_POSTGRES"] == "0" { return out }
        // initdb, pg_ctl and createdb are child processes waited for: off the shared threads.
        if let url = try await offPool({ try PostgresCluster.shared()?.createDatabase() }) {
            out.append(.postgres(url: url))
        } else {
            reportSkip()
        }
        return out
    }

    /// Opens a fresh database on every engine in turn, runs `body`, and shuts the database
    /// down whether the body returns or throws.
    public static func withEach(_ label: String, _ body: (Database) async throws -> Void) async throws {
        for location in try await locations(label) {
            let db = try await Database.open(location)
            do {
                try await body(db)
            } catch {
                await db.shutdown()
                throw error
            }
            await db.shutdown()
        }
    }

    public static func sqlitePath(_ label: String) -> String {
        dir.appendingPathComponent("\(label)-\(UUID().uuidString).sqlite").path
    }

    /// This process's directory for SQLite files, removed when the process exits.
    private static let dir: URL = {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("cloudtap-tests-\(getpid())", isDirectory: true)
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        ProcessCleanup.register("rm -rf '\(d.path)'")
        return d
    }()

    private static let skipOnce: Void = {
        FileHandle.standardError.write(Data("note: PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb); PostgreSQL runs of the storage tests are skipped. Install postgresql to run them.\n".utf8))
    }()
    static func reportSkip() { _ = skipOnce }
}

/// A PostgreSQL cluster private to this test process.
final class PostgresCluster: @unchecked Sendable {
    let binDir: String
    let dataDir: String
    let port: Int
    private let lock = NSLock()
    private var databases = 0

    nonisolated(unsafe) private static var instance: PostgresCluster?
    nonisolated(unsafe) private static var attempted = false
    private static let lock = NSLock()

    static func shared() throws -> PostgresCluster? {
        try lock.withLock {
            if attempted { return instance }
            attempted = true
            guard let bin = findBinaries() else { return nil }
            instance = try PostgresCluster(binDir: bin)
            return instance
        }
    }

    static func findBinaries() -> String? {
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root))?.sorted { (Int($0) ?? 0) > (Int($1) ?? 0) } ?? []
        for v in versions where FileManager.default.isExecutableFile(atPath: "\(root)/\(v)/bin/initdb") {
            return "\(root)/\(v)/bin"
        }
        return nil
    }

    private init(binDir: String) throws {
        self.binDir = binDir
        dataDir = "/tmp/cloudtap-pg-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let asRoot = getuid() == 0
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        if asRoot { try Self.run(["/bin/chown", "postgres:postgres", dataDir]) }
        try Self.runAsOwner(["\(binDir)/initdb", "-D", dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
        // A port below the kernel's ephemeral range (32768 up), where outgoing connections take
        // theirs; one taken all the same (another cluster's, a listener's) means another try.
        var started: Int?
        var failure: (any Error)?
        for _ in 0..<5 where started == nil {
            let candidate = Int.random(in: 20_000...32_000)
            do {
                try Self.runAsOwner(["\(binDir)/pg_ctl", "-D", dataDir, "-l", "\(dataDir)/log", "-w", "-o",
                                     "-p \(candidate) -h 127.0.0.1 -k \(dataDir) -c fsync=off -c full_page_writes=off -c max_connections=200", "start"])
                started = candidate
            } catch {
                failure = error
            }
        }
        guard let started else { throw failure! }
        port = started
        let stop = "\(binDir)/pg_ctl -D \(dataDir) -m immediate stop"
        let cleanup = asRoot ? "runuser -u postgres -- \(stop); rm -rf \(dataDir)" : "\(stop); rm -rf \(dataDir)"
        ProcessCleanup.register(cleanup)
    }

    /// A new empty database; returns its URL.
    func createDatabase() throws -> String {
        let n = lock.withLock { databases += 1; return databases }
        let name = "cloudtap_test_\(n)"
        try Self.runAsOwner(["\(binDir)/createdb", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", name])
        return "postgres://postgres@127.0.0.1:\(port)/\(name)?sslmode=disable"
    }

    private static func runAsOwner(_ argv: [String]) throws {
        try run(getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] + argv : argv)
    }

    /// Runs a command and throws with its output when it fails. (Not Foundation's Process: it
    /// waits for every descendant that keeps its descriptors, as pg_ctl's server does; not
    /// system(): the server would keep descriptors of this process open for good. See TestSupport.)
    private static func run(_ argv: [String]) throws {
        let result = try runCommand(argv)
        guard result.status == 0 else { throw ClusterError(command: argv.joined(separator: " "), output: result.output) }
    }
}

struct ClusterError: Error, CustomStringConvertible {
    let command: String
    let output: String
    var description: String { "\(command) failed: \(output)" }
}

/// Shell commands run when the test process exits.
enum ProcessCleanup {
    nonisolated(unsafe) static var commands: [String] = []
    static let lock = NSLock()
    nonisolated(unsafe) static var installed = false

    static func register(_ command: String) {
        lock.withLock {
            commands.append(command)
            if !installed {
                installed = true
                atexit {
                    for c in ProcessCleanup.commands { _ = system(c + " >/dev/null 2>&1") }
                }
            }
        }
    }
}
