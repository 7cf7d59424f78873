import ArgumentParser
import CloudWire
import Crypto
import Foundation
import PaymentCore
import QR
import PaymentCrypto
import Terminal
import Wallet

struct PhoneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "phone", abstract: "The phone: a wallet directory with its cards and keys, served as a contactless card.",
        discussion: """
            The wallet lives in --dir: a sealed store and its key (store.key, owner-only; on a phone the platform keystore \
            holds it). The phone needs no network to pay: `serve` plugs it into vpcd's virtual reader as a card.
            """,
        subcommands: [Init.self, AddCard.self, Provision.self, Replenish.self, List.self, ShowQR.self, Scan.self, Serve.self])

    struct CloudOptions: ParsableArguments {
        @Option(help: "The token service's API, e.g. http://127.0.0.1:8080.") var api = "http://127.0.0.1:8080"
        @Option(help: "Token requestor id (the wallet's).") var requestor: String
        @Option(help: "The requestor's API key.") var apiKey: String

        func connection() throws -> HTTPCloudConnection {
            guard let url = URL(string: api) else { throw ToolError("--api: not a URL") }
            return HTTPCloudConnection(baseURL: url, requestorID: requestor, apiKey: apiKey)
        }
    }

    struct Provision: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fetch a token's profile (sealed to this phone's device key) and its first keys from the cloud.")
        @OptionGroup var wallet: WalletOptions
        @OptionGroup var cloud: CloudOptions
        @Option(help: "The token id the enrollment returned.") var tokenID: Int64
        @Option(help: "Card id on the phone.") var id = "card-1"

        func run() throws {
            let w = try wallet.open()
            let connection = try cloud.connection()
            let id = self.id, tokenID = self.tokenID
            try blockingAsync { () async throws -> Void in
                let card = try await w.provision(cardID: id, tokenID: tokenID, from: connection)
                let keys = try await w.replenishIfNeeded(cardID: id, from: connection, force: true)
                print("provisioned \(id): \((try? PAN(card.pan))?.masked ?? "?") exp \(card.expiry), \(keys) keys")
            }
        }
    }

    struct Replenish: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Online again: send the signed log and top the key pool up (only when low unless --force).")
        @OptionGroup var wallet: WalletOptions
        @OptionGroup var cloud: CloudOptions
        @Option(help: "Card id on the phone.") var id = "card-1"
        @Flag(help: "Ask even if keys are not low.") var force = false

        func run() throws {
            let w = try wallet.open()
            let connection = try cloud.connection()
            let id = self.id, force = self.force
            try blockingAsync { () async throws -> Void in
                let keys = try await w.replenishIfNeeded(cardID: id, from: connection, force: force)
                print("\(keys) new keys; \(w.keysLeft(cardID: id)) usable")
            }
        }
    }

    struct WalletOptions: ParsableArguments {
        @Option(help: "The wallet directory.") var dir = "cloudtap-phone"

        func open(deviceID: String? = nil) throws -> Wallet {
            let keyFile = (dir as NSString).appendingPathComponent("store.key")
            guard let hex = try? String(contentsOfFile: keyFile, encoding: .utf8), let key = try? [UInt8](hex: hex.trimmingCharacters(in: .whitespacesAndNewlines)),
                  key.count == 32 else { throw ToolError("no wallet in \(dir): run `cloudtap phone init --dir \(dir)` first") }
            let id = deviceID ?? (try? String(contentsOfFile: (dir as NSString).appendingPathComponent("device-id"), encoding: .utf8)) ?? "phone"
            let store = try FileSecureStore(directory: URL(fileURLWithPath: dir).appendingPathComponent("store"), key: SymmetricKey(data: key))
            return try Wallet(store: store, deviceID: id.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a wallet and its device key; print the device public key to enroll.")
        @OptionGroup var wallet: WalletOptions
        @Option(help: "The device id the cloud knows this phone by.") var deviceID = "phone-1"

        func run() throws {
            let keyFile = (wallet.dir as NSString).appendingPathComponent("store.key")
            guard !FileManager.default.fileExists(atPath: keyFile) else { throw ToolError("\(wallet.dir) already holds a wallet") }
            try FileManager.default.createDirectory(atPath: wallet.dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            var rng = SystemRandomNumberGenerator()
            let key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
            guard FileManager.default.createFile(atPath: keyFile, contents: Data(key.hexString.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw ToolError("cannot write \(keyFile)")
            }
            try deviceID.write(toFile: (wallet.dir as NSString).appendingPathComponent("device-id"), atomically: true, encoding: .utf8)
            let w = try wallet.open(deviceID: deviceID)
            print("wallet created in \(wallet.dir) for device \(deviceID)")
            print("device public key (P-256, X9.63, base64): \(w.devicePublicKey.x963Representation.base64EncodedString())")
        }
    }

    struct AddCard: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-card",
            abstract: "Add a card built in process from an issuer master key: a cloud card with limited-use keys, or a physical card (CVN 01).",
            discussion: "For testing POS software without the cloud. Cards provisioned by the token service arrive sealed to the device key instead.")
        @OptionGroup var wallet: WalletOptions
        @Option(help: "Card id on the phone.") var id = "card-1"
        @Option(help: "The token (cloud) or card (physical) number.") var pan = "6234560000000016"
        @Option(help: "YYMM.") var expiry = "2912"
        @Option(help: "Issuer master key (IMK-AC), 32 hex digits.") var imk = "0123456789ABCDEFFEDCBA9876543210"
        @Option(help: "Limited-use keys to load (cloud).") var keys = 5
        @Flag(help: "A physical card (UnionPay CVN 01 with its own card key) instead of a cloud card.") var physical = false
        @Option(help: "Cardholder name (physical).") var holder = "CLOUDTAP TEST"

        func run() throws {
            let w = try wallet.open()
            let pan = try parsePAN(self.pan)
            let master = try IssuerMasterKey(try parseHex(imk, option: "--imk", lengths: [16]), algorithm: .tdes)
            let cardKey = try master.cardKey(pan: pan, psn: "01", method: .optionA)
            if physical {
                try w.addCard(CardProfile(id: id, kind: .physical, pan: pan.digits, expiry: expiry, holderName: holder, cryptogramProfile: "01", cardKey: cardKey))
            } else {
                try w.addCard(CardProfile(id: id, kind: .cloud, pan: pan.digits, expiry: expiry, cryptogramProfile: "cloud"))
                let now = Date()
                try w.addKeys(cardID: id, try (1...max(1, keys)).map { i in
                    let index = LimitedUseKeyIndex(generatedAt: now, sequence: UInt16(i))
                    let luk = try EMVKeyDerivation.limitedUseKey(cardKey: cardKey, index: index, algorithm: .tdes)
                    return Wallet.SealedKey(index: index, sealedKey: try DeviceKeyWrap.seal(luk, to: w.devicePublicKey, context: index.bytes), limits: LimitedUseKeyLimits())
                })
            }
            print("added \(physical ? "physical" : "cloud") card \(id): \(pan.masked)")
        }
    }

    struct ShowQR: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show-qr",
            abstract: "Show a consumer-presented QR code (EMV CPM, CPV01) for a cloud card: token track 2 and an ARQC from a limited-use key; good for one payment within two minutes.")
        @OptionGroup var wallet: WalletOptions
        @Option(help: "Card id on the phone.") var id = "card-1"
        @OptionGroup var output: SymbolOutput

        func run() throws {
            let code = try wallet.open().consumerPresentedCode(cardID: id)
            print(code.base64)
            try output.emit(code.base64)
        }
    }

    struct Scan: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "scan",
            abstract: "Pay a merchant-presented QR code: show the merchant and amount, ask for the amount when the code has none, pay through the cloud.")
        @Argument(help: "The payload, as a scanner reads it.") var payload: String
        @OptionGroup var wallet: WalletOptions
        @OptionGroup var cloud: CloudOptions
        @Option(help: "Card id on the phone (a provisioned cloud card).") var id = "card-1"
        @Option(help: "The amount, for a code without one (otherwise asked for).") var amount: String?

        func run() throws {
            let code: MerchantPresentedCode
            do { code = try MerchantPresentedCode(payload: payload) } catch { throw ToolError("not a merchant code: \(error)") }
            print("pay \(code.merchantName), \(code.merchantCity)" + (code.unionPay.map { " (UnionPay merchant \($0.merchantID))" } ?? ""))
            var keyed: String?
            if let fixed = code.amount {
                print("amount: \(fixed) CNY")
            } else if let amount {
                keyed = amount
            } else {
                print("amount (CNY): ", terminator: "")
                keyed = readLine(strippingNewline: true)
            }
            let text = code.amount ?? keyed ?? ""
            let amount = try checked("--amount") { try Amount(text, currency: .cny) }
            let w = try wallet.open()
            guard let tokenID = w.cards.first(where: { $0.profile.id == id })?.profile.tokenID else { throw ToolError("card \(id) was not provisioned from the cloud") }
            let connection = try cloud.connection()
            let credential = try w.merchantPaymentCredential(cardID: id, amount: amount)
            let payload = self.payload, given = keyed
            try blockingAsync { () async throws -> Void in
                let result = try await connection.payMerchant(tokenID: tokenID, payload: payload, amount: given, credential: credential, wallet: w)
                print(result.approved ? "approved \(result.amount) CNY, code \(result.authorizationCode ?? "")" : "declined \(result.responseCode)")
                print("reference \(result.reference)")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cards, counters, keys left and the last taps.")
        @OptionGroup var wallet: WalletOptions

        func run() throws {
            let w = try wallet.open()
            for card in w.cards {
                let p = card.profile
                let mark = p.id == w.defaultCardID ? "*" : " "
                let keys = p.kind == .cloud ? "\(w.keysLeft(cardID: p.id)) keys left" : "card key KCV \((try? KeyTools.kcv(p.cardKey ?? [], algorithm: .tdes).prefix(3).hexString) ?? "?")"
                print("\(mark) \(p.id)  \(p.kind.rawValue)  \((try? PAN(p.pan))?.masked ?? "?")  exp \(p.expiry)  ATC \(card.atc)  \(keys)")
            }
            for entry in w.log.suffix(10) {
                print("  tap \(entry.cardID) ATC \(entry.atc) key #\(entry.keySequence) \(Amount(minorUnits: entry.amount, currency: Currency(code: String(entry.currency)) ?? .cny)) \(entry.cryptogramType)")
            }
        }
    }

    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Plug the phone into vpcd's virtual reader as a contactless card (pcscd with vsmartcard-vpcd must run).")
        @OptionGroup var wallet: WalletOptions
        @Option(help: "vpcd host.") var host = "127.0.0.1"
        @Option(help: "vpcd port: 35963 for reader 00 00, 35964 for 00 01.") var port = 35963
        @Flag(help: "The owner has unlocked the phone (recorded as consumer device CVM).") var unlocked = false

        func run() throws {
            let w = try wallet.open()
            w.ownerVerified = unlocked
            let card = SharedCardApplet(w.applet())
            let host = self.host, port = self.port
            try blockingAsync { () async throws -> Void in
                let connection = try await VirtualCard.connect(host: host, port: port, process: { bytes in
                    let answer = card.process(bytes)
                    print("C-APDU \(bytes.hexString)\nR-APDU \(answer.hexString)")
                    return answer
                }, reset: { card.reset() })
                print("the phone is in the reader (vpcd \(host):\(port)); Ctrl-C to take it away")
                try await connection.closed.get()
            }
        }
    }
}
