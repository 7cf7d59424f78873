import ArgumentParser
import PaymentCore
import PaymentCrypto

struct PINBlockCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pinblock", abstract: "ISO 9564-1 PIN blocks, formats 0, 1, 2, 3 and 4.", subcommands: [Encode.self, Decode.self])

    struct Encode: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Encode a PIN; with --key, encipher it (3DES, or AES for format 4).")
        @Option(help: "The clear PIN.") var pin: String
        @Option(help: "Card number (formats 0, 3, 4).") var pan: String?
        @Option(help: "Format: 0, 1, 2, 3 or 4.") var format: PINBlockFormat = .iso0
        @Option(help: "PIN encryption key (hex).") var key: String?
        @Flag(help: "Accept a card number that fails the Luhn check.") var noLuhn = false
        @OptionGroup var output: OutputOptions

        func run() throws {
            let p = try pan.map { try parsePAN($0, luhn: !noLuhn) }
            let block = try checked("PIN block") { try PINBlock.encode(pin: pin, format: format, pan: p) }
            var r = Report()
            r.add("format", format.description)
            if format != .iso4 { r.add("clear block", hex: block.bytes) }
            if let key {
                let k = try parseHex(key, option: "--key", lengths: format == .iso4 ? [16, 24, 32] : [16, 24])
                r.add("enciphered block", hex: try checked("encipher") { try ISO9564.encipher(block, key: k, pan: p).bytes })
            } else if format == .iso4 {
                r.add("pin field", hex: block.bytes)
            }
            r.print(json: output.json)
        }
    }

    struct Decode: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Decode a PIN block (deciphering it first with --key).")
        @Option(help: "The PIN block (hex).") var block: String
        @Option(help: "Card number (formats 0, 3, 4).") var pan: String?
        @Option(help: "Format: 0, 1, 2, 3 or 4.") var format: PINBlockFormat = .iso0
        @Option(help: "PIN encryption key (hex), when the block is enciphered.") var key: String?
        @Flag(help: "Accept a card number that fails the Luhn check.") var noLuhn = false
        @OptionGroup var output: OutputOptions

        func run() throws {
            let p = try pan.map { try parsePAN($0, luhn: !noLuhn) }
            let bytes = try parseHex(block, option: "--block", lengths: [format.blockLength])
            let clear: PINBlock = try checked("decipher") {
                guard let key else { return PINBlock(format: format, bytes: bytes) }
                return try ISO9564.decipher(EncryptedPINBlock(format: format, bytes: bytes), key: parseHex(key, option: "--key"), pan: p)
            }
            var r = Report()
            if key != nil && format != .iso4 { r.add("clear block", hex: clear.bytes) }
            r.add("pin", try checked("PIN block") { try clear.decodePIN(pan: p) })
            r.print(json: output.json)
        }
    }
}

struct PINCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pin", abstract: "PIN block operations between keys.", subcommands: [Translate.self])

    struct Translate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Translate an enciphered PIN block from one key, format and PAN to another (terminal zone → issuer zone).")
        @Option(help: "The enciphered PIN block (hex).") var block: String
        @Option(help: "Source PIN key (hex).") var fromKey: String
        @Option(help: "Source format.") var fromFormat: PINBlockFormat = .iso0
        @Option(help: "Source PAN (e.g. the token).") var fromPan: String?
        @Option(help: "Destination PIN key (hex).") var toKey: String
        @Option(help: "Destination format.") var toFormat: PINBlockFormat = .iso0
        @Option(help: "Destination PAN (e.g. the real card number).") var toPan: String?
        @Flag(help: "Accept card numbers that fail the Luhn check.") var noLuhn = false
        @OptionGroup var output: OutputOptions

        func run() throws {
            let source = ISO9564.Zone(key: try parseHex(fromKey, option: "--from-key"), format: fromFormat,
                                      pan: try fromPan.map { try parsePAN($0, option: "--from-pan", luhn: !noLuhn) })
            let destination = ISO9564.Zone(key: try parseHex(toKey, option: "--to-key"), format: toFormat,
                                           pan: try toPan.map { try parsePAN($0, option: "--to-pan", luhn: !noLuhn) })
            let input = EncryptedPINBlock(format: fromFormat, bytes: try parseHex(block, option: "--block", lengths: [fromFormat.blockLength]))
            let out = try checked("translate") { try ISO9564.translate(input, from: source, to: destination) }
            var r = Report()
            r.add("block", hex: out.bytes)
            r.add("format", toFormat.description)
            r.print(json: output.json)
        }
    }
}

struct PVV: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pvv", abstract: "Visa PIN verification value; with --verify, check one (exit 1 on mismatch).")
    @Option(help: "PIN verification key (hex).") var pvk: String
    @Option(help: "Card number.") var pan: String
    @Option(help: "PVK index, 0–9.") var pvki = 1
    @Option(help: "The clear PIN.") var pin: String
    @Option(help: "A PVV to verify.") var verify: String?
    @Flag(help: "Accept a card number that fails the Luhn check.") var noLuhn = false
    @OptionGroup var output: OutputOptions

    func run() throws {
        let value = try checked("PVV") {
            try PINVerification.visaPVV(pvk: parseHex(pvk, option: "--pvk", lengths: [16, 24]), pan: parsePAN(pan, luhn: !noLuhn), pvki: pvki, pin: pin)
        }
        var r = Report()
        r.add("pvv", value)
        if let verify { r.add("result", verify == value ? "valid" : "INVALID") }
        r.print(json: output.json)
        if let verify, verify != value { throw ExitCode(1) }
    }
}

struct IBM3624: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ibm3624", abstract: "IBM 3624 PIN offset; with --verify, check one (exit 1 on mismatch).")
    @Option(help: "PIN verification key (hex).") var pvk: String
    @Option(help: "Card number.") var pan: String
    @Option(help: "The clear PIN.") var pin: String
    @Option(help: "Decimalization table, 16 digits.") var decimalizationTable = "0123456789012345"
    @Option(help: "Validation data (16 hex digits); default: the first 16 PAN digits, F-filled.") var validationData: String?
    @Option(help: "An offset to verify.") var verify: String?
    @Flag(help: "Accept a card number that fails the Luhn check.") var noLuhn = false
    @OptionGroup var output: OutputOptions

    func run() throws {
        let p = try parsePAN(pan, luhn: !noLuhn)
        let vd = try validationData.map { try parseHex($0, option: "--validation-data", lengths: [8]) } ?? checked("validation data") { try PINVerification.validationData(pan: p) }
        let offset = try checked("offset") {
            try PINVerification.ibm3624Offset(pvk: parseHex(pvk, option: "--pvk", lengths: [16, 24]), validationData: vd, decimalizationTable: decimalizationTable, pin: pin)
        }
        var r = Report()
        r.add("validation data", hex: vd)
        r.add("offset", offset)
        if let verify { r.add("result", verify == offset ? "valid" : "INVALID") }
        r.print(json: output.json)
        if let verify, verify != offset { throw ExitCode(1) }
    }
}
