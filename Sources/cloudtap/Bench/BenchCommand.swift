import ArgumentParser

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks. Build with -c release for meaningful figures.", subcommands: [BenchCrypto.self, BenchISO8583.self, BenchCloud.self, BenchTap.self, BenchQR.self, BenchDisk.self])
}
