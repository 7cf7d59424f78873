import SQLiteDirect
import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import SQLiteKit
import SQLKit

/// CloudTap's SQLite engine: one connection owned by one thread, with group commit.
///
/// Every unit of work — a transaction's body, or a single statement — is queued; the writer
/// takes whatever is queued, opens one `BEGIN IMMEDIATE`, runs each unit inside its own
/// `SAVEPOINT` (a unit that throws is rolled back alone) and commits once. The commit does not
/// wait for the disk: a thread of its own (``WALSyncer``) makes the log durable and only then
/// answers the batch's callers, while the writer goes on with the next batch. So nobody hears
/// "done" before their work is on disk, one flush covers every batch committed while the one
/// before was being flushed, and the only writer never waits for the disk.
///
/// The writer runs as a task whose executor preference is the connection's thread, so a body's
/// statements run on that thread one after another without hopping between threads; prepared
/// statements are cached by their SQL text.
final class SQLiteEngine: @unchecked Sendable {  // the connection is touched only by the writer
    let connection: SQLiteHandle
    let thread: SQLiteThread
    let logger: Logger
    private let queue = WorkQueue()
    private var writer: Task<Void, Never>?
    private var checkpointer: Checkpointer?
    /// Makes committed batches durable and answers their callers (see ``WALSyncer``).
    let syncer: WALSyncer
    /// A second connection for single SELECTs outside transactions: they read the last
    /// committed state (WAL) without queueing behind the writer's batches.
    let reader: SQLiteReader
    /// Units per commit at most (bounds one batch's latency).
    let maximumBatch = 256

    init(path: String, logger: Logger) throws {
        self.logger = logger
        connection = try SQLiteHandle(path: path)
        thread = SQLiteThread(name: "cloudtap-sqlite")
        // Settings that cannot change inside a transaction, before the writer starts.
        // 2 KiB pages for a new file (a file keeps the size it was made with): a commit writes
        // every page it dirtied to the WAL whole, and a sale dirties about ten pages for a few
        // hundred bytes of rows, so smaller pages cut what the writer thread copies and
        // checksums — 28 KB written a sale instead of 43 KB, 15–20 % more sales a second on a
        // load run than with 4 KiB pages; 1 KiB pages were no better (docs/benchmarks.md).
        try connection.execute("PRAGMA page_size=2048")
        try connection.execute("PRAGMA journal_mode=WAL")
        // NORMAL: the writer's commits do not sync the log — the syncer does, before anyone is
        // answered — while SQLite still syncs where the log's own safety needs it: the log
        // before a checkpoint copies it, the database file after, and the log's new header when
        // the log starts over (so no frame of the log before can be taken for a current one).
        try connection.execute("PRAGMA synchronous=NORMAL")
        try connection.execute("PRAGMA foreign_keys=ON")
        try connection.execute("PRAGMA busy_timeout=10000")
        // A unit's savepoint keeps the pages it changes in a sub-journal until it is released;
        // kept in memory, not spilled to a temporary file (on a load run: ~25,000 fewer pwrite
        // calls a second).
        try connection.execute("PRAGMA temp_store=MEMORY")
        // Checkpoints move the WAL into the database file. Done inside a commit (SQLite's
        // default, every 1,000 pages) they stall every caller of that batch for milliseconds;
        // a second connection does them in the background instead (passive: never blocks the
        // writer), five times a second, and syncs the database file after each (`Checkpointer`).
        //
        // A passive checkpoint copies only the frames that were in the WAL when it began, and
        // the writer keeps appending meanwhile, so alone it never catches up: SQLite starts the
        // WAL over only when a write begins with every frame copied, and the WAL (and with it
        // each page look-up through the WAL index) grew without end — throughput halved over
        // twenty seconds of load. So once a second, after a background checkpoint, the writer,
        // between two batches, checkpoints what was written meanwhile (a few milliseconds'
        // pages) and its next write starts the WAL over.
        try connection.execute("PRAGMA wal_autocheckpoint=0")
        let caughtUp = CheckpointSignal()
        checkpointer = try Checkpointer(path: path, logger: logger, signal: caughtUp)
        let syncer = WALSyncer(path: path + "-wal", logger: logger)
        self.syncer = syncer
        do {
            reader = try SQLiteReader(path: path, syncer: syncer)
        } catch {
            syncer.stop()
            checkpointer?.stop()
            throw error
        }
        let queue = self.queue, connection = self.connection, thread = self.thread, maximum = maximumBatch
        writer = Task(executorPreference: thread) {
            await Self.write(queue: queue, connection: connection, logger: logger, maximum: maximum, caughtUp: caughtUp, syncer: syncer)
        }
    }

