import Foundation
import PaymentCore
import QR
import TestSupport
import Testing

@Suite("QR symbols, read back by an independent decoder (zbarimg)")
struct SymbolTests {
    static var zbarimg: String? { ["/usr/bin/zbarimg", "/usr/local/bin/zbarimg"].first(where: FileManager.default.isExecutableFile) }

    /// Decodes PNG files with zbarimg, one line of output per file, in order.
    static func decode(_ files: [String]) throws -> [String] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: zbarimg!)
        p.arguments = ["--raw", "-q", "-Sdisable", "-Sqrcode.enable"] + files
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        var lines = String(decoding: data, as: UTF8.self).components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        return lines
    }

    @Test("versions, capacity and the format information of known symbols")
    func structure() throws {
        let small = try QRCode(text: "HELLO", errorCorrection: .low)
        #expect(small.version == 1 && small.size == 21)
        // 17 bytes fill version 1-L exactly (19 data codewords: 4 + 8 + 136 bits + terminator).
        #expect(try QRCode(text: String(repeating: "A", count: 17), errorCorrection: .low).version == 1)
        #expect(try QRCode(text: String(repeating: "A", count: 18), errorCorrection: .low).version == 2)
        // Version 40-L holds 2,953 bytes in byte mode.
        #expect(try QRCode(text: String(repeating: "x", count: 2953), errorCorrection: .low).version == 40)
        #expect(throws: QRCode.EncodingError.tooLong(bytes: 2954, maximum: 2953)) { try QRCode(text: String(repeating: "x", count: 2954), errorCorrection: .low) }
        // The dark module, and the finder pattern's corners.
        #expect(small.isDark(x: 8, y: small.size - 8))
        #expect(small.isDark(x: 0, y: 0) && small.isDark(x: 6, y: 6) && !small.isDark(x: 7, y: 7))
        let text = small.terminalText()
        #expect(text.split(separator: "\n").count == (21 + 4 + 1) / 2)
        #expect(small.svg().hasPrefix("<svg"))
        #expect(small.png().starts(with: [0x89, 0x50, 0x4E, 0x47]))
    }

    @Test("every symbol made for 1,000 random payloads — every level, versions 1 to 40, ASCII and UTF-8 — decodes back exactly with zbarimg")
    func roundTripThroughZbar() async throws {
        // Minutes of CPU in a debug build: on a thread of its own, not one of the few that
        // every other test's tasks share.
        guard Self.zbarimg != nil else {
            print("SymbolTests: zbarimg not installed (apt-get install zbar-tools); the round trip is not run")
            return
        }
        let (payloads, decoded, versions) = try await onOwnThread { try Self.roundTrip() }
        #expect(decoded.count == payloads.count)
        let wrong = zip(payloads, decoded).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
        #expect(wrong.isEmpty, "payloads not read back: \(wrong.prefix(10))")
        #expect(versions.count >= 35, "versions covered: \(versions.sorted())")
    }

    /// Encodes the payloads, writes the PNGs, reads them back: (payloads, what zbarimg read, versions).
    static func roundTrip() throws -> ([String], [String], Set<Int>) {
        var rng = SeededRandomNumberGenerator(seed: 2026)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qr-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,:;-_/*+=%$#@!?()[]")
        let wide = Array("云闪付支付最佳运输北京上海é€")
        var payloads: [String] = [], files: [String] = []
        var versions = Set<Int>()
        let count = Int(ProcessInfo.processInfo.environment["CLOUDTAP_QR_SAMPLES"] ?? "") ?? 1000
        for i in 0..<count {
            let level = QRCode.ErrorCorrection.allCases[i % 4]
            let utf8 = i % 3 == 0
            // Lengths spread so that every version gets symbols: up to the level's capacity.
            let maximum = [2900, 2300, 1600, 1250][level.rawValue] / (utf8 ? 3 : 1)
            let length = Int.random(in: 1...maximum, using: &rng)
            var text = ""
            for _ in 0..<length { text.append(utf8 && Int.random(in: 0..<4, using: &rng) == 0 ? wide.randomElement(using: &rng)! : alphabet.randomElement(using: &rng)!) }
            let code = try QRCode(text: text, errorCorrection: level)
            versions.insert(code.version)
            let file = dir.appendingPathComponent("\(i).png").path
            try Data(code.png(scale: code.version > 25 ? 3 : 4)).write(to: URL(fileURLWithPath: file))
            payloads.append(text)
            files.append(file)
        }
        var decoded: [String] = []
        for start in stride(from: 0, to: files.count, by: 50) {
            decoded += try Self.decode(Array(files[start..<min(start + 50, files.count)]))
        }
        return (payloads, decoded, versions)
    }
}
