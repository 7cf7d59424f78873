import ArgumentParser

@main
struct CloudTap: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cloudtap",
        abstract: "CloudTap: a cloud-based mobile payment network, and the tools to check its bytes by hand.",
        discussion: """
            Every tool prints readable output by default and a JSON object with --json.
            Hex may contain spaces. Card numbers are Luhn-checked unless --no-luhn is given.
            """,
        subcommands: [DemoCommand.self, ServeCommand.self, SettleCommand.self, TraceCommand.self, LoadCommand.self, PhoneCommand.self, POSCommand.self, TLVCommand.self, CryptoCommand.self, ISO8583Command.self, QRCommand.self, BenchCommand.self]
    )
}