    /// Units waiting for the writer.
    var backlog: Int { queue.count }

    /// Runs `body` as one unit: in a savepoint of the current batch, answered after the commit.
    func unit<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let work = TypedWork(body: body, continuation: continuation)
            if !queue.push(work) { continuation.resume(throwing: StorageError("the database is shut down")) }
        }
    }

    func shutdown() async {
        queue.close()
        await writer?.value
        syncer.stop()
        checkpointer?.stop()
        reader.close()
        try? connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.close()
        thread.stop()
    }

    /// The writer: batches of units, one commit each.
    static func write(queue: WorkQueue, connection: SQLiteHandle, logger: Logger, maximum: Int, caughtUp: CheckpointSignal? = nil,
                      syncer: WALSyncer) async {
        let session = SQLiteSession(connection: connection, logger: logger)
        /// Commits the batch and hands it to the syncer, which answers its callers once the
        /// commit is on disk; a batch whose commit failed (and was rolled back) is answered now.
        func commit(_ batch: [Work]) {
            let sequence = syncer.announce()
            do {
                try connection.execute("COMMIT")
                syncer.committed(sequence, batch)
            } catch {
                logger.error("commit failed; the batch is rolled back", metadata: ["error": "\(error)"])
                try? connection.execute("ROLLBACK")
                syncer.committed(sequence, [])
                for work in batch { work.complete(committed: error) }
            }
        }
        while let batch = await queue.next(maximum: maximum) {
            if let failure = syncer.failure {
                // The log could not be synced: nothing more is written to it.
                for work in batch { work.complete(committed: failure) }
                continue
            }
            if caughtUp?.take() == true {
                // Between batches, no transaction open: the frames since the background
                // checkpoint, so the next write can start the WAL over.
                do { try connection.execute("PRAGMA wal_checkpoint(PASSIVE)") } catch {
                    logger.debug("writer's checkpoint skipped", metadata: ["error": "\(error)"])
                }
            }
            do {
                try connection.execute("BEGIN IMMEDIATE")
            } catch {
                for work in batch { work.complete(committed: error) }
                continue
            }
            if batch.count == 1, let work = batch.first {
                // A batch of one needs no savepoint: its transaction is the unit.
                if await work.run(session) {
                    commit(batch)
                } else {
                    // Answered after the batches before it are durable too: what it failed on
                    // may have been read from them.
                    try? connection.execute("ROLLBACK")
                    syncer.committed(syncer.announce(), batch)
                }
                continue
            }
            for work in batch {
                do {
                    try connection.execute("SAVEPOINT unit")
                    if await work.run(session) {
                        try connection.execute("RELEASE unit")
                    } else {
                        try connection.execute("ROLLBACK TO unit")
                        try connection.execute("RELEASE unit")
                    }
                } catch {
                    work.fail(error)
                }
            }
            commit(batch)
        }
    }
}

