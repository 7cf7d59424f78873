import ArgumentParser

struct CryptoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crypto",
        abstract: "Payment cryptography by hand: keys, cryptograms, PIN blocks, verification values.",
        subcommands: [
            KCV.self, DeriveCardKey.self, SessionKey.self, ARQC.self, VerifyARQC.self, ARPC.self,
            PINBlockCommand.self, PINCommand.self, PVV.self, IBM3624.self, CVV.self, DCVV.self, CVC3.self, TR31Command.self,
        ])
}
