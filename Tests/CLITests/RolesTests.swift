import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Storage
import StorageTestSupport
import Testing

extension NetworkProcessTests {
@Suite("serve by role")
struct RolesTests {
    @Test("on PostgreSQL: api, issuer and two stateless switch processes; terminals on both switches; metrics from each; graceful stops; the books balance")
    func splitNetwork() async throws {
        guard let url = try await TestDatabases.locations("roles").compactMap({ if case .postgres(let url) = $0 { url } else { nil } }).first else {
            print("RolesTests: PostgreSQL server binaries not installed; the several-process network is not run (apt-get install postgresql)")
            return
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("roles-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let common = ["--database", url]
        // The API process starts first: it provisions banks, keys and credentials.
        let api = try ServeProcess(dataDirectory: dir, arguments: common + ["--role", "api"], name: "api")
        try await api.start()
        let issuerPort = try ServeProcess.freePort()
        let issuer = try ServeProcess(dataDirectory: dir, arguments: common + ["--role", "issuer", "--issuer-port", String(issuerPort)], name: "issuer")
        try await issuer.start()
        let switches = try (1...2).map {
            try ServeProcess(dataDirectory: dir, arguments: common + ["--role", "switch", "--issuer-address", "127.0.0.1:\(issuerPort)"], name: "switch-\($0)")
        }
        for s in switches { try await s.start() }
        let everyone = [api, issuer] + switches
        defer { for p in everyone { _ = p.stopBlocking() } }

        // The API process does not run a switch; a switch process serves no API.
        let client = ConsoleClient(base: switches[0].api)
        #expect(try await client.get("/v1/operator/banks").status == 404)
        #expect(try await ConsoleClient(base: api.api).get("/health").status == 200)

        let load = try await CLI.run(["load", "--api", api.api, "--switch", switches.map { "127.0.0.1:\($0.switchPort)" }.joined(separator: ","),
                                "--data-dir", dir, "--terminals", "4", "--duration", "3", "--rate", "120"])
        #expect(load.status == 0, "\(load.stdout)\(load.stderr)")
        #expect(load.stdout.contains("failed: 0"), "\(load.stdout)")
        #expect(load.stdout.contains("books: trial balance 0, accounts disagreeing with the ledger: 0"), "\(load.stdout)")

        // Both switches carried approvals; the issuer process decided them.
        for s in switches {
            let metrics = try await ConsoleClient(base: s.api).get("/metrics").body
            #expect(Self.sample(metrics, "cloudtap_switch_requests_total", containing: #"code="00""#) > 0, "\(metrics.prefix(2000))")
            #expect(metrics.contains("cloudtap_switch_request_duration_seconds_bucket"))
        }
        let decisions = try await ConsoleClient(base: issuer.api).get("/metrics").body
        #expect(Self.sample(decisions, "cloudtap_issuer_decisions_total", containing: #"code="00""#) > 0)

        // SIGTERM: each process stops gracefully with status 0.
        for p in everyone.reversed() { #expect(await p.stop() == 0) }
    }

    /// The sum of a metric's samples whose labels contain `containing`.
    static func sample(_ text: String, _ name: String, containing: String) -> Double {
        text.split(separator: "\n").filter { $0.hasPrefix(name + "{") && $0.contains(containing) }.compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }
}
}
