import ArgumentParser
import Foundation
import PaymentCore
import PaymentCrypto

/// Keeps results alive so the optimizer cannot drop the measured work.
nonisolated(unsafe) var benchSink: UInt64 = 0

/// Times `body` over batches until `seconds` have passed; returns nanoseconds per call.
func measure(seconds: Double, _ body: () throws -> UInt64) rethrows -> Double {
    for _ in 0..<100 { benchSink &+= try body() }  // warm up
    var calls = 0
    let start = DispatchTime.now().uptimeNanoseconds
    var now = start
    let budget = UInt64(seconds * 1e9)
    while now - start < budget {
        for _ in 0..<256 { benchSink &+= try body() }
        calls += 256
        now = DispatchTime.now().uptimeNanoseconds
    }
    return Double(now - start) / Double(calls)
}

struct BenchCrypto: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crypto",
        abstract: "ns per DES/3DES/SM4 block, per ARQC generate and verify for each profile, per PIN block translation.",
        discussion: "Run a release build: swift run -c release cloudtap bench crypto. With openssl on the PATH the same run measures `openssl speed -evp des-ede3` as the reference.")

    @Option(help: "Seconds per measurement.") var seconds = 0.5
    @Flag(help: "Skip the openssl reference measurement.") var noReference = false

    func run() throws {
        #if DEBUG
        print("warning: debug build; use `swift run -c release cloudtap bench crypto` for real figures\n")
        #endif
        var rows: [(String, Double, String)] = []
        func row(_ name: String, _ ns: Double, _ note: String = "") {
            rows.append((name, ns, note))
            let label = name.padding(toLength: 56, withPad: " ", startingAt: 0)
            print(label + String(format: "%10.1f ns  ", ns) + note)
        }
        var rng = SystemRandomNumberGenerator()
        func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) } }

        // Block ciphers.
        let des = try Legacy.TripleDES(key: bytes(8))
        let tdes = try Legacy.TripleDES(key: bytes(16))
        var x: UInt64 = 0x0123_4567_89AB_CDEF
        row("DES block encrypt", measure(seconds: seconds) { x = des.encrypt(x); return x })
        let tdesNs = measure(seconds: seconds) { x = tdes.encrypt(x); return x }
        row("3DES (2-key) block encrypt", tdesNs)
        row("3DES (2-key) block decrypt", measure(seconds: seconds) { x = tdes.decrypt(x); return x })
        let tdesKey = bytes(16)
        row("3DES key schedule (2-key)", try measure(seconds: seconds) { UInt64(try Legacy.TripleDES(key: tdesKey).keyLength) })
        let sm4 = try SM4(key: bytes(16))
        var block = bytes(16)
        let sm4Ns = measure(seconds: seconds) { block = sm4.encrypt(block: block); return UInt64(block[0]) }
        row("SM4 block encrypt", sm4Ns)
        let aes = try AESCipher(key: bytes(16))
        row("AES-128 block encrypt (swift-crypto)", measure(seconds: seconds) { block = aes.encrypt(block: block); return UInt64(block[0]) })

        // Cryptograms.
        print("")
        let pan = try PAN("6234567890123456780")
        var goalLines: [String] = []
        var reference: Double? = nil
        var sm4Reference: Double? = nil
        if !noReference {
            reference = opensslNanosecondsPerBlock(cipher: "des-ede3", blockSize: 8)
            sm4Reference = opensslNanosecondsPerBlock(cipher: "sm4-ecb", blockSize: 16)
        }
        for profile in CryptogramProfile.all {
            let imkBytes = KeyTools.oddParity(bytes(16))
            let imk = try IssuerMasterKey(imkBytes, algorithm: profile.algorithm)
            let iad: [UInt8] = switch profile.sessionKey {
            case .limitedUseKey:
                CloudIAD(dki: 1, cvr: [3, 0xA0, 0, 0], algorithm: profile.algorithm,
                         keyIndex: LimitedUseKeyIndex(generatedAt: Date(), sequence: 1), useCount: 1).bytes
            case .emvCommonATCUN: try [UInt8](hex: "0110A00003220000000000000000000000FF")
            default: UnionPayIAD(cvr: [3, 0xA0, 0, 0], algorithm: profile.algorithm).bytes
            }
            let data = try TransactionData(elements: bytes(33), iad: iad)
            let cardKey = try Cryptogram.cardKey(profile: profile, imk: imk, pan: pan, psn: "01", iad: iad)
            let arqc = try Cryptogram.generate(profile: profile, cardKey: cardKey, data: data)
            let gen = try measure(seconds: seconds) { UInt64(try Cryptogram.generate(profile: profile, cardKey: cardKey, data: data)[0]) }
            let ver = try measure(seconds: seconds) {
                try Cryptogram.verify(profile: profile, imk: imk, pan: pan, psn: "01", data: data, arqc: arqc) ? 1 : 0
            }
            row("ARQC generate  \(profile.name)", gen)
            if profile.algorithm == .tdes {
                let macBlocks = Double(try Cryptogram.macInput(profile: profile, data: data).count / 8 + 1)
                var ops = 2.0 + (macBlocks - 1) / 3 + 1
                if profile.sessionKey != .none { ops += 2 }  // session key, or the limited-use key
                let note = String(format: "%.2f 3DES-block equivalents → %.2f× our 3DES", ops, ver / (ops * tdesNs))
                row("ARQC verify    \(profile.name)", ver, note)
                if let reference {
                    goalLines.append(String(format: "  %@: %.0f ns = %.2f× (%.2f × openssl's %.0f ns)  goal ≤ 2×: %@",
                                            profile.name as NSString, ver, ver / (ops * reference), ops, reference, (ver <= 2 * ops * reference ? "met" : "NOT met") as NSString))
                }
            } else {
                row("ARQC verify    \(profile.name)", ver)
            }
        }

        // PIN translation.
        print("")
        let tpk = bytes(16), zpk = bytes(16)
        let card = try PAN("6210220110002707354")
        let pinBlock = try ISO9564.encipher(PINBlock.encode(pin: "123456", format: .iso0, pan: pan), key: tpk, pan: pan)
        let tpkCipher = try Legacy.TripleDES(key: tpk), zpkCipher = try Legacy.TripleDES(key: zpk)
        row("PIN translate fmt 0→0 (expanded keys)", try measure(seconds: seconds) {
            UInt64(try ISO9564.translateFormat0(pinBlock.bytes, from: tpkCipher, sourcePAN: pan, to: zpkCipher, destinationPAN: card)[0])
        })
        row("PIN translate fmt 0→0 (keys as bytes)", try measure(seconds: seconds) {
            UInt64(try ISO9564.translate(pinBlock, from: .init(key: tpk, format: .iso0, pan: pan), to: .init(key: zpk, format: .iso0, pan: card)).bytes[0])
        })
        let aesZone = bytes(16)
        row("PIN translate fmt 0→4 (AES zone)", try measure(seconds: seconds) {
            UInt64(try ISO9564.translate(pinBlock, from: .init(key: tpk, format: .iso0, pan: pan), to: .init(key: aesZone, format: .iso4, pan: card)).bytes[0])
        })
        let hsm = try SoftwareHSM(masterKey: bytes(32))
        _ = try hsm.importClearKey(name: "tpk", usage: .pinEncryption, algorithm: .tdes, key: tpk)
        _ = try hsm.importClearKey(name: "zpk", usage: .pinEncryption, algorithm: .tdes, key: zpk)
        row("PIN translate fmt 0→0 (SoftwareHSM, by name)", try measure(seconds: seconds) {
            UInt64(try hsm.translatePIN(pinBlock, from: PINZone(keyName: "tpk", format: .iso0, pan: pan), to: PINZone(keyName: "zpk", format: .iso0, pan: card)).bytes[0])
        })

        if let reference {
            print("")
            print(String(format: "reference: openssl speed -evp des-ede3 (16384-byte buffers): %.1f ns per 8-byte block; ours %.1f ns", reference, tdesNs))
            if let sm4Reference {
                print(String(format: "reference: openssl speed -evp sm4-ecb (16384-byte buffers): %.1f ns per 16-byte block; ours %.1f ns", sm4Reference, sm4Ns))
            }
            print("ARQC verification against the goal (≤ 2× the 3DES block operations it needs, at OpenSSL's 3DES speed):")
            goalLines.forEach { print($0) }
        }
        if benchSink == 42 { print("") }
    }

    /// ns per block from `openssl speed -evp <cipher>` at its largest buffer size, or nil when
    /// openssl (or that cipher) is absent.
    func opensslNanosecondsPerBlock(cipher: String, blockSize: Int) -> Double? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl", "speed", "-evp", cipher, "-seconds", "1"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let line = out.split(separator: "\n").last(where: { $0.uppercased().hasPrefix(cipher.uppercased()) }),
              let last = line.split(separator: " ").last,
              let kbps = Double(last.replacingOccurrences(of: "k", with: "")) else { return nil }
        return Double(blockSize) / (kbps * 1000) * 1e9
    }
}
