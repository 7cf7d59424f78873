import Foundation
import ISO8583
import ISO8583Link
import TestSupport
import Testing

/// Runs a tool (zbarimg, chromium) and returns its status and standard output; its standard
/// error is dropped. Blocking: call it through ``offPool(_:)`` from async code.
func runTool(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = arguments
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, output)
}

extension Process {
    /// Waits for the process to end without holding a concurrency thread.
    func exited() async {
        _ = try? await offPool { self.waitUntilExit() }
    }
}

/// Runs the built `cloudtap` binary as a user would.
struct CLI {
    struct Result { let status: Int32; let stdout: String; let stderr: String }

    static var binary: URL {
        // The test runner lives in the build directory beside the executable.
        let runner = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).resolvingSymlinksInPath()
        var dir = runner.deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("cloudtap").path), dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("cloudtap")
    }

    /// As ``run(_:)``, waiting on a thread of its own: an async test must not block one of
    /// the few threads Swift concurrency runs every task on (an in-process server, or another
    /// test's database pool, would starve meanwhile).
    static func run(_ arguments: [String]) async throws -> Result {
        try await offPool { try runBlocking(arguments) }
    }

    static func runBlocking(_ arguments: [String]) throws -> Result {
        let p = Process()
        p.executableURL = binary
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}

@Suite("cloudtap tools")
struct CLITests {
    /// The published Visa CVN 18 transaction data (shared/VECTORS.md) as TLV.
    static let cvn18Data = "9F0206000000009999" + "9F0306000000000000" + "9F1A020840" + "95058000048000" + "5F2A020840"
        + "9A03991231" + "9C0101" + "9F370452BF4585" + "82021800" + "9F36020FFF" + "9F100706011203A0B800"

