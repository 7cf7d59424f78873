import CloudWire
import Crypto
import EMV
import Foundation
import PaymentCore
import PaymentCrypto
import Terminal
import Testing
import Wallet

extension SharedCardApplet {
    /// The applet as an in-process transport.
    var transport: InProcessTransport { InProcessTransport { [self] bytes in process(bytes) } }
}

func tap(_ wallet: Wallet, amount: Int64, configuration: TerminalConfiguration = TerminalConfiguration(), date: Date = Date()) async -> (KernelOutcome, [APDUExchange]) {
    var kernel = ContactlessKernel(configuration: configuration, transaction: TransactionInput(amount: amount, date: date))
    return await Reader.tap(&kernel, over: SharedCardApplet(wallet.applet()).transport)
}

/// The cryptogram data the issuer side rebuilds from an online request.
func transactionData(_ r: OnlineRequest) throws -> TransactionData {
    try TransactionData(values: r.data.filter { TransactionData.minimumSet.map(\.tag).contains($0.key) || $0.key == 0x9F10 })
}

@Suite("A tap in process: kernel and phone")
struct TapTests {
    @Test("38.50 CNY: online request without PIN, and the foundation's verifier accepts the cryptogram")
    func smallAmount() async throws {
        let phone = try Phone()
        let (outcome, trace) = await tap(phone.wallet, amount: 3850)
        guard case .onlineRequest(let request) = outcome else { Issue.record("\(outcome)"); return }
        #expect(request.pan == Phone.token)
        #expect(!request.onlinePINRequired)
        #expect(request.fastPath)
        #expect(trace.count == 4)  // PPSE, AID, GPO, one record
        #expect(try Cryptogram.verify(profile: .cloud, imk: Phone.imk, pan: request.pan, psn: request.psn, data: try transactionData(request),
                                      arqc: request.data[0x9F26]!))
    }

    @Test("1,288.00 CNY: above the CVM limit the card asks for online PIN")
    func pinAmount() async throws {
        let phone = try Phone()
        phone.wallet.ownerVerified = true
        guard case .onlineRequest(let request) = await tap(phone.wallet, amount: 128_800).0 else { Issue.record("no online request"); return }
        #expect(request.onlinePINRequired)
        // The owner's unlock is recorded in the CVR (IAD byte 5, docs/cloud-cvn.md).
        #expect(request.data[0x9F10]![5] & 0x80 != 0)
        #expect(try Cryptogram.verify(profile: .cloud, imk: Phone.imk, pan: request.pan, psn: request.psn, data: try transactionData(request),
                                      arqc: request.data[0x9F26]!))
    }

    @Test("a terminal without qPBOC takes the full path: GPO format 1, READ RECORD, GENERATE AC")
    func fullPath() async throws {
        let phone = try Phone()
        let (outcome, trace) = await tap(phone.wallet, amount: 3850, configuration: TerminalConfiguration(supportsQPBOC: false))
        guard case .onlineRequest(let request) = outcome else { Issue.record("\(outcome)"); return }
        #expect(!request.fastPath)
        #expect(trace.map { $0.command[1] } == [0xA4, 0xA4, 0xA8, 0xB2, 0xAE])
        #expect(try Cryptogram.verify(profile: .cloud, imk: Phone.imk, pan: request.pan, psn: request.psn, data: try transactionData(request),
                                      arqc: request.data[0x9F26]!))
    }

    @Test("a physical-card profile (UnionPay CVN 01) taps too")
    func physicalCard() async throws {
        let pan = try PAN("6210220110002707354")
        let cardKey = try IssuerMasterKey(Phone.imk, algorithm: .tdes).cardKey(pan: pan, psn: "01", method: .optionA)
        let wallet = try Wallet(store: MemorySecureStore(), deviceID: "phone-2")
        try wallet.addCard(CardProfile(id: "chip", kind: .physical, pan: pan.digits, expiry: "2912", holderName: "ZHANG SAN", cryptogramProfile: "01", cardKey: cardKey))
        guard case .onlineRequest(let request) = await tap(wallet, amount: 3850).0 else { Issue.record("no online request"); return }
        #expect(request.data[0x9F10]?.first == 0x07)
        #expect(try Cryptogram.verify(profile: .unionPayCVN01, imk: Phone.imk, pan: pan, psn: request.psn, data: try transactionData(request),
                                      arqc: request.data[0x9F26]!))
    }

    @Test("a phone with no keys left declines offline; spent and expired keys are never used")
    func noKeys() async throws {
        let phone = try Phone(keys: 1, limits: LimitedUseKeyLimits(maxTransactions: 1))
        guard case .onlineRequest = await tap(phone.wallet, amount: 3850).0 else { Issue.record("first tap should go online"); return }
        #expect(phone.wallet.keysLeft(cardID: "card-1") == 0)
        #expect(phone.wallet.needsReplenishment(cardID: "card-1"))
        #expect(await tap(phone.wallet, amount: 3850).0 == .declined(reason: "declined by the card (AAC)"))
        // A key older than its time to live is not used either.
        let old = try Phone(keys: 1, limits: LimitedUseKeyLimits(timeToLive: 3600), at: Date().addingTimeInterval(-3 * 86400))
        #expect(await tap(old.wallet, amount: 100).0 == .declined(reason: "declined by the card (AAC)"))
        // Nor one whose cumulative amount the payment would exceed.
        let small = try Phone(keys: 1, limits: LimitedUseKeyLimits(maxCumulativeAmount: 5000))
        #expect(await tap(small.wallet, amount: 6000).0 == .declined(reason: "declined by the card (AAC)"))
        #expect(small.wallet.log.last?.cryptogramType == "AAC")
    }

    @Test("pre-processing and application selection")
    func kernelSelection() async throws {
        let phone = try Phone()
        #expect(await tap(phone.wallet, amount: 1_000_000).0 == .tryAnotherInterface(reason: "amount at or above the contactless limit"))
        #expect(await tap(phone.wallet, amount: 0).0 == .tryAnotherInterface(reason: "zero amount not allowed contactless"))
        // A terminal that supports only the credit AID finds nothing on a debit card.
        let creditOnly = TerminalConfiguration(supportedAIDs: [CardProfile.creditAID])
        #expect(await tap(phone.wallet, amount: 100, configuration: creditOnly).0 == .endApplication(reason: "no supported application on the card"))
    }

    @Test("the kernel against a scripted card: priority order, a failed SELECT falls to the next AID")
    func scriptedCard() async throws {
        // PPSE lists credit (priority 2) before debit (priority 1); the debit SELECT fails, credit answers.
        let ppse = "6F33840E325041592E5359532E4444463031A521BF0C1E610D4F08A000000333010102870102610D4F08A000000333010101870101"
        let responses: [[UInt8]: [UInt8]] = [
            CommandAPDU.selectPPSE.encoded: try [UInt8](hex: ppse + "9000"),
            CommandAPDU.select(aid: CardProfile.debitAID).encoded: [0x6A, 0x82],
            CommandAPDU.select(aid: CardProfile.creditAID).encoded: try [UInt8](hex: "6F0A8408A000000333010102" + "9000"),
        ]
        let card = InProcessTransport { command in responses[command] ?? [0x6D, 0x00] }
        var kernel = ContactlessKernel(configuration: TerminalConfiguration(), transaction: TransactionInput(amount: 100))
        let (outcome, trace) = await Reader.tap(&kernel, over: card)
        #expect(trace.map { $0.command.hexString } == [
            CommandAPDU.selectPPSE.encoded.hexString, CommandAPDU.select(aid: CardProfile.debitAID).encoded.hexString,
            CommandAPDU.select(aid: CardProfile.creditAID).encoded.hexString, "80A80000028300" + "00",
        ])
        // The credit FCI has no PDOL, so the GPO carries an empty 83; the scripted card does not know GPO.
        #expect(outcome == .endApplication(reason: "GET PROCESSING OPTIONS failed: 6D00"))
    }

    @Test("a tap stores only its card's counter record; opening merges it into the state, whichever was written last")
    func counterRecord() async throws {
        let store = MemorySecureStore()
        let phone = try Phone(store: store)
        let stateBefore = try store.load("wallet-state")
        _ = await tap(phone.wallet, amount: 3850)
        _ = await tap(phone.wallet, amount: 100)
        #expect(try store.load("wallet-state") == stateBefore)
        #expect(try store.load("counters-card-1")?.count == 18 + 3 * 18)
        let reopened = try Wallet(store: store, deviceID: "phone-1")
        #expect(reopened.cards.first?.atc == 2)
        #expect(reopened.cards == phone.wallet.cards)  // the keys' uses and amounts too
        #expect(reopened.log.count == 2)
        // A whole-state write after the taps carries the counters; the older record changes nothing.
        try reopened.setDefault(cardID: "card-1")
        _ = await tap(reopened, amount: 500)
        try reopened.setDefault(cardID: "card-1")
        let again = try Wallet(store: store, deviceID: "phone-1")
        #expect(again.cards == reopened.cards)
        #expect(again.cards.first?.atc == 3)
        // A record cut short is refused, not half read.
        let record = try #require(try store.load("counters-card-1"))
        try store.save("counters-card-1", record.prefix(20))
        #expect(throws: WalletError.self) { _ = try Wallet(store: store, deviceID: "phone-1") }
    }

    @Test("a tap's log entry is stored as a small binary record; entries stored as JSON by earlier versions still read")
    func logRecord() async throws {
        let store = MemorySecureStore()
        let phone = try Phone(store: store)
        _ = await tap(phone.wallet, amount: 3850)
        let stored = try #require(try store.load("log-0"))
        #expect(stored.starts(with: Array("CTL1".utf8)))
        #expect(stored.count < 60)
        #expect(try Wallet(store: store, deviceID: "phone-1").log == phone.wallet.log)
        // An entry from before the record: JSON.
        let json = Data(#"{"cardID":"card-1","atc":7,"keySequence":3,"amount":100,"currency":156,"cryptogramType":"AAC","date":811000000}"#.utf8)
        try store.save("log-0", json)
        #expect(try Wallet(store: store, deviceID: "phone-1").log == [try JSONDecoder().decode(WalletLogEntry.self, from: json)])
        // A record cut short is refused.
        try store.save("log-0", stored.prefix(stored.count - 1))
        #expect(throws: WalletError.self) { _ = try Wallet(store: store, deviceID: "phone-1") }
    }

    @Test("the wallet's file store: sealed at rest, a tampered file refused, keys survive a restart")
    func fileStore() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wallet-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = SymmetricKey(size: .bits256)
        let store = try FileSecureStore(directory: dir, key: key)
        let phone = try Phone(store: store)
        _ = await tap(phone.wallet, amount: 3850)
        let file = dir.appendingPathComponent("wallet-state.sealed")
        let bytes = try Data(contentsOf: file)
        // Only the sealed files: every write's new file was renamed over its name.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).allSatisfy { $0.hasSuffix(".sealed") })
        #expect(bytes.range(of: Data(Phone.token.digits.utf8)) == nil)
        let reopened = try Wallet(store: try FileSecureStore(directory: dir, key: key), deviceID: "phone-1")
        #expect(reopened.cards.first?.atc == 1)
        #expect(reopened.keysLeft(cardID: "card-1") == 3)
        #expect(throws: WalletError.self) { _ = try Wallet(store: try FileSecureStore(directory: dir, key: SymmetricKey(size: .bits256)), deviceID: "phone-1") }
        var tampered = bytes
        tampered[tampered.count - 1] ^= 1
        try tampered.write(to: file)
        #expect(throws: WalletError.self) { _ = try Wallet(store: store, deviceID: "phone-1") }
        // A file that cannot be read is an error, not an absence: the device key is not made anew.
        let keyFile = dir.appendingPathComponent("device-key.sealed")
        let deviceKey = try Data(contentsOf: keyFile)
        try FileManager.default.removeItem(at: keyFile)
        try FileManager.default.createDirectory(at: keyFile, withIntermediateDirectories: false)  // unreadable as a file
        #expect(throws: WalletError.self) { _ = try store.load("device-key") }
        #expect(throws: WalletError.self) { _ = try Wallet(store: store, deviceID: "phone-1") }
        try FileManager.default.removeItem(at: keyFile)
        try deviceKey.write(to: keyFile)
        #expect(try store.load("nothing-here") == nil)
    }
}

