import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import SQLKit
import Storage
import StorageTestSupport
import Switch
import TestSupport
import Testing

/// A `cloudtap serve` child process on fixed loopback ports, so terminals reconnect to the same
/// address after it is killed and started again.
final class ServeProcess: @unchecked Sendable {
    let dataDirectory: String
    let httpPort: Int
    let switchPort: Int
    let arguments: [String]
    private(set) var process: Process?
    private let log: FileHandle

    /// `arguments` are added to serve's (a role, a database, more ports); `name` names its log.
    init(dataDirectory: String, arguments: [String] = [], name: String = "serve") throws {
        self.dataDirectory = dataDirectory
        self.arguments = arguments
        (httpPort, switchPort) = (try Self.freePort(), try Self.freePort())
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let logPath = (dataDirectory as NSString).appendingPathComponent("\(name).log")
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
    }

    var api: String { "http://127.0.0.1:\(httpPort)" }

    /// Starts serve and waits until its API answers /health.
    func start() async throws {
        let p = Process()
        p.executableURL = CLI.binary
        p.arguments = ["serve", "--data-dir", dataDirectory, "--http-port", String(httpPort), "--switch-port", String(switchPort), "--log-level", "warning"] + arguments
        p.standardOutput = log
        p.standardError = log
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if p.isRunning == false { throw ServeError("serve exited with status \(p.terminationStatus); see \(dataDirectory)/serve.log") }
            if let (_, response) = try? await URLSession.shared.data(from: URL(string: api + "/health")!), (response as? HTTPURLResponse)?.statusCode == 200 {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ServeError("serve did not answer /health within 60 s")
    }

    /// SIGKILL: no shutdown, no flushing — whatever the database had committed is all there is.
    func kill() async {
        guard let p = process else { return }
        Foundation.kill(p.processIdentifier, SIGKILL)
        await p.exited()
    }

    /// SIGTERM: the graceful shutdown; returns the exit status.
    func stop() async -> Int32 {
        (try? await offPool { self.stopBlocking() }) ?? -1
    }

    /// As ``stop()``, blocking: for a `defer`, where nothing can be awaited.
    func stopBlocking() -> Int32 {
        guard let p = process, p.isRunning else { return process?.terminationStatus ?? 0 }
        p.terminate()
        p.waitUntilExit()
        return p.terminationStatus
    }

    var operatorKey: String {
        get throws {
            let data = try Data(contentsOf: URL(fileURLWithPath: (dataDirectory as NSString).appendingPathComponent("credentials.json")))
            return (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["operatorKey"] as? String ?? ""
        }
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw ServeError("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

struct ServeError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The tests that run whole networks as processes (serve, load, Chromium): one at a time, as
/// each loads the machine on its own.
@Suite("networks in processes", .serialized)
struct NetworkProcessTests {}

extension NetworkProcessTests {
@Suite("crash safety")
struct CrashSafetyTests {
    struct Approval: Decodable { let terminal: String; let stan: String; let time: String; let code: String; let amount: Int64 }

    @Test("serve killed (SIGKILL) three times during a load run: every approval a POS saw is booked exactly once, nothing else is, the books balance",
          arguments: ["sqlite", "postgres"])
    func killDuringLoad(engine: String) async throws {
        // On PostgreSQL more terminals at a higher rate, so that sales go to the database in
        // batches (docs/switch.md) when serve is killed.
        var database: DatabaseLocation?
        if engine == "postgres" {
            database = try await TestDatabases.locations("crash").first { if case .postgres = $0 { true } else { false } }
            guard database != nil else {
                print("CrashSafetyTests: PostgreSQL server binaries not installed; the PostgreSQL run is skipped (apt-get install postgresql)")
                return
            }
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("crash-\(UUID().uuidString.prefix(8))").path
        let url: String? = if case .postgres(let url)? = database { url } else { nil }
        let serve = try ServeProcess(dataDirectory: (dir as NSString).appendingPathComponent("network"), arguments: url.map { ["--database", $0] } ?? [])
        try await serve.start()
        let journal = (dir as NSString).appendingPathComponent("approvals.jsonl")
        let load = Process()
        load.executableURL = CLI.binary
        load.arguments = ["load", "--api", serve.api, "--switch", "127.0.0.1:\(serve.switchPort)", "--data-dir", serve.dataDirectory,
                          "--terminals", url == nil ? "4" : "12", "--duration", "16", "--rate", url == nil ? "150" : "400", "--journal", journal]
        let output = Pipe()
        load.standardOutput = output
        load.standardError = output
        try load.run()
        let reader = output.fileHandleForReading
        let collected = Task { (try? await offPool { String(decoding: reader.readDataToEndOfFile(), as: UTF8.self) }) ?? "" }

        func approvalsSoFar() -> Int { ((try? String(contentsOfFile: journal, encoding: .utf8)) ?? "").split(separator: "\n").count }
        // Kill only once sales are flowing, then after each restart once they flow again.
        var seen: [Int] = []
        for _ in 0..<3 {
            let before = approvalsSoFar()
            let deadline = Date().addingTimeInterval(30)
            while approvalsSoFar() < before + 20, Date() < deadline, load.isRunning { try await Task.sleep(for: .milliseconds(100)) }
            seen.append(approvalsSoFar())
            await serve.kill()
            try await Task.sleep(for: .milliseconds(300))
            try await serve.start()
        }
        await load.exited()
        let text = await collected.value
        #expect(load.terminationStatus == 0, "\(text)")
        #expect(!text.contains("reversals not delivered"), "\(text)")
        let approvals = try String(contentsOfFile: journal, encoding: .utf8).split(separator: "\n").map {
            try JSONDecoder().decode(Approval.self, from: Data($0.utf8))
        }
        // Sales went on after every restart.
        #expect(seen.count == 3 && zip(seen, seen.dropFirst()).allSatisfy { $0 < $1 } && approvals.count > seen.last ?? 0, "approvals at each kill: \(seen), at the end: \(approvals.count)")

        // The books over the API, then a graceful stop.
        var request = URLRequest(url: URL(string: serve.api + "/v1/operator/books")!)
        request.setValue("Bearer \(try serve.operatorKey)", forHTTPHeaderField: "Authorization")
        let (data, _) = try await URLSession.shared.data(for: request)
        let books = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        #expect(books?["trialBalance"] as? Int == 0)
        #expect((books?["mismatchedAccounts"] as? [Any])?.isEmpty == true)
        if url != nil {
            // The sales since the last start went in batches.
            let (metrics, _) = try await URLSession.shared.data(from: URL(string: serve.api + "/metrics")!)
            let batched = String(decoding: metrics, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("cloudtap_switch_batched_sales_total{way=\"batch\"}") }
            #expect((batched?.split(separator: " ").last).flatMap { Double($0) } ?? 0 > 0, "\(batched ?? "no batched sales counted")")
        }
        #expect(await serve.stop() == 0)

        // Every approval the POS saw: approved at the switch with the same code, approved once
        // at the issuer with one purchase posting pair, never reversed.
        let db = try await Database.open(database ?? .sqlite(path: (serve.dataDirectory as NSString).appendingPathComponent("cloudtap.sqlite")))
        var problems: [String] = []
        for a in approvals {
            guard let row = try await db.sql.raw("""
                SELECT state, auth_code, issuer_key FROM net_transactions WHERE request_key = \(bind: NetworkSwitch.requestKey(terminal: a.terminal, stan: a.stan, transmission: a.time))
                """).first() else { problems.append("\(a.terminal)/\(a.stan): not at the switch"); continue }
            let state = try row.decode(column: "state", as: String.self), code = try row.decode(column: "auth_code", as: String?.self)
            guard state == "approved", code == a.code, let issuerKey = try row.decode(column: "issuer_key", as: String?.self) else {
                problems.append("\(a.terminal)/\(a.stan): switch has \(state) \(code ?? "-")"); continue
            }
            let issued = try await db.sql.raw("""
                SELECT a.state, a.auth_code, (SELECT COUNT(*) FROM issuer_ledger l WHERE l.authorization_id = a.id) AS postings
                FROM issuer_authorizations a WHERE a.idempotency_key = \(bind: issuerKey)
                """).all()
            guard issued.count == 1, try issued[0].decode(column: "state", as: String.self) == "approved",
                  try issued[0].decode(column: "auth_code", as: String?.self) == a.code, try issued[0].decode(column: "postings", as: Int.self) == 2 else {
                problems.append("\(a.terminal)/\(a.stan): issuer has \(issued.count) authorizations, not one approved with one posting pair"); continue
            }
        }
        // And nothing the POS did not see stays charged: approvals at the issuer and at the
        // switch are exactly the journal's.
        let issuerApproved = try await db.sql.raw("SELECT COUNT(*) AS n FROM issuer_authorizations WHERE state = 'approved'").first()!.decode(column: "n", as: Int.self)
        let switchApproved = try await db.sql.raw("SELECT COUNT(*) AS n FROM net_transactions WHERE state = 'approved'").first()!.decode(column: "n", as: Int.self)
        let ledger = try await db.sql.raw("SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total FROM issuer_ledger").first()!.decode(column: "total", as: Int64.self)
        await db.shutdown()
        #expect(problems.isEmpty, "\(problems.prefix(10))")
        #expect(issuerApproved == approvals.count)
        #expect(switchApproved == approvals.count)
        #expect(ledger == 0)
        #expect(approvals.count > 60)
        try? FileManager.default.removeItem(atPath: dir)
    }
}
}
