import CTestSpawn
import Foundation

/// A command a test runs: its exit status (128 + the signal's number when a signal ended it)
/// and what it wrote to its standard output and error.
public struct CommandResult: Sendable {
    public let status: Int32
    public let output: String
}

/// A command that could not be started or waited for.
public struct CommandError: Error, CustomStringConvertible {
    public let command: String
    public let errno: Int32
    public var description: String { "\(command): \(String(cString: strerror(errno)))" }
}

/// Runs a command — `argv[0]` a path — in `directory` (nil: this process's) and waits for it:
/// its standard input is /dev/null, its standard output and error are gathered, and it inherits
/// no other descriptor of this process (see CTestSpawn for why that matters next to Foundation's
/// `Process`). Blocking: call it through ``offPool(_:)`` from async code.
public func runCommand(_ argv: [String], in directory: URL? = nil) throws -> CommandResult {
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("cloudtap-cmd-\(UUID().uuidString).log").path
    defer { try? FileManager.default.removeItem(atPath: output) }
    let arguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    defer { for argument in arguments { free(argument) } }
    let status = arguments.withUnsafeBufferPointer { cloudtap_test_run($0.baseAddress, output, directory?.path) }
    guard status >= 0 else { throw CommandError(command: argv.joined(separator: " "), errno: errno) }
    let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    return CommandResult(status: status, output: text)
}