/// Makes the writer's commits durable off its thread, and answers their callers after.
///
/// The writer's connection commits with `synchronous=NORMAL`: the frames are in the log file
/// (the write-gathering VFS hands them down before the commit is published) but not yet on disk.
/// This thread syncs the log file (`fdatasync`, as SQLite itself would at such a commit) and then
/// answers every batch committed before the sync began — one sync for all the batches committed
/// while the one before was under way. The log is one file written in order, so a sync takes
/// every commit before it; a crash before it loses only batches nobody was answered for.
///
/// Other connections see a commit at once; the read connection holds back what it read until
/// the batches it could have seen are durable (``afterDurable(_:)``), so nothing read there
/// is acted on before it is on disk. A failed sync leaves the log's state unknown: the batches
/// waiting are answered with the error, and the writer writes nothing more.
final class WALSyncer: @unchecked Sendable {  // state behind the condition's lock
    private let condition = NSCondition()
    private let logger: Logger
    /// Makes the log durable; nil, or the error it failed with. Called on the syncer's thread only.
    private let sync: @Sendable () -> (any Error)?
    private let file: SyncedFile?
    /// Batches whose commit has begun (a reader may see any of them), and committed batches.
    private var announced: UInt64 = 0
    private var written: UInt64 = 0
    private var durable: UInt64 = 0
    private var waiting: [(sequence: UInt64, batch: [Work])] = []
    private var readers: [(sequence: UInt64, resume: @Sendable () -> Void)] = []
    private var failed: (any Error)?
    private var stopped = false
    private var done = false
    /// A sync that takes this long is logged as a warning: every sale of the batches it carries
    /// waited for it. A disk's flush can stall for hundreds of milliseconds (a virtual disk a few
    /// times every ten seconds, docs/benchmarks.md), and then this is where a latency spike is.
    let slowSync: Duration
    /// Each sync's duration.
    static let syncTimer = Timer(label: "cloudtap_sqlite_log_sync_seconds")

    /// `path`: the log file, `…-wal` (a connection in WAL mode keeps it while open).
    convenience init(path: String, logger: Logger) {
        let file = SyncedFile(path: path)
        self.init(logger: logger, file: file) { file.sync() }
    }

    /// With `sync` doing what syncing the log does (tests stand in for the disk with it).
    init(logger: Logger, file: SyncedFile? = nil, slowSync: Duration = .milliseconds(100), sync: @escaping @Sendable () -> (any Error)?) {
        self.logger = logger
        self.file = file
        self.slowSync = slowSync
        self.sync = sync
        let thread = Thread {
            OwnThread.name("cloudtap-wal-sync")
            self.loop()
        }
        thread.start()
    }

    /// The error a sync failed with, if one did.
    var failure: (any Error)? { condition.withLock { failed } }

    /// A batch's commit is about to begin: its number.
    func announce() -> UInt64 {
        condition.withLock {
            announced += 1
            return announced
        }
    }

    /// Batch `sequence` is committed (or rolled back: `batch` empty); its units are answered
    /// once it is durable.
    func committed(_ sequence: UInt64, _ batch: [Work]) {
        condition.withLock {
            written = sequence
            if !batch.isEmpty { waiting.append((sequence, batch)) }
            condition.signal()
        }
    }

    /// Runs `resume` once every batch a read that has just finished could have seen is durable.
    func afterDurable(_ resume: @escaping @Sendable () -> Void) {
        let now: Bool = condition.withLock {
            if durable >= announced || failed != nil { return true }
            readers.append((announced, resume))
            return false
        }
        if now { resume() }
    }

    /// Syncs what is committed, answers it, until stopped with nothing left to sync.
    private func loop() {
        while true {
            condition.lock()
            while durable == written && !stopped { condition.wait() }
            if durable == written {
                done = true
                condition.broadcast()
                condition.unlock()
                break
            }
            let target = written
            let batches = waiting.count
            condition.unlock()
            let started = ContinuousClock.now
            let error = sync()
            let took = ContinuousClock.now - started
            Self.syncTimer.record(duration: took)
            if took >= slowSync {
                logger.warning("the disk took \(took.formatted(.units(allowed: [.milliseconds]))) to sync the SQLite log; the sales of the batches it carried waited for it",
                               metadata: ["batches": "\(batches)"])
            }
            condition.lock()
            if let error, failed == nil {
                failed = error
                logger.critical("the SQLite log could not be synced; nothing more is written to the database", metadata: ["error": "\(error)"])
            }
            durable = target
            let answered = waiting.prefix { $0.sequence <= target }
            waiting.removeFirst(answered.count)
            let ready = readers.filter { $0.sequence <= target || failed != nil }
            readers.removeAll { $0.sequence <= target || failed != nil }
            let failure = failed
            condition.unlock()
            for (_, batch) in answered { for work in batch { work.complete(committed: failure) } }
            for reader in ready { reader.resume() }
        }
        file?.close()
    }

