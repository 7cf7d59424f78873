import ArgumentParser
import Foundation
import ISO8583
import ISO8583Link
import PaymentCore

struct ISO8583Command: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "iso8583", abstract: "ISO 8583 messages in the network, terminal and iso87ascii dialects.",
        subcommands: [Decode.self, Encode.self, Send.self, Dialects.self])

    /// Prints a message masked (or revealed), as text or JSON.
    static func show(_ message: Message, spec: MessageSpec, reveal: Bool, json: Bool) throws {
        if json {
            let data = try JSONSerialization.data(withJSONObject: message.jsonObject(spec: spec, reveal: reveal), options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(message.describe(spec: spec, reveal: reveal))
        }
    }

    /// Reads a message from a JSON file, or standard input for "-".
    static func readMessage(_ input: String, spec: MessageSpec) throws -> Message {
        let data = input == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: input))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw ToolError("the JSON is not an object") }
        return try checked("JSON") { try Message(jsonObject: object, spec: spec) }
    }

    struct DialectOption: ParsableArguments {
        @Option(help: "network, terminal or iso87ascii — or a path to a JSON spec.")
        var dialect = "iso87ascii"

        func spec() throws -> MessageSpec {
            if dialect.hasSuffix(".json") {
                return try checked("spec") { try MessageSpec.load(from: URL(fileURLWithPath: dialect)) }
            }
            return try checked("dialect") { try MessageSpec.dialect(dialect) }
        }
    }

    struct Decode: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decode a message (hex, or a file of raw bytes) and print its fields.",
            discussion: "Card data (DE2, DE35, DE45, DE52, DE55 card tags) is masked unless --reveal is given, for test data only.")
        @Argument(help: "The message as hex, or the path of a file holding its raw bytes.") var input: String
        @OptionGroup var dialect: DialectOption
        @Flag(help: "Show card data in full.") var reveal = false
        @Flag(help: "The input starts with a 2-byte binary length (and, for the terminal dialect, that is followed by the TPDU).")
        var framed = false
        @OptionGroup var output: OutputOptions

        func run() throws {
            let spec = try dialect.spec()
            var bytes: [UInt8]
            if FileManager.default.fileExists(atPath: input) {
                bytes = Array(try Data(contentsOf: URL(fileURLWithPath: input)))
            } else {
                bytes = try parseHex(input, option: "input")
            }
            if framed {
                guard bytes.count >= 2 else { throw ToolError("framed input is shorter than its 2-byte length") }
                let length = Int(bytes[0]) << 8 | Int(bytes[1])
                guard length == bytes.count - 2 else { throw ToolError("frame length \(length) but \(bytes.count - 2) bytes follow") }
                bytes.removeFirst(2)
            }
            let message = try checked("unpack") { try spec.unpack(bytes) }
            try ISO8583Command.show(message, spec: spec, reveal: reveal, json: output.json)
        }
    }

    struct Encode: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encode a message from JSON (as `decode --json --reveal` prints it) into hex.",
            discussion: "Reads the JSON from the file given, or from standard input with '-'.")
        @Argument(help: "A JSON file, or - for standard input.") var input: String = "-"
        @OptionGroup var dialect: DialectOption
        @Flag(help: "Prefix the 2-byte binary length (the terminal link's framing).") var framed = false
        @Option(help: "Write raw bytes to this file instead of printing hex.") var out: String?

        func run() throws {
            let spec = try dialect.spec()
            let message = try ISO8583Command.readMessage(input, spec: spec)
            var bytes = try checked("pack") { try spec.pack(message) }
            if framed { bytes = [UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF)] + bytes }
            if let out {
                try Data(bytes).write(to: URL(fileURLWithPath: out))
            } else {
                print(bytes.hexString)
            }
        }
    }

    struct Send: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send one message (JSON, as `decode --json --reveal` prints it) over a link and print the answer.",
            discussion: "The link signs on first unless --no-sign-on. Card data in the answer is masked unless --reveal.")
        @Argument(help: "A JSON file, or - for standard input.") var input: String = "-"
        @OptionGroup var dialect: DialectOption
        @Option(help: "Host to connect to.") var host = "127.0.0.1"
        @Option(help: "Port.") var port: Int
        @Option(help: "binaryLength2, asciiLength4 or networkHeader; default by dialect.") var framing: String?
        @Option(help: "Seconds to wait for the answer.") var timeout = 10.0
        @Flag(help: "Do not sign on (0800/001) before sending.") var noSignOn = false
        @Flag(help: "Show card data in full.") var reveal = false
        @OptionGroup var output: OutputOptions

        func run() throws {
            let spec = try dialect.spec()
            let message = try ISO8583Command.readMessage(input, spec: spec)
            _ = try checked("pack") { try spec.pack(message) }
            let framingValue: Framing
            if let framing {
                guard let f = Framing(rawValue: framing) else { throw ToolError("--framing: unknown framing '\(framing)'") }
                framingValue = f
            } else {
                framingValue = spec.name == "network" ? .networkHeader : spec.name == "terminal" ? .binaryLength2 : .asciiLength4
            }
            let style: NetworkManagement.Style = spec.name == "terminal" ? .terminal : .network
            let tid = message[41]
            var configuration = ClientLinkStateMachine.Configuration(
                signOnMessage: { NetworkManagement(code: .signOn, stan: $0, terminalID: tid).message(style: style) },
                echoMessage: { NetworkManagement(code: .echo, stan: $0, terminalID: tid).message(style: style) })
            configuration.signOn = !noSignOn
            configuration.requestTimeoutNanos = UInt64(timeout * 1e9)
            configuration.initialBackoffNanos = 200_000_000
            let endpoint = LinkEndpoint(host: host, port: port, spec: spec, framing: framingValue)
            let linkConfiguration = configuration
            let response = try blockingAsync { () async throws -> Message in
                let client = try ISO8583Client(endpoint: endpoint, configuration: linkConfiguration)
                client.start()
                do {
                    let answer = try await client.send(message)
                    await client.shutdown()
                    return answer
                } catch {
                    await client.shutdown()
                    throw ToolError("no answer: \(error)")
                }
            }
            try ISO8583Command.show(response, spec: spec, reveal: reveal, json: output.json)
        }
    }

    struct Dialects: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the shipped dialects and their fields.")
        @Argument(help: "A dialect to list field by field.") var name: String?

        func run() throws {
            guard let name else {
                for n in ["network", "terminal", "iso87ascii"] {
                    let s = try MessageSpec.dialect(n)
                    print("\(n.padding(toLength: 11, withPad: " ", startingAt: 0))  \(s.description)")
                }
                return
            }
            let s = try checked("dialect") { try MessageSpec.dialect(name) }
            print(s.description)
            if let h = s.header { print("header: \(h.length) bytes: " + h.fields.map { "\($0.name)(\($0.length))" }.joined(separator: " ")) }
            print("MTI \(s.mtiEncoding.rawValue), bitmap \(s.bitmapEncoding.rawValue)")
            for n in 2...s.maxField {
                guard let f = s[n] else { continue }
                let length = f.prefix == .fixed ? "\(f.length)" : "..\(f.length) \(f.prefix.rawValue)VAR(\(f.prefixEncoding.rawValue))"
                print("DE\(String(n).padding(toLength: 4, withPad: " ", startingAt: 0)) \(f.type.rawValue)\(length) \(f.encoding.rawValue)  \(f.description)")
            }
        }
    }
}
