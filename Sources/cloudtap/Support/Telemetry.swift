import CAllocator
import Foundation
import Logging
import Metrics
import Prometheus

/// What `serve` exports: metrics in Prometheus's text format and, on request, logs as JSON
/// lines. The libraries record through swift-log and swift-metrics; only this executable
/// chooses where it goes.
enum Telemetry {
    static let registry = PrometheusCollectorRegistry()

    /// Settings for a long-running network process. glibc's malloc gives freed memory at the
    /// top of its heaps back to the kernel as soon as 128 KiB pile up there; a process that
    /// frees and reallocates a few messages' worth per request pays an madvise call (and the TLB
    /// flush it brings) for that about twice per sale. Keeping up to 64 MiB ends it. (A larger
    /// top pad, which would also end the matching mprotect calls, measured no better.)
    static func tuneAllocator() {
        _ = cloudtap_keep_freed_memory(64 << 20, 128 << 10)  // top pad: glibc's default
    }

    /// Routes every metric of the process to the registry (once per process).
    static func bootstrapMetrics() {
        var factory = PrometheusMetricsFactory(registry: registry)
        // Authorization times live between a millisecond and the issuer timeout.
        factory.defaultDurationHistogramBuckets = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10].map { Duration.seconds($0) }
        MetricsSystem.bootstrap(factory)
    }

    static func metricsText() -> [UInt8] { registry.emitToBuffer() }

    /// Logs as text (swift-log's stream handler) or as one JSON object per line.
    static func bootstrapLogging(json: Bool, level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardOutput(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

/// One JSON object per line on standard output: time (UTC, milliseconds), level, logger,
/// message, source and the metadata as strings. The libraries mask what they log; this writes
/// it as it comes.
struct JSONLogHandler: LogHandler {
    let label: String
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    private static let lock = NSLock()

    init(label: String) { self.label = label }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [String: String] = [:]
        for (k, v) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { _, new in new }) { fields[k] = "\(v)" }
        if let error = event.error { fields["error"] = "\(error)" }
        var object: [String: Any] = [
            "ts": Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true)),
            "level": event.level.rawValue, "logger": label, "msg": "\(event.message)", "source": event.source,
        ]
        if !fields.isEmpty { object["meta"] = fields }
        guard var line = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        line.append(0x0A)
        Self.lock.withLock { FileHandle.standardOutput.write(line) }
    }
}