    /// Waits until everything committed is durable and answered, then ends the thread.
    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        while !done { condition.wait() }
        condition.unlock()
    }
}

/// The read connection: one query at a time on its own serial queue, seeing what is committed.
final class SQLiteReader: @unchecked Sendable {
    private let connection: SQLiteHandle
    private let queue = DispatchQueue(label: "cloudtap-sqlite-read")
    private let syncer: WALSyncer

    init(path: String, syncer: WALSyncer) throws {
        self.syncer = syncer
        connection = try SQLiteHandle(path: path)
        try connection.execute("PRAGMA busy_timeout=10000")
        try connection.execute("PRAGMA query_only=ON")
    }

    /// Plain SELECTs (not PRAGMAs, not writes with RETURNING).
    static func isRead(_ sql: String) -> Bool {
        let head = sql.utf8.prefix(7)
        return head.count == 7 && String(decoding: head, as: UTF8.self).uppercased() == "SELECT "
    }

    func execute(_ sql: String, slot: Int? = nil, binds: [SQLiteValue], _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            queue.async {
                do {
                    try self.connection.execute(sql, slot: slot, binds: binds) { columns, row in onRow(SQLiteResultRow(columns: columns, values: row)) }
                    // What was read may be committed but not yet on disk: held back until it is.
                    self.syncer.afterDurable { continuation.resume() }
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    func close() { queue.sync { connection.close() } }
}

/// Set by the background checkpointer when it has copied the WAL's frames; taken by the
/// writer, which then checkpoints the rest itself.
final class CheckpointSignal: @unchecked Sendable {  // state behind the lock
    private let lock = NSLock()
    private var set = false
    func raise() { lock.withLock { set = true } }
    /// Whether it was raised since the last take.
    func take() -> Bool { lock.withLock { defer { set = false }; return set } }
}

/// A thread with its own connection that checkpoints the WAL five times a second (passive
/// mode: it copies what no reader needs and never waits for, or blocks, the writer) and syncs
/// the database file after each; once a second it then signals the writer to copy what came
/// meanwhile, so that the WAL starts over.
///
/// Every sync of the log waits for whatever the disk is flushing, so the database file's pages
/// are flushed a fifth of a second's at a time, off the writer's thread. Checkpointed once a
/// second and synced by the writer's own checkpoint (SQLite syncs the database file only after
/// a checkpoint that copied the whole WAL), a second's pages were flushed at once while no
/// batch ran: every second, every sale in flight waited 15–30 ms — about 1 % of the sales at
/// half load, the p99 itself (docs/benchmarks.md).
final class Checkpointer: @unchecked Sendable {
    /// Time between two checkpoints.
    static let interval = 0.2
    /// Checkpoints between two of the writer's.
    static let perWriterCheckpoint = 5

    private let connection: SQLiteHandle
    private let condition = NSCondition()
    private var stopped = false
    private var done = false

    init(path: String, logger: Logger, signal: CheckpointSignal? = nil) throws {
        connection = try SQLiteHandle(path: path)
        try connection.execute("PRAGMA busy_timeout=0")
        // Its checkpoints sync the log before copying it and the database file after.
        try connection.execute("PRAGMA synchronous=FULL")
        let database = SyncedFile(path: path)
        let thread = Thread {
            OwnThread.name("cloudtap-checkpt")
            var round = 0, synced: Int64 = 0
            while true {
                self.condition.lock()
                if !self.stopped { _ = self.condition.wait(until: Date().addingTimeInterval(Self.interval)) }
                let stop = self.stopped
                self.condition.unlock()
                if stop { break }
                do {
                    // The pages it copied, flushed here (SQLite would not: the writer writes on);
                    // nothing to flush when the WAL has not moved since the last time (an idle
                    // database is not synced five times a second).
                    let log = try self.catchUp()
                    if log != synced {
                        if let error = database.sync() { logger.warning("the database file could not be synced after a checkpoint", metadata: ["error": "\(error)"]) }
                        synced = log
                    }
                    round += 1
                    if round % Self.perWriterCheckpoint == 0 { signal?.raise() }
                } catch {
                    logger.debug("background checkpoint skipped", metadata: ["error": "\(error)"])
                }
            }
            database.close()
            self.connection.close()
            self.condition.lock()
            self.done = true
            self.condition.broadcast()
            self.condition.unlock()
        }
        thread.start()
    }

    /// Frames a pass may leave for the writer's own checkpoint, which it copies between two
    /// batches while they wait: a few milliseconds of writes.
    static let leftForWriter: Int64 = 256

    /// Passive checkpoints, each copying what came during the one before, until one finds at
    /// most ``leftForWriter`` new frames (four at most): a pass takes milliseconds, more after
    /// a pause, and what came meanwhile would otherwise be the writer's to copy. The frames in
    /// the WAL when the last pass began.
    private func catchUp() throws -> Int64 {
        var before: Int64?, log: Int64 = -1
        for _ in 0..<4 {
            // Its row: whether it was blocked, the frames in the WAL when it began, the frames copied.
            try connection.execute("PRAGMA wal_checkpoint(PASSIVE)") { _, row in
                if row.count == 3, case .integer(let frames) = row[1] { log = frames }
            }
            if let before, log - before <= Self.leftForWriter { return log }
            before = log
        }
        return log
    }

    /// Stops the thread and waits for it to close its connection.
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        while !done { condition.wait() }
        condition.unlock()
    }
}

// MARK: Units of work

/// A queued unit: runs on the writer, answered when its batch is committed.
class Work: @unchecked Sendable {
    /// Runs the body; false when it threw (its savepoint is rolled back).
    func run(_ session: SQLiteSession) async -> Bool { fatalError("subclass") }
    /// A failure of the unit itself (its savepoint could not be opened or closed).
    func fail(_ error: any Error) { fatalError("subclass") }
    /// The batch is committed (nil) or not: resume the caller.
    func complete(committed error: (any Error)?) { fatalError("subclass") }
}

final class TypedWork<T: Sendable>: Work, @unchecked Sendable {
    let body: @Sendable (any SQLDatabase) async throws -> T
    let continuation: CheckedContinuation<T, any Error>
    private var result: Result<T, any Error>?

    init(body: @escaping @Sendable (any SQLDatabase) async throws -> T, continuation: CheckedContinuation<T, any Error>) {
        self.body = body
        self.continuation = continuation
    }

    override func run(_ session: SQLiteSession) async -> Bool {
        do {
            result = .success(try await body(session))
            return true
        } catch {
            result = .failure(error)
            return false
        }
    }

    override func fail(_ error: any Error) { result = .failure(error) }

    override func complete(committed error: (any Error)?) {
        switch (result, error) {
        case (.failure(let own)?, _): continuation.resume(throwing: own)
        case (_, let commit?): continuation.resume(throwing: commit)
        case (.success(let value)?, nil): continuation.resume(returning: value)
        case (nil, nil): continuation.resume(throwing: StorageError("the unit did not run"))
        }
    }
}

/// A file synced through a descriptor of its own, opened at the first sync: the log by the
/// syncer (the file exists once a connection has opened the database in WAL mode), the
/// database file by the checkpointer. Used by one thread.
final class SyncedFile: @unchecked Sendable {
    let path: String
    private var descriptor: Int32 = -1

    init(path: String) { self.path = path }

    func sync() -> (any Error)? {
        if descriptor < 0 {
            descriptor = open(path, O_RDWR | O_CLOEXEC)
            if descriptor < 0 { return StorageError("cannot open \(path) to sync it: \(String(cString: strerror(errno)))") }
        }
        return fdatasync(descriptor) == 0 ? nil : StorageError("fdatasync of \(path) failed: \(String(cString: strerror(errno)))")
    }

    func close() {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
        descriptor = -1
    }
}

/// Units waiting for the writer.
final class WorkQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Work] = []
    private var waiter: CheckedContinuation<Void, Never>?
    private var closed = false