@Suite("Cloud cards with SM4")
struct SM4TapTests {
    @Test("a cloud-sm4 card's cryptogram verifies with the SM4 profile")
    func sm4() async throws {
        let imk = try [UInt8](hex: "0123456789ABCDEFFEDCBA9876543210")
        let token = Phone.token
        let wallet = try Wallet(store: MemorySecureStore(), deviceID: "phone-sm4")
        try wallet.addCard(CardProfile(id: "sm4", kind: .cloud, pan: token.digits, expiry: "2912", cryptogramProfile: "cloud-sm4"))
        let cardKey = try IssuerMasterKey(imk, algorithm: .sm4).cardKey(pan: token, psn: "01", method: .optionA, oddParity: false)
        let index = LimitedUseKeyIndex(generatedAt: Date(), sequence: 1)
        let luk = try EMVKeyDerivation.limitedUseKey(cardKey: cardKey, index: index, algorithm: .sm4)
        try wallet.addKeys(cardID: "sm4", [Wallet.SealedKey(index: index, sealedKey: try DeviceKeyWrap.seal(luk, to: wallet.devicePublicKey, context: index.bytes),
                                                            limits: LimitedUseKeyLimits())])
        guard case .onlineRequest(let request) = await tap(wallet, amount: 3850).0 else { Issue.record("no online request"); return }
        #expect(request.data[0x9F10]?[7] == 0x04)
        #expect(try Cryptogram.verify(profile: .cloudSM4, imk: imk, pan: request.pan, psn: request.psn, data: try transactionData(request),
                                      arqc: request.data[0x9F26]!))
    }
}
