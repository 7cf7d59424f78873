import ArgumentParser
import Foundation

/// How long the disk takes to make a small write durable: what every commit of either engine
/// waits for before its sales are answered (PostgreSQL's WAL flush, SQLite's log sync), and so
/// the floor under the network's latency tail on a given machine.
struct BenchDisk: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disk",
        abstract: "The disk's durable-write latency: 8 KiB written and fdatasync'd, over and over, as a database log does.",
        discussion: """
            Writes 8 KiB at successive offsets of a 16 MiB file written out in full first (as a \
            log segment is reused, so a sync carries no file-size change), syncs each with \
            fdatasync, pauses --pause-ms between, and prints the syncs' latency quantiles and how \
            many took longer than 10 and 50 ms. The file is removed at the end.
            """)

    @Option(help: "A directory on the disk to measure (the database's, for a meaningful figure).") var directory = "."
    @Option(help: "Seconds to measure.") var seconds = 10.0
    @Option(name: .customLong("pause-ms"), help: "Milliseconds between one sync and the next write.") var pauseMilliseconds = 1.0

    func run() throws {
        let path = (directory as NSString).appendingPathComponent("cloudtap-disk-probe-\(getpid())")
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw ValidationError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer {
            close(fd)
            unlink(path)
        }
        let segment = 16 << 20, block = 8 << 10
        var zeros = [UInt8](repeating: 0, count: 1 << 20)
        for offset in stride(from: 0, to: segment, by: zeros.count) {
            guard pwrite(fd, &zeros, zeros.count, off_t(offset)) == zeros.count else { throw ValidationError("write failed: \(String(cString: strerror(errno)))") }
        }
        guard fsync(fd) == 0 else { throw ValidationError("fsync failed: \(String(cString: strerror(errno)))") }

        var page = [UInt8](repeating: 0x5A, count: block)
        var latencies: [Double] = []
        var offset = 0
        let clock = ContinuousClock(), end = clock.now + .seconds(seconds)
        while clock.now < end {
            guard pwrite(fd, &page, block, off_t(offset)) == block else { throw ValidationError("write failed: \(String(cString: strerror(errno)))") }
            let started = clock.now
            guard fdatasync(fd) == 0 else { throw ValidationError("fdatasync failed: \(String(cString: strerror(errno)))") }
            let took = clock.now - started
            latencies.append(took.milliseconds)
            offset = (offset + block) % segment
            if pauseMilliseconds > 0 { usleep(useconds_t(pauseMilliseconds * 1000)) }
        }
        latencies.sort()
        func quantile(_ q: Double) -> Double { latencies.nearestRank(q) ?? 0 }
        print(String(format: "disk %@: %d syncs of 8 KiB in %.0f s: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms; over 10 ms: %d, over 50 ms: %d",
                     directory, latencies.count, seconds, quantile(0.5), quantile(0.9), quantile(0.99), quantile(0.999), latencies.last ?? 0,
                     latencies.filter { $0 > 10 }.count, latencies.filter { $0 > 50 }.count))
    }
}