    var count: Int { lock.withLock { items.count } }

    /// False when the queue is closed.
    func push(_ work: Work) -> Bool {
        let (accepted, wake): (Bool, CheckedContinuation<Void, Never>?) = lock.withLock {
            guard !closed else { return (false, nil) }
            items.append(work)
            defer { waiter = nil }
            return (true, waiter)
        }
        wake?.resume()
        return accepted
    }

    /// Up to `maximum` queued units, waiting for one; nil once closed and drained.
    func next(maximum: Int) async -> [Work]? {
        while true {
            let taken: [Work]? = lock.withLock {
                if items.isEmpty { return closed ? [] : nil }
                let n = min(maximum, items.count)
                defer { items.removeFirst(n) }
                return Array(items.prefix(n))
            }
            if let taken { return taken.isEmpty ? nil : taken }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let ready = lock.withLock { () -> Bool in
                    if !items.isEmpty || closed { return true }
                    waiter = c
                    return false
                }
                if ready { c.resume() }
            }
        }
    }

    func close() {
        let wake: CheckedContinuation<Void, Never>? = lock.withLock {
            closed = true
            defer { waiter = nil }
            return waiter
        }
        wake?.resume()
    }
}

// MARK: SQLKit on the connection

/// What CloudTap's two SQLite faces of SQLKit share: the dialect, and the event-loop form of
/// `execute` on top of the async one.
protocol SQLiteFace: SQLDatabase {}

