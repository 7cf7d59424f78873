import CloudWire
import Crypto
import EMV
import Foundation
import PaymentCore
import PaymentCrypto
import Terminal
import Testing
import Wallet

/// A phone with one cloud card and keys, made in process from an issuer master key (the cloud
/// side's derivation) so the card can be checked with the foundation's verifier.
struct Phone {
    static let imk = KeyTools.oddParity(try! [UInt8](hex: "0123456789ABCDEFFEDCBA9876543210"))
    static let token = try! PAN("6234560000000016")
    let wallet: Wallet
    let store: any SecureStore

    init(store: any SecureStore = MemorySecureStore(), keys: Int = 3, limits: LimitedUseKeyLimits = LimitedUseKeyLimits(), at now: Date = Date()) throws {
        self.store = store
        wallet = try Wallet(store: store, deviceID: "phone-1")
        let profile = TokenProfile(token: Self.token.digits, expiry: "2912", psn: "01", cryptogramProfile: "cloud")
        let sealed = try DeviceKeyWrap.seal(Array(try JSONEncoder().encode(profile)), to: wallet.devicePublicKey, context: TokenProfile.sealContext)
        try wallet.addCloudCard(id: "card-1", sealedProfile: sealed)
        try wallet.addKeys(cardID: "card-1", try Self.keys(count: keys, for: wallet.devicePublicKey, limits: limits, at: now))
    }

    /// Limited-use keys as the token service makes them: card key by option A, then per index.
    static func keys(count: Int, from sequence: UInt16 = 1, for device: P256.KeyAgreement.PublicKey, limits: LimitedUseKeyLimits = LimitedUseKeyLimits(),
                     at now: Date = Date()) throws -> [Wallet.SealedKey] {
        let cardKey = try IssuerMasterKey(imk, algorithm: .tdes).cardKey(pan: token, psn: "01", method: .optionA)
        return try (0..<count).map { i in
            let index = LimitedUseKeyIndex(generatedAt: now, sequence: sequence + UInt16(i))
            let luk = try EMVKeyDerivation.limitedUseKey(cardKey: cardKey, index: index, algorithm: .tdes)
            return Wallet.SealedKey(index: index, sealedKey: try DeviceKeyWrap.seal(luk, to: device, context: index.bytes), limits: limits)
        }
    }
}

/// Sends hex APDUs to an applet and returns the status word.
func sw(_ applet: inout CardApplet, _ hex: String) -> String {
    let r = applet.process(try! [UInt8](hex: hex.replacingOccurrences(of: " ", with: "")))
    return r.suffix(2).hexString
}

@Suite("Card applet: APDU by APDU")
struct AppletTests {
    static let selectPPSE = "00A404000E325041592E5359532E444446303100"
    static let selectAID = "00A4040008A00000033301010100"
    // GPO: 83 len 21 — TTQ 26008000 (qPBOC, online PIN, online), 38.50, 0, 0156, TVR, 0156, 261126, 00, UN.
    static let gpo = "80A8000023832126800000000000003850000000000000015600000000000156261126001234567800"

