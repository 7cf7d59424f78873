import ArgumentParser
import Crypto
import Foundation
import PaymentCore
import PaymentCrypto
import Storage
import TokenService

struct BenchCloud: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cloud",
        abstract: "Token service on SQLite: enrollments/s, limited-use key issues/s, de-tokenize + cryptogram check per second with p99.",
        discussion: "Builds a token population of --tokens in a fresh SQLite file under --dir, then measures. Release build: swift build -c release.")

    @Option(help: "Tokens in the database before measuring.") var tokens = 10_000
    @Option(help: "Directory for the SQLite file.") var dir = NSTemporaryDirectory()
    @Option(help: "Cryptogram checks to time.") var checks = 5_000

    func run() throws {
        let tokens = self.tokens, dir = self.dir, checks = self.checks
        try blockingAsync { () async throws -> Void in
            let path = (dir as NSString).appendingPathComponent("cloudtap-bench-\(UUID().uuidString).sqlite")
            defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
            let db = try await Database.open(.sqlite(path: path))
            do {
                try await Self.measure(db: db, tokens: tokens, checks: checks)
            } catch {
                await db.shutdown()
                throw error
            }
            await db.shutdown()
        }
    }

    static func measure(db: Database, tokens: Int, checks: Int) async throws {
        try await db.migrate(TokenSchema.migrations)
        var rng = SystemRandomNumberGenerator()
        let hsm = try SoftwareHSM(masterKey: (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) })
        for name in ["tsp-kek", "tsp-lookup"] { _ = try hsm.generateKey(name: name, usage: .dataEncryption, algorithm: .aes, lengthBytes: 32) }
        _ = try hsm.generateKey(name: "tsp/BANK/imk", usage: .issuerMasterKeyAC, algorithm: .tdes, lengthBytes: 16)
        let tsp = TokenService(database: db, keys: hsm, vault: Vault(database: db, keys: hsm))
        try await tsp.vault.rotateDataKey()
        _ = try await tsp.registerRequestor(id: "BENCHAPP001", name: "bench")
        try await tsp.addTokenRange(bank: "BANK", low: "62345600", high: "62345699")
        try await tsp.setBankKeys(bank: "BANK", imkName: "tsp/BANK/imk")
        let device = P256.KeyAgreement.PrivateKey()

        // Enrollment as stored: vault the card, issue the token, activate it, bind the device.
        print("building \(tokens) tokens…")
        var ids: [Int64] = []
        ids.reserveCapacity(tokens)
        let start = ContinuousClock.now
        for i in 0..<tokens {
            let body = "621022" + String(format: "%012d", i)
            let pan = try PAN(body + String(Luhn.checkDigit(for: body)))
            let stored = try await tsp.storeCard(pan, expiry: "2912", bank: "BANK")
            let (token, _) = try await tsp.issueToken(vaultID: stored.vaultID, requestor: "BENCHAPP001", device: "d-\(i)")
            try await tsp.bindDevice(tokenID: token.id, publicKey: device.publicKey)
            try await tsp.change(tokenID: token.id, .activate, actor: .requestor, reason: .verified)
            ids.append(token.id)
            if (i + 1) % 10_000 == 0 { print("  \(i + 1)") }
        }
        let enrollSeconds = seconds(ContinuousClock.now - start)
        print(String(format: "enrollments (vault + token + device + activate): %.0f/s", Double(tokens) / enrollSeconds))

        // Limited-use key issues: 5 keys per request on the last 200 tokens.
        let sample = Array(ids.suffix(200))
        let keyStart = ContinuousClock.now
        var issued: [(Int64, IssuedKey)] = []
        for id in sample { issued += try await tsp.issueKeys(tokenID: id, count: 5, limits: LimitedUseKeyLimits(maxTransactions: 1000)).map { (id, $0) } }
        print(String(format: "limited-use key issues: %.0f keys/s", Double(issued.count) / seconds(ContinuousClock.now - keyStart)))

        // De-tokenize + cryptogram check.
        var prepared: [CryptogramCheck] = []
        for (n, (id, key)) in issued.enumerated() where prepared.count < checks {
            let luk = try DeviceKeyWrap.open(key.sealedKey, with: device, context: key.index.bytes)
            let number = try await tsp.tokenNumber(tokenID: id)
            for k in 0..<max(1, checks / issued.count + 1) where prepared.count < checks {
                let atc = UInt16(truncatingIfNeeded: n * 64 + k + 1)
                let elements = try BCD.pack("3850", byteCount: 6) + [UInt8](repeating: 0, count: 6) + [0x01, 0x56, 0, 0, 0, 0, 0]
                    + [0x01, 0x56, 0x26, 0x11, 0x26, 0x00, 0x12, 0x34, 0x56, 0x78, 0x7C, 0x00, UInt8(atc >> 8), UInt8(atc & 0xFF)]
                let iad = CloudIAD(dki: 1, cvr: [3, 0, 0, 0], algorithm: .tdes, keyIndex: key.index, useCount: 1)
                let data = try TransactionData(elements: elements, iad: iad.bytes)
                prepared.append(CryptogramCheck(token: number, data: data, arqc: try Cryptogram.generate(profile: .cloud, cardKey: luk, data: data)))
            }
        }
        var latencies: [Double] = []
        latencies.reserveCapacity(prepared.count)
        let checkStart = ContinuousClock.now
        for check in prepared {
            let t = ContinuousClock.now
            guard case .valid = try await tsp.validate(check) else { throw StorageError("a benchmark cryptogram was declined") }
            latencies.append(seconds(ContinuousClock.now - t) * 1e6)
        }
        let total = seconds(ContinuousClock.now - checkStart)
        latencies.sort()
        func p(_ q: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * q))] }
        print(String(format: "de-tokenize + cryptogram check at %d tokens: %.0f/s, p50 %.0f µs, p99 %.0f µs (goal p99 ≤ 1000 µs)",
                     tokens, Double(prepared.count) / total, p(0.5), p(0.99)))
    }

    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
}