    @Test("arqc, verify-arqc and arpc reproduce the Visa CVN 18 vector")
    func cryptogram() async throws {
        let common = ["--cvn", "18", "--imk", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "--pan", "1234567890123456", "--no-luhn", "--data", Self.cvn18Data]
        let arqc = try await CLI.run(["crypto", "arqc"] + common + ["--json"])
        #expect(arqc.status == 0, "\(arqc.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(arqc.stdout.utf8)) as? [String: String]
        #expect(object?["arqc"] == "769577B5ABE9FE62")
        #expect(try await CLI.run(["crypto", "verify-arqc"] + common + ["--arqc", "769577B5ABE9FE62"]).status == 0)
        let bad = try await CLI.run(["crypto", "verify-arqc"] + common + ["--arqc", "769577B5ABE9FE63"])
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("INVALID"))
        let arpc = try await CLI.run(["crypto", "arpc"] + common + ["--arqc", "769577B5ABE9FE62", "--csu", "00000000"])
        #expect(arpc.stdout.contains("76503F48"))
    }

    @Test("bench disk prints the syncs' quantiles and leaves no file behind; a directory it cannot write to is an error")
    func benchDisk() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cloudtap-disk-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try await CLI.run(["bench", "disk", "--directory", directory.path, "--seconds", "0.3"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("syncs of 8 KiB") && run.stdout.contains("p99.9") && run.stdout.contains("over 50 ms"), "\(run.stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
        let missing = try await CLI.run(["bench", "disk", "--directory", directory.appendingPathComponent("absent").path, "--seconds", "0.1"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("cannot create"), "\(missing.stderr)")
    }

    @Test("the UnionPay session key and PIN block vectors")
    func keysAndPINs() async throws {
        let sk = try await CLI.run(["crypto", "session-key", "--mk", "B8A15DA5F7043C317D9FD8F8DFE2BD75", "--atc", "03D3"])
        #expect(sk.stdout.contains("4A43440B2D932ACDC4E2776ED562EE43"))
        let pb = try await CLI.run(["crypto", "pinblock", "encode", "--pin", "1234", "--pan", "4012345678909"])
        #expect(pb.stdout.contains("041274EDCBA9876F"))
        let cvv = try await CLI.run(["crypto", "cvv", "--cvk", "0123456789ABCDEFFEDCBA9876543210", "--pan", "1234567890123456", "--no-luhn", "--expiry", "9912", "--service-code", "220"])
        #expect(cvv.stdout.contains("170"))
    }

    @Test("bad input gets a clear error naming the option, and exit status 1")
    func badInput() async throws {
        let hex = try await CLI.run(["crypto", "kcv", "--key", "01X3"])
        #expect(hex.status == 1)
        #expect(hex.stderr.contains("--key: 'X' at offset 2 is not a hex digit"))
        let luhn = try await CLI.run(["crypto", "derive-card-key", "--imk", "0123456789ABCDEFFEDCBA9876543210", "--pan", "6210220110002707355"])
        #expect(luhn.status == 1)
        #expect(luhn.stderr.contains("fails the Luhn check"))
        let length = try await CLI.run(["crypto", "derive-card-key", "--imk", "0123", "--pan", "6210220110002707354"])
        #expect(length.stderr.contains("--imk: must be 16 bytes, got 2"))
        let tlv = try await CLI.run(["tlv", "decode", "9F2608AABB"])
        #expect(tlv.status == 1)
        #expect(tlv.stderr.contains("tag 9F26 at offset 2"))
    }

    @Test("tlv decode names tags and masks the card number")
    func tlv() async throws {
        let r = try await CLI.run(["tlv", "decode", "700A5A086234567890123456"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("5A Application Primary Account Number (PAN)"))
        #expect(r.stdout.contains("623456******3456"))
        #expect(!r.stdout.contains("6234567890123456"))
    }

    @Test("iso8583 encode, decode and send")
    func iso8583() async throws {
        let json = #"{"mti":"0200","fields":{"2":"6234567890123456780","3":"000000","4":"000000003850","11":"000321","41":"TERM0001","42":"MERCHANT0000001","49":"156"}}"#
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("cloudtap-cli-\(UUID().uuidString).json")
        try Data(json.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let encoded = try await CLI.run(["iso8583", "encode", file.path, "--dialect", "terminal"])
        #expect(encoded.status == 0, "\(encoded.stderr)")
        let hex = encoded.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let decoded = try await CLI.run(["iso8583", "decode", hex, "--dialect", "terminal"])
        #expect(decoded.stdout.contains("DE  2 Primary account number: 623456*********6780"))
        #expect(!decoded.stdout.contains("6234567890123456780"))
        let bad = try await CLI.run(["iso8583", "decode", String(hex.dropLast(4)), "--dialect", "terminal"])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("DE49"))

        let server = ISO8583Server(endpoint: LinkEndpoint(host: "127.0.0.1", port: 0, spec: .terminal, framing: .binaryLength2)) { request in
            var r = Message(mti: MessageType.responseMTI(for: request.mti)!)
            for n in [2, 3, 4, 11, 41, 42, 49, 60] { r.set(n, bytes: request.bytes(n)) }
            r[39] = request.mti == "0800" ? "00" : "51"
            return r
        }
        let port = try await server.start()
        let sent = try await CLI.run(["iso8583", "send", file.path, "--dialect", "terminal", "--port", String(port), "--json"])
        await server.shutdown()
        #expect(sent.status == 0, "\(sent.stderr)")
        let answer = try JSONSerialization.jsonObject(with: Data(sent.stdout.utf8)) as? [String: Any]
        #expect(answer?["mti"] as? String == "0210")
        #expect((answer?["fields"] as? [String: String])?["39"] == "51")
    }
}

@Suite("cloudtap phone and pos")
struct PhonePOSCLITests {
    @Test("a wallet directory, a card, a tap: the trace and the 0200 printed with the token masked")
    func tapInProcess() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cli-phone-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try await CLI.run(["phone", "init", "--dir", dir]).stdout.contains("device public key"))
        #expect(try await CLI.run(["phone", "add-card", "--dir", dir, "--keys", "2"]).status == 0)
        let tap = try await CLI.run(["pos", "tap", "--amount", "1288.00", "--phone", dir, "--pin", "1234"])
        #expect(tap.status == 0, "\(tap.stderr)")
        #expect(tap.stdout.contains("DE 22 Point of service entry mode: 071"))
        #expect(tap.stdout.contains("623456******0016"))
        #expect(!tap.stdout.contains("6234560000000016"))
        #expect(tap.stdout.contains("9F26 Application Cryptogram"))
        #expect(tap.stdout.contains("outcome: noAnswer"))
        let list = try await CLI.run(["phone", "list", "--dir", dir])
        #expect(list.stdout.contains("ATC 1"))
        #expect(list.stdout.contains("2 keys left"))
        #expect(list.stdout.contains("tap card-1 ATC 1 key #1 1288.00 CNY ARQC"))
        // A consumer-presented code: shown (base64 and a PNG a scanner reads back), scanned by the POS.
        let png = dir + "/code.png"
        let shown = try await CLI.run(["phone", "show-qr", "--dir", dir, "--png", png])
        #expect(shown.status == 0, "\(shown.stderr)")
        let code = String(shown.stdout.split(separator: "\n").first ?? "")
        #expect(code.hasPrefix("hQVDUFYwMW"))  // 85 05 "CPV01"
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/zbarimg") {
            let read = try await offPool { try runTool("/usr/bin/zbarimg", ["--raw", "-q", png]) }.output
            #expect(read.trimmingCharacters(in: .whitespacesAndNewlines) == code)
        }
        let scan = try await CLI.run(["pos", "scan", code, "--amount", "38.50"])
        #expect(scan.stdout.contains("DE 22 Point of service entry mode: 032"), "\(scan.stdout)")
        #expect(scan.stdout.contains("623456******0016"))
        #expect(!scan.stdout.contains("6234560000000016"))
        // No wallet: a clear error.
        let none = try await CLI.run(["phone", "list", "--dir", dir + "-missing"])
        #expect(none.status != 0)
        #expect(none.stderr.contains("phone init"))
    }
}