    @Test("every command in and out of order, with its status word")
    func script() throws {
        let phone = try Phone()
        var applet = phone.wallet.applet()
        let table: [(String, String, String)] = [
            ("GPO before any SELECT", Self.gpo, "6985"),
            ("READ RECORD before GPO", "00B2010C00", "6985"),
            ("GET DATA with nothing selected", "80CA9F3600", "6985"),
            ("truncated command", "00A404", "6700"),
            ("Lc longer than the data", "00A4040010A000000333", "6700"),
            ("unknown class", "FFA404000E325041592E5359532E444446303100", "6E00"),
            ("SELECT with class 80", "80A404000E325041592E5359532E444446303100", "6E00"),
            ("unknown instruction", "0020000000", "6D00"),
            ("SELECT by FID (P1 00)", "00A4000002E10000", "6A86"),
            ("SELECT with P2 0C", "00A4040C0E325041592E5359532E444446303100", "6A86"),
            ("SELECT next occurrence", "00A404020E325041592E5359532E444446303100", "6A82"),
            ("SELECT an AID the phone lacks", "00A4040007A000000003101000", "6A82"),
            ("SELECT PPSE", Self.selectPPSE, "9000"),
            ("GPO with only the PPSE selected", Self.gpo, "6985"),
            ("SELECT the debit AID", Self.selectAID, "9000"),
            ("GPO with P1P2 0100", "80A8010023832126800000000000003850000000000000015600000000000156261126001234567800", "6A86"),
            ("GPO whose data is not tag 83", "80A8000023842126800000000000003850000000000000015600000000000156261126001234567800", "6A80"),
            ("GPO with PDOL data too short", "80A80000048302268000", "6700"),
            ("GPO with class 00", "00A8000023832126800000000000003850000000000000015600000000000156261126001234567800", "6E00"),
            ("GENERATE AC before GPO", "80AE80001D000000003850000000000000015600000000000156261126001234567800", "6985"),
            ("GPO", Self.gpo, "9000"),
            ("a second GPO in the same tap", Self.gpo, "6985"),
            ("GENERATE AC on the fast path", "80AE80001D000000003850000000000000015600000000000156261126001234567800", "6985"),
            ("READ RECORD with P2 not 'SFI, P1 is a record number'", "00B2010800", "6A86"),
            ("READ RECORD of record 0", "00B2000C00", "6A86"),
            ("READ RECORD of SFI 2", "00B2011400", "6A83"),
            ("READ RECORD of record 2", "00B2020C00", "6A83"),
            ("READ RECORD SFI 1 record 1", "00B2010C00", "9000"),
            ("GET DATA ATC", "80CA9F3600", "9000"),
            ("GET DATA last online ATC", "80CA9F1300", "9000"),
            ("GET DATA PIN try counter (not on a cloud card)", "80CA9F1700", "6A88"),
        ]
        for (what, command, expected) in table {
            #expect(sw(&applet, command) == expected, "\(what)")
        }
        #expect(applet.process(try [UInt8](hex: "80CA9F3600")) == [0x9F, 0x36, 0x02, 0x00, 0x01, 0x90, 0x00])
    }

    @Test("the fast-path GPO answer carries the qPBOC data, and the ATC is stored before it leaves")
    func fastPathAnswer() throws {
        let store = MemorySecureStore()
        let phone = try Phone(store: store)
        var applet = phone.wallet.applet()
        _ = applet.process(try [UInt8](hex: Self.selectPPSE))
        let fci = try TLV.decodeTree(Array(applet.process(try [UInt8](hex: Self.selectAID)).dropLast(2)))[0]
        #expect(fci.find(0x9F38)?.value.hexString == "9F66049F02069F03069F1A0295055F2A029A039C019F3704")
        let answer = applet.process(try [UInt8](hex: Self.gpo))
        #expect(answer.suffix(2) == [0x90, 0x00])
        let template = try TLV.decodeTree(Array(answer.dropLast(2)))[0]
        #expect(template.tag == 0x77)
        for tag: EMV.Tag in [0x82, 0x94, 0x57, 0x5F34, 0x9F10, 0x9F26, 0x9F27, 0x9F36, 0x9F6C] { #expect(template.find(tag) != nil, "\(tag) missing") }
        #expect(template.find(0x9F27)?.value == [0x80])
        #expect(template.find(0x9F36)?.value == [0x00, 0x01])
        #expect(template.find(0x57)?.value.hexString.hasPrefix("6234560000000016D2912220") == true)
        // The cryptogram verifies from the issuer master key (the cloud's side).
        let data = try TransactionData(values: [
            0x9F02: [0, 0, 0, 0, 0x38, 0x50], 0x9F03: [0, 0, 0, 0, 0, 0], 0x9F1A: [0x01, 0x56], 0x95: [0, 0, 0, 0, 0], 0x5F2A: [0x01, 0x56],
            0x9A: [0x26, 0x11, 0x26], 0x9C: [0], 0x9F37: [0x12, 0x34, 0x56, 0x78], 0x82: template.find(0x82)!.value, 0x9F36: [0, 1],
            0x9F10: template.find(0x9F10)!.value,
        ])
        #expect(try Cryptogram.verify(profile: .cloud, imk: Phone.imk, pan: Phone.token, psn: "01", data: data, arqc: template.find(0x9F26)!.value))
        // Already stored: a wallet reopened from the same store carries on from ATC 1.
        let reopened = try Wallet(store: store, deviceID: "phone-1")
        #expect(reopened.cards.first?.atc == 1)
        #expect(reopened.log.count == 1)
        #expect(reopened.cards.first?.keys.first?.uses == 1)
    }
}
