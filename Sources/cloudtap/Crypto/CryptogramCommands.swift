import ArgumentParser
import EMV
import PaymentCore
import PaymentCrypto

/// The inputs every cryptogram tool takes.
struct CryptogramInputs: ParsableArguments {
    @Option(help: "Cryptogram version: 01 (UnionPay 3DES), sm4 (UnionPay SM4), 10, 18 (Visa), 16 (Mastercard), cloud, cloud-sm4.")
    var cvn: String = "01"
    @Option(help: "Issuer master key (hex): derive the card key as the issuer does.") var imk: String?
    @Option(help: "The key the card holds (hex): card master key, or the limited-use key for cloud CVNs.") var cardKey: String?
    @Option(help: "Card number (with --imk).") var pan: String?
    @Option(help: "PAN sequence number.") var psn = "00"
    @Option(help: "Cryptogram data: the 33-byte 9F02…9F36 concatenation in hex, or TLV objects carrying those tags (and 9F10).")
    var data: String
    @Option(help: "Issuer application data 9F10 (hex), unless --data carries it.") var iad: String?
    @Flag(help: "Accept a card number that fails the Luhn check.") var noLuhn = false

    func profile() throws -> CryptogramProfile {
        guard let p = CryptogramProfile.named(cvn) else { throw ValidationError("--cvn: unknown cryptogram version '\(cvn)'") }
        return p
    }

    func transactionData() throws -> TransactionData {
        let bytes = try parseHex(data, option: "--data")
        let iadBytes = try iad.map { try parseHex($0, option: "--iad") }
        if bytes.count == 33 {
            guard let iadBytes else { throw ValidationError("--iad is required with the 33-byte --data form") }
            return try checked("--data") { try TransactionData(elements: bytes, iad: iadBytes) }
        }
        let items: [TLV]
        do { items = try TLV.decodeTree(bytes) } catch { throw ToolError("--data is neither 33 bytes nor TLV: \(error)") }
        var values: [UInt32: [UInt8]] = [:]
        for (tag, _) in TransactionData.minimumSet {
            if let v = items.find(Tag(tag)) { values[tag] = v.value }
        }
        values[0x9F10] = iadBytes ?? items.find(0x9F10)?.value
        return try checked("--data") { try TransactionData(values: values) }
    }

    /// The key the card holds: given directly, or derived from the IMK.
    func heldKey(profile: CryptogramProfile, data: TransactionData, report: inout Report) throws -> [UInt8] {
        if let cardKey { return try parseHex(cardKey, option: "--card-key", lengths: [16]) }
        guard let imk, let pan else { throw ValidationError("give --card-key, or --imk with --pan") }
        let p = try parsePAN(pan, luhn: !noLuhn)
        let key = try checked("key derivation") {
            try Cryptogram.cardKey(profile: profile, imk: try parseHex(imk, option: "--imk", lengths: [16]), pan: p, psn: psn, iad: data.iad)
        }
        report.add(profile.sessionKey == .limitedUseKey ? "limited-use key kcv" : "card key kcv", hex: try KeyTools.kcv(key, algorithm: profile.algorithm))
        return key
    }
}

struct ARQC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "arqc", abstract: "Generate an application cryptogram (ARQC/TC/AAC) as the card does.")
    @OptionGroup var inputs: CryptogramInputs
    @OptionGroup var output: OutputOptions

    func run() throws {
        let profile = try inputs.profile()
        let data = try inputs.transactionData()
        var r = Report()
        r.add("profile", profile.name)
        let key = try inputs.heldKey(profile: profile, data: data, report: &r)
        let sk = try checked("session key") { try Cryptogram.sessionKey(profile: profile, cardKey: key, data: data) }
        if profile.sessionKey != .none && profile.sessionKey != .limitedUseKey {
            r.add("session key kcv", hex: try KeyTools.kcv(sk, algorithm: profile.algorithm))
        }
        r.add("mac input", hex: try Cryptogram.macInput(profile: profile, data: data))
        r.add("arqc", hex: try checked("cryptogram") { try Cryptogram.generate(profile: profile, cardKey: key, data: data) })
        r.print(json: output.json)
    }
}

struct VerifyARQC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-arqc", abstract: "Verify an ARQC as the issuer does. Exits 1 when it does not verify.")
    @OptionGroup var inputs: CryptogramInputs
    @Option(help: "The cryptogram to check (9F26), 8 bytes hex.") var arqc: String
    @OptionGroup var output: OutputOptions

    func run() throws {
        let profile = try inputs.profile()
        let data = try inputs.transactionData()
        let given = try parseHex(arqc, option: "--arqc", lengths: [8])
        var r = Report()
        r.add("profile", profile.name)
        let key = try inputs.heldKey(profile: profile, data: data, report: &r)
        let expected = try checked("cryptogram") { try Cryptogram.generate(profile: profile, cardKey: key, data: data) }
        let ok = constantTimeEqual(expected, given)
        r.add("result", ok ? "valid" : "INVALID")
        r.print(json: output.json)
        if !ok { throw ExitCode(1) }
    }
}

struct ARPC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "arpc", abstract: "Generate the ARPC (EMV Book 2 §8.2, method per CVN) and the issuer authentication data (tag 91).")
    @OptionGroup var inputs: CryptogramInputs
    @Option(help: "The ARQC (9F26), hex.") var arqc: String
    @Option(help: "Authorisation response code: 2 characters (\"00\", sent as ASCII 3030) or 4 hex digits.") var arc = "00"
    @Option(help: "Card status update for method 2, 4 bytes hex.") var csu = "00000000"
    @Option(help: "Proprietary authentication data for method 2, hex.") var proprietaryData = ""
    @OptionGroup var output: OutputOptions

    func run() throws {
        let profile = try inputs.profile()
        let data = try inputs.transactionData()
        let arqcBytes = try parseHex(arqc, option: "--arqc", lengths: [8])
        let arcBytes = arc.count == 2 ? Array(arc.utf8) : try parseHex(arc, option: "--arc", lengths: [2])
        let csuBytes = try parseHex(csu, option: "--csu", lengths: [4])
        let pad = try parseHex(proprietaryData, option: "--proprietary-data")
        var r = Report()
        r.add("profile", profile.name)
        r.add("method", profile.arpcMethod.rawValue)
        let key = try inputs.heldKey(profile: profile, data: data, report: &r)
        let arpc = try checked("ARPC") {
            try Cryptogram.arpc(profile: profile, cardKey: key, data: data, arqc: arqcBytes, arc: arcBytes, csu: csuBytes, proprietaryData: pad)
        }
        r.add("arpc", hex: arpc)
        r.add("issuer authentication data (91)", hex: Cryptogram.issuerAuthenticationData(profile: profile, arpc: arpc, arc: arcBytes, csu: csuBytes, proprietaryData: pad))
        r.print(json: output.json)
    }
}
