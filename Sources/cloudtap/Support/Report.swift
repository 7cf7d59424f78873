import Foundation
import PaymentCore
import ArgumentParser
import PaymentCrypto

/// Ordered results of a tool, printed as aligned lines or as one JSON object.
struct Report {
    private(set) var rows: [(String, String)] = []

    mutating func add(_ label: String, _ value: String) { rows.append((label, value)) }
    mutating func add(_ label: String, hex: [UInt8]) { rows.append((label, hex.hexString)) }

    func print(json: Bool) {
        if json {
            var object: [String: String] = [:]
            for (k, v) in rows { object[k] = v }
            let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            Swift.print(String(decoding: data, as: UTF8.self))
        } else {
            let width = rows.map(\.0.count).max() ?? 0
            for (k, v) in rows { Swift.print(k.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + v) }
        }
    }
}

/// Options every tool shares.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print one JSON object instead of aligned lines.")
    var json = false
}

/// A bad input or a failed operation: printed as "Error: …" without the usage text, exit code 1.
struct ToolError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Parses hex from an option, naming the option in the error.
func parseHex(_ text: String, option: String, lengths: [Int]? = nil) throws -> [UInt8] {
    let bytes: [UInt8]
    do { bytes = try [UInt8](hex: text) } catch { throw ToolError("\(option): \(error)") }
    if let lengths, !lengths.contains(bytes.count) {
        let allowed = lengths.map(String.init).joined(separator: " or ")
        throw ToolError("\(option): must be \(allowed) bytes, got \(bytes.count)")
    }
    return bytes
}

/// Parses a PAN from an option, Luhn-checked unless `luhn` is false.
func parsePAN(_ text: String, option: String = "--pan", luhn: Bool = true) throws -> PAN {
    do { return luhn ? try PAN(text) : try PAN(unchecked: text) } catch {
        throw ToolError("\(option): \(error)\(luhn ? " (use --no-luhn for test vectors that are not Luhn-valid)" : "")")
    }
}

/// Runs a throwing library call, turning its error into a clean message.
func checked<T>(_ what: String, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as ToolError { throw e } catch let e as ValidationError { throw e } catch { throw ToolError("\(what): \(error)") }
}

extension KeyAlgorithm: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.uppercased()) }
}

extension PINBlockFormat: ExpressibleByArgument {
    public init?(argument: String) {
        guard let n = Int(argument.lowercased().replacingOccurrences(of: "iso", with: "")) else { return nil }
        self.init(rawValue: n)
    }
}