extension SQLiteFace {
    var eventLoop: any EventLoop { MultiThreadedEventLoopGroup.singleton.any() }
    var dialect: any SQLDialect { SQLiteDialect() }
    var queryLogLevel: Logger.Level? { .debug }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        promise.completeWithTask { try await self.execute(sql: query, onRow) }
        return promise.futureResult
    }
}

/// The connection as SQLKit sees it inside a unit: statements run at once, on the writer.
struct SQLiteSession: SQLiteFace, @unchecked Sendable {
    let connection: SQLiteHandle
    let logger: Logger

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        if let statement = query as? Statement, let rendered = statement.rendered { return try run(statement, rendered, onRow) }
        let (sql, binds) = serialize(query)
        logger.debug("\(sql)")
        try connection.execute(sql, binds: try Self.values(binds)) { columns, row in onRow(SQLiteResultRow(columns: columns, values: row)) }
    }

    /// A fixed statement as rendered for SQLite, run on the connection.
    func run(_ statement: Statement, _ rendered: RenderedStatement, _ onRow: @escaping @Sendable (any SQLRow) -> ()) throws {
        logger.debug("\(rendered.sql)")
        try connection.execute(rendered.sql, slot: rendered.slot, binds: try statement.sqliteValues()) { columns, row in
            onRow(SQLiteResultRow(columns: columns, values: row))
        }
    }

    /// SQLKit's binds as SQLite values (through SQLiteKit's encoder, as its driver would).
    static func values(_ binds: [any Encodable & Sendable]) throws -> [SQLiteValue] {
        try binds.map(value)
    }

    /// One of SQLKit's binds as a SQLite value.
    static func value(_ bind: any Encodable & Sendable) throws -> SQLiteValue {
        // The common types directly; the rest as SQLiteKit's encoder writes them.
        if let common = CommonBind(bind) {
            switch common {
            case .null: return .null
            case .text(let v): return .text(v)
            case .integer(let n, _): return .integer(n)
            case .bool(let v): return .integer(v ? 1 : 0)
            case .double(let d): return .float(d)
            case .bytes(let v): return .blob(v)
            case .data(let v): return .blob(Array(v))
            }
        }
        return switch try SQLiteDataEncoder().encode(bind) {
        case .integer(let n): .integer(Int64(n))
        case .float(let d): .float(d)
        case .text(let t): .text(t)
        case .blob(let buffer): .blob(Array(buffer.readableBytesView))
        case .null: .null
        }
    }
}

extension SQLiteSession: SQLiteWriting {
    func written(_ statement: Statement) async throws -> (changes: Int, rowID: Int64) {
        // The statement and the reading of its counts in one go on the writer's thread: nothing
        // else runs on the connection in between.
        if let rendered = statement.rendered {
            guard !rendered.isRead else { throw StorageError("not a write: \(rendered.sql.prefix(60))") }
            try run(statement, rendered) { _ in }
        } else {
            try await execute(sql: statement) { _ in }
        }
        return (connection.changes, connection.lastInsertRowID)
    }
}

