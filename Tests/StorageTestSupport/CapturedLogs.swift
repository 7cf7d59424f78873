import Foundation
import Logging

/// Collects every log line, at every level, for scanning: `level message metadata`.
public final class CapturedLogs: @unchecked Sendable {  // lines behind the lock
    private let lock = NSLock()
    private var lines: [String] = []

    public init() {}

    public func add(_ s: String) { lock.withLock { lines.append(s) } }
    public var all: [String] { lock.withLock { lines } }
    public var text: String { lock.withLock { lines.joined(separator: "\n") } }
}

/// A log handler that hands every line to a ``CapturedLogs``.
public struct CapturingLogHandler: LogHandler {
    public let sink: CapturedLogs
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .trace

    public init(sink: CapturedLogs) { self.sink = sink }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        sink.add("\(level) \(message) \(metadata ?? [:]) \(self.metadata)")
    }
}