@Suite("cloudtap serve's key files")
struct ServeKeyFileTests {
    @Test("a master key file that is there but damaged stops serve, which leaves it as it is (a new key would orphan everything sealed under the old)")
    func damagedMasterKey() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cli-keys-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let keyPath = (dir as NSString).appendingPathComponent("master.key")
        let damaged = Data("0123456789abcdef-truncated".utf8)
        try damaged.write(to: URL(fileURLWithPath: keyPath))
        let serve = Process()
        serve.executableURL = CLI.binary
        serve.arguments = ["serve", "--data-dir", dir, "--http-port", "0", "--switch-port", "0", "--log-level", "error"]
        let output = Pipe()
        serve.standardOutput = output
        serve.standardError = output
        try serve.run()
        let deadline = Date().addingTimeInterval(20)
        while serve.isRunning, Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
        let stillRunning = serve.isRunning
        if stillRunning { serve.terminate(); serve.waitUntilExit() }
        #expect(!stillRunning, "serve started over a damaged master key")
        #expect(serve.terminationStatus != 0)
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(text.contains("master.key does not hold a 32-byte key in hex"), "\(text)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: keyPath)) == damaged)
    }
}

/// A flag one task sets and another reads.
final class Flag: @unchecked Sendable {  // state behind the lock
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

extension PhonePOSCLITests {
    @Test("pos tap keeps sending a reversal the switch has not taken: as 0401 until taken (status 0), or status 2 when it never is")
    func reversalNotForgotten() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cli-phone-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try await CLI.run(["phone", "init", "--dir", dir]).status == 0)
        #expect(try await CLI.run(["phone", "add-card", "--dir", dir, "--keys", "4"]).status == 0)
        // A switch that approves without an authorization code (the POS cannot trust it and
        // reverses) and refuses reversals (96) — or takes only their repeats.
        let takesRepeats = Flag()
        let server = ISO8583Server(endpoint: LinkEndpoint(host: "127.0.0.1", port: 0, spec: .terminal, framing: .binaryLength2)) { request in
            var r = Message(mti: MessageType.responseMTI(for: request.mti)!)
            for n in [2, 3, 4, 11, 41, 42, 49, 60] { r.set(n, bytes: request.bytes(n)) }
            switch request.mti {
            case "0401": r[39] = takesRepeats.isSet ? "00" : "96"
            case "0400": r[39] = "96"
            default: r[39] = "00"
            }
            return r
        }
        let port = try await server.start()
        let refused = try await CLI.run(["pos", "tap", "--amount", "38.50", "--phone", dir, "--port", String(port), "--reversal-wait", "1", "--quiet"])
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(refused.stdout.contains("was not delivered"))
        takesRepeats.set()
        let taken = try await CLI.run(["pos", "tap", "--amount", "38.50", "--phone", dir, "--port", String(port), "--reversal-wait", "5", "--quiet"])
        await server.shutdown()
        #expect(taken.status == 0, "\(taken.stdout) \(taken.stderr)")
        #expect(!taken.stdout.contains("was not delivered"))
    }
}

extension NetworkProcessTests {
@Suite("cloudtap demo")
struct DemoCLITests {
    @Test("the demo runs the story end to end and ends with balanced books, printing no card number")
    func demo() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cli-demo-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try await CLI.run(["demo", "--data-dir", dir])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("The books balance."))
        #expect(run.stdout.contains("outcome: approved"))
        #expect(run.stdout.contains("DE22 071"))
        #expect(run.stdout.contains("DE39 62"))
        #expect(!run.stdout.contains("6210220110002707354"))
        #expect(!run.stderr.contains("6210220110002707354"))
        // At rest: neither the card number nor the PIN in any file of the data directory.
        for file in try FileManager.default.contentsOfDirectory(atPath: dir) {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + file))
            #expect(bytes.range(of: Data("6210220110002707354".utf8)) == nil, "card number in \(file)")
            #expect(bytes.range(of: Data("135790".utf8)) == nil, "PIN in \(file)")
        }
        // The data directory's secrets are owner-only.
        let attributes = try FileManager.default.attributesOfItem(atPath: dir + "/master.key")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }
}
}
