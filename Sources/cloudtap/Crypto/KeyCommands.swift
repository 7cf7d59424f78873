import ArgumentParser
import PaymentCore
import PaymentCrypto

struct KCV: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kcv", abstract: "Key check value (3DES/SM4: encrypt zeros; AES: CMAC of zeros).")
    @Option(help: "The key in hex.") var key: String
    @Option(help: "TDES, AES or SM4.") var algorithm: KeyAlgorithm = .tdes
    @Option(help: "Bytes of check value to show.") var length = 3
    @OptionGroup var output: OutputOptions

    func run() throws {
        let k = try parseHex(key, option: "--key")
        var r = Report()
        r.add("kcv", hex: try checked("key") { try KeyTools.kcv(k, algorithm: algorithm, length: length) })
        if algorithm == .tdes { r.add("odd parity", KeyTools.hasOddParity(k) ? "yes" : "no") }
        r.print(json: output.json)
    }
}

struct DeriveCardKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "derive-card-key", abstract: "ICC master key from an issuer master key (EMV Book 2 A1.4 option A or B).")
    @Option(help: "Issuer master key (hex).") var imk: String
    @Option(help: "Card number.") var pan: String
    @Option(help: "PAN sequence number, 2 digits.") var psn = "00"
    @Option(help: "a or b.") var option = "a"
    @Option(help: "TDES or SM4.") var algorithm: KeyAlgorithm = .tdes
    @Flag(help: "Show the 3DES key before odd-parity adjustment (as PBOC printouts do).") var noParity = false
    @Flag(help: "Accept a card number that fails the Luhn check.") var noLuhn = false
    @OptionGroup var output: OutputOptions

    func run() throws {
        let imkBytes = try parseHex(imk, option: "--imk", lengths: [16])
        let p = try parsePAN(pan, luhn: !noLuhn)
        let key: [UInt8] = try checked("derivation") {
            switch option.lowercased() {
            case "a": return try EMVKeyDerivation.optionA(imk: imkBytes, pan: p, psn: psn, algorithm: algorithm, oddParity: !noParity)
            case "b": return try EMVKeyDerivation.optionB(imk: imkBytes, pan: p, psn: psn, algorithm: algorithm)
            default: throw ValidationError("--option must be a or b")
            }
        }
        var r = Report()
        r.add("card key", hex: key)
        r.add("kcv", hex: try KeyTools.kcv(key, algorithm: algorithm))
        r.print(json: output.json)
    }
}

struct SessionKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "session-key",
        abstract: "AC session key from a card key.",
        discussion: """
            --method unionpay: ALG(MK)[000000000000‖ATC‖000000000000‖~ATC] (PBOC).
            --method emv: EMV common session key (Book 2 A1.3) with R = --r, or ATC‖000000000000.
            --method mastercard: EMV common session key with R = ATC‖0000‖UN.
            """)
    @Option(name: .customLong("mk"), help: "Card (ICC master) key, hex.") var mk: String
    @Option(help: "Application transaction counter, 2 bytes hex.") var atc: String?
    @Option(help: "Unpredictable number, 4 bytes hex (mastercard).") var un: String?
    @Option(help: "Diversification value R, hex (emv).") var r: String?
    @Option(help: "unionpay, emv or mastercard.") var method = "unionpay"
    @Option(help: "TDES or SM4.") var algorithm: KeyAlgorithm = .tdes
    @OptionGroup var output: OutputOptions

    func run() throws {
        let key = try parseHex(mk, option: "--mk", lengths: [16])
        let atcBytes = try atc.map { try parseHex($0, option: "--atc", lengths: [2]) }
        var report = Report()
        let sk: [UInt8] = try checked("session key") {
            switch method.lowercased() {
            case "unionpay", "pboc":
                guard let atcBytes else { throw ValidationError("--atc is required") }
                report.add("input", hex: [0, 0, 0, 0, 0, 0] + atcBytes + [0, 0, 0, 0, 0, 0] + atcBytes.map { ~$0 })
                return try EMVKeyDerivation.unionPaySessionKey(cardKey: key, atc: atcBytes, algorithm: algorithm)
            case "emv":
                let rBytes = try r.map { try parseHex($0, option: "--r") } ?? (atcBytes.map { $0 + [0, 0, 0, 0, 0, 0] })
                guard let rBytes else { throw ValidationError("--r or --atc is required") }
                report.add("r", hex: rBytes)
                return try EMVKeyDerivation.commonSessionKey(mk: key, r: rBytes, algorithm: algorithm)
            case "mastercard":
                guard let atcBytes, let un else { throw ValidationError("--atc and --un are required") }
                let rBytes = atcBytes + [0, 0] + (try parseHex(un, option: "--un", lengths: [4]))
                report.add("r", hex: rBytes)
                return try EMVKeyDerivation.commonSessionKey(mk: key, r: rBytes, algorithm: algorithm)
            default:
                throw ValidationError("--method must be unionpay, emv or mastercard")
            }
        }
        report.add("session key", hex: sk)
        report.add("kcv", hex: try KeyTools.kcv(sk, algorithm: algorithm))
        report.print(json: output.json)
    }
}