/// `db.sql` on SQLite: a write is its own unit (and so waits for its batch's commit); a plain
/// SELECT goes to the read connection.
struct QueuedSQLiteDatabase: SQLiteFace, @unchecked Sendable {
    let engine: SQLiteEngine
    let logger: Logger

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        if let statement = query as? Statement, let rendered = statement.rendered {
            guard rendered.isRead else { return try await engine.unit { session in try await session.execute(sql: query, onRow) } }
            logger.debug("\(rendered.sql)")
            return try await engine.reader.execute(rendered.sql, slot: rendered.slot, binds: try statement.sqliteValues(), onRow)
        }
        let (sql, binds) = serialize(query)
        if SQLiteReader.isRead(sql) {
            logger.debug("\(sql)")
            return try await engine.reader.execute(sql, binds: try SQLiteSession.values(binds), onRow)
        }
        try await engine.unit { session in try await session.execute(sql: query, onRow) }
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        let box = try await engine.unit { session in UncheckedBox(try await closure(session)) }
        return box.value
    }
}

extension QueuedSQLiteDatabase: SQLiteWriting {
    func written(_ statement: Statement) async throws -> (changes: Int, rowID: Int64) {
        try await engine.unit { session in
            guard let session = session as? SQLiteSession else { throw StorageError("a unit without the writer's session") }
            return try await session.written(statement)
        }
    }
}

/// A result row, decoded by SQLiteKit's decoder.
struct SQLiteResultRow: SQLRow {
    let columns: [String]
    let values: [SQLiteValue]

    var allColumns: [String] { columns }
    func contains(column: String) -> Bool { columns.contains(column) }

    func value(_ column: String) throws -> SQLiteData {
        guard let i = columns.firstIndex(of: column) else { throw StorageError("no column \(column) in the row") }
        switch values[i] {
        case .integer(let n): return .integer(Int(n))
        case .float(let d): return .float(d)
        case .text(let t): return .text(t)
        case .blob(let bytes): return .blob(ByteBuffer(bytes: bytes))
        case .null: return .null
        }
    }

    func decodeNil(column: String) throws -> Bool {
        guard let i = columns.firstIndex(of: column) else { throw StorageError("no column \(column) in the row") }
        if case .null = values[i] { return true }
        return false
    }

    func decode<D: Decodable>(column: String, as type: D.Type) throws -> D {
        // The common types directly; the rest as SQLiteKit's decoder reads them.
        if let i = columns.firstIndex(of: column) {
            switch values[i] {
            case .integer(let n):
                if type == Int.self { return Int(n) as! D }
                if type == Int64.self { return n as! D }
                if type == Int?.self { return Int?.some(Int(n)) as! D }
                if type == Int64?.self { return Int64?.some(n) as! D }
            case .text(let t):
                if type == String.self { return t as! D }
                if type == String?.self { return String?.some(t) as! D }
            case .blob(let b):
                if type == Data.self { return Data(b) as! D }
                if type == Data?.self { return Data?.some(Data(b)) as! D }
            case .null:
                if type == String?.self { return String?.none as! D }
                if type == Int?.self { return Int?.none as! D }
                if type == Int64?.self { return Int64?.none as! D }
                if type == Data?.self { return Data?.none as! D }
            case .float:
                break
            }
        }
        return try SQLiteDataDecoder().decode(D.self, from: try value(column))
    }
}

/// Carries a value out of a closure whose type the compiler cannot see is Sendable.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

// MARK: The thread

/// A thread that runs the jobs of the tasks that prefer it (SE-0417 task executor).
final class SQLiteThread: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopped = false

    init(name: String) {
        // The thread holds the executor until `stop` ends its loop.
        let thread = Thread {
            OwnThread.name(name)
            self.loop()
        }
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopped { condition.wait() }
            if jobs.isEmpty && stopped {
                condition.unlock()
                return
            }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }
}

// MARK: Threads of their own

enum OwnThread {
    /// Names the calling thread as `top -H`, `perf` and /proc show it (15 bytes at most on
    /// Linux). A thread made with Foundation's `Thread` otherwise keeps its creator's name.
    static func name(_ name: String) {
        #if os(Linux)
        let fd = open("/proc/thread-self/comm", O_WRONLY)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        #endif
    }
}
