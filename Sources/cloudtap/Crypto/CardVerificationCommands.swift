import ArgumentParser
import PaymentCore
import PaymentCrypto

struct CVV: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cvv", abstract: "Visa CVV (magnetic stripe), CVV2 (service code 000) or iCVV (999).")
    @Option(help: "Card verification key CVK A‖B (hex).") var cvk: String
    @Option(help: "Card number.") var pan: String
    @Option(help: "Expiry, YYMM.") var expiry: String
    @Option(help: "Service code; overridden by --type cvv2 or icvv.") var serviceCode = "101"
    @Option(help: "cvv, cvv2 or icvv.") var type = "cvv"
    @Flag(help: "Accept a card number that fails the Luhn check.") var noLuhn = false
    @OptionGroup var output: OutputOptions

    func run() throws {
        let code: String = switch type.lowercased() {
        case "cvv2": "000"
        case "icvv": "999"
        default: serviceCode
        }
        let value = try checked("CVV") {
            try CardVerification.cvv(cvk: parseHex(cvk, option: "--cvk", lengths: [16]), pan: parsePAN(pan, luhn: !noLuhn), expiry: expiry, serviceCode: code)
        }
        var r = Report()
        r.add("service code", code)
        r.add(type.lowercased(), value)
        r.print(json: output.json)
    }
}

struct DCVV: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dcvv", abstract: "Visa dynamic CVV under the card's dCVV key (derive it with --imk, option A).")
    @Option(help: "Issuer master key for dCVV (hex).") var imk: String?
    @Option(help: "The card's dCVV key (hex).") var cardKey: String?
    @Option(help: "Card number.") var pan: String
    @Option(help: "PAN sequence number.") var psn = "00"
    @Option(help: "Expiry, YYMM.") var expiry: String
    @Option(help: "Service code.") var serviceCode = "201"
    @Option(help: "ATC, 2 bytes hex.") var atc: String
    @Flag(help: "Accept a card number that fails the Luhn check.") var noLuhn = false
    @OptionGroup var output: OutputOptions

    func run() throws {
        let p = try parsePAN(pan, luhn: !noLuhn)
        let key: [UInt8] = try checked("key") {
            if let cardKey { return try parseHex(cardKey, option: "--card-key", lengths: [16]) }
            guard let imk else { throw ValidationError("give --card-key or --imk") }
            return try EMVKeyDerivation.optionA(imk: parseHex(imk, option: "--imk", lengths: [16]), pan: p, psn: psn)
        }
        let value = try checked("dCVV") {
            try CardVerification.dcvv(cardKey: key, pan: p, expiry: expiry, serviceCode: serviceCode, atc: parseHex(atc, option: "--atc", lengths: [2]))
        }
        var r = Report()
        r.add("dcvv", value)
        r.print(json: output.json)
    }
}

struct CVC3: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cvc3", abstract: "Mastercard CVC3 from the card's CVC3 key, the track data, UN and ATC.")
    @Option(help: "The card's CVC3 key (hex); or --imk with --pan.") var cardKey: String?
    @Option(help: "Issuer master key for CVC3 (hex).") var imk: String?
    @Option(help: "Card number (with --imk).") var pan: String?
    @Option(help: "PAN sequence number.") var psn = "00"
    @Option(help: "Track data the IVCVC3 covers (hex), e.g. track 2 equivalent data.") var track: String
    @Option(help: "Unpredictable number, 4 bytes hex.") var un: String
    @Option(help: "ATC, 2 bytes hex.") var atc: String
    @Flag(help: "Accept a card number that fails the Luhn check.") var noLuhn = false
    @OptionGroup var output: OutputOptions

    func run() throws {
        let key: [UInt8] = try checked("key") {
            if let cardKey { return try parseHex(cardKey, option: "--card-key", lengths: [16]) }
            guard let imk, let pan else { throw ValidationError("give --card-key, or --imk with --pan") }
            return try EMVKeyDerivation.optionA(imk: parseHex(imk, option: "--imk", lengths: [16]), pan: parsePAN(pan, luhn: !noLuhn), psn: psn)
        }
        let value = try checked("CVC3") {
            try CardVerification.cvc3(cardKey: key, trackData: parseHex(track, option: "--track"),
                                      unpredictableNumber: parseHex(un, option: "--un", lengths: [4]), atc: parseHex(atc, option: "--atc", lengths: [2]))
        }
        var r = Report()
        r.add("cvc3", value)
        r.add("cvc3 (3 digits)", String(repeating: "0", count: max(0, 3 - value.count)) + String(value.suffix(3)))
        r.print(json: output.json)
    }
}

struct TR31Command: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tr31", abstract: "TR-31 (ANSI X9.143) version D key blocks.", subcommands: [Wrap.self, Unwrap.self])

    struct Wrap: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Wrap a key under an AES key block protection key.")
        @Option(help: "AES KBPK (hex).") var kbpk: String
        @Option(help: "The key to wrap (hex).") var key: String
        @Option(help: "Key usage, e.g. P0, E0, K0, D0.") var usage = "P0"
        @Option(help: "Algorithm code: T (TDES), A (AES), 4 (SM4).") var algorithm = "T"
        @Option(help: "Mode of use, e.g. B, E, D, X, C.") var mode = "B"
        @OptionGroup var output: OutputOptions

        func run() throws {
            guard usage.count == 2, algorithm.count == 1, mode.count == 1 else { throw ValidationError("usage is 2 characters, algorithm and mode 1") }
            let header = TR31.Header(keyUsage: usage, algorithm: algorithm.first!, modeOfUse: mode.first!)
            let block = try checked("TR-31") { try TR31.wrap(key: parseHex(key, option: "--key"), header: header, kbpk: parseHex(kbpk, option: "--kbpk", lengths: [16, 24, 32])) }
            var r = Report()
            r.add("key block", block)
            r.print(json: output.json)
        }
    }

    struct Unwrap: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a key block's MAC and show its header and the key's KCV (never the key).")
        @Option(help: "AES KBPK (hex).") var kbpk: String
        @Option(help: "The key block.") var block: String
        @OptionGroup var output: OutputOptions

        func run() throws {
            let (header, key) = try checked("TR-31") { try TR31.unwrap(block, kbpk: parseHex(kbpk, option: "--kbpk", lengths: [16, 24, 32])) }
            var r = Report()
            r.add("header", header.description)
            r.add("key length", "\(key.count * 8) bits")
            let algorithm: KeyAlgorithm = header.algorithm == "A" ? .aes : header.algorithm == "4" ? .sm4 : .tdes
            r.add("kcv", hex: try checked("KCV") { try KeyTools.kcv(key, algorithm: algorithm) })
            r.print(json: output.json)
        }
    }
}
