import Testing
import Crypto
import PaymentCore
@testable import PaymentCrypto

@Suite("TR-31 key blocks and the software HSM")
struct HSMTests {
    struct Cross: Decodable { let vectors: [V]; struct V: Decodable { let kbpk, keyBlock, key: String } }

    @Test("TR-31 version D blocks made by psec unwrap here, and ours unwrap to the same key")
    func tr31() throws {
        let f = try loadVectors("crosscheck-tr31", as: Cross.self)
        for v in f.vectors {
            let (header, key) = try TR31.unwrap(v.keyBlock, kbpk: hex(v.kbpk))
            #expect(key.hexString == v.key)
            let again = try TR31.wrap(key: key, header: header, kbpk: hex(v.kbpk))
            #expect(again.count == v.keyBlock.count)
            #expect(try TR31.unwrap(again, kbpk: hex(v.kbpk)).key == key)
        }
    }

    struct Published: Decodable {
        let vectors: [V]
        struct V: Decodable { let kbpk, keyBlock, key, algorithm, kcv, usage, modeOfUse: String }
    }

    @Test("TR-31:2018 A.7.4 and HSM-made version D blocks unwrap to the published keys and KCVs")
    func tr31Published() throws {
        let f = try loadVectors("tr31", as: Published.self)
        for v in f.vectors {
            let (header, key) = try TR31.unwrap(v.keyBlock, kbpk: hex(v.kbpk))
            #expect(key.hexString == v.key)
            #expect(header.keyUsage == v.usage)
            #expect(String(header.modeOfUse) == v.modeOfUse)
            let algorithm = try #require(KeyAlgorithm(rawValue: v.algorithm))
            #expect(try KeyTools.kcv(key, algorithm: algorithm).hexString == v.kcv)
        }
    }

    @Test("an altered TR-31 block or the wrong KBPK is refused")
    func tr31Tamper() throws {
        let kbpk = [UInt8](repeating: 0x11, count: 32)
        let block = try TR31.wrap(key: [UInt8](repeating: 0x22, count: 16), header: .init(keyUsage: "P0", algorithm: "T", modeOfUse: "B"), kbpk: kbpk)
        var chars = Array(block)
        chars[5] = "M"  // usage P0 → M0: the header is bound by the MAC
        #expect(throws: TR31.Error.macMismatch) { try TR31.unwrap(String(chars), kbpk: kbpk) }
        #expect(throws: TR31.Error.macMismatch) { try TR31.unwrap(block, kbpk: [UInt8](repeating: 0x12, count: 32)) }
        #expect(throws: TR31.Error.self) { try TR31.unwrap("D0016P0TB00E0000", kbpk: kbpk) }
    }

    func makeHSM() throws -> SoftwareHSM {
        try SoftwareHSM(masterKey: [UInt8](repeating: 0x5A, count: 32))
    }

    @Test("keys are stored wrapped, reloaded from their blocks, and shown by KCV only")
    func keysPersist() throws {
        let hsm = try makeHSM()
        let info = try hsm.importClearKey(name: "imk-ac", usage: .issuerMasterKeyAC, algorithm: .tdes, key: hex("0123456789ABCDEFFEDCBA9876543210"))
        #expect(info.kcv == "08D7B4")
        #expect(!String(describing: info).contains("0123456789ABCDEF"))
        #expect(hsm.keyBlocks["imk-ac"]?.hasPrefix("D0112E0TX00E0000") == true)
        let reloaded = try SoftwareHSM(masterKey: [UInt8](repeating: 0x5A, count: 32), keyBlocks: hsm.keyBlocks)
        #expect(try reloaded.keyInfo(name: "imk-ac") == info)
        #expect(throws: (any Error).self) { try SoftwareHSM(masterKey: [UInt8](repeating: 0x5B, count: 32), keyBlocks: hsm.keyBlocks) }
        #expect(throws: KeyHoldingError.keyExists("imk-ac")) {
            try hsm.importClearKey(name: "imk-ac", usage: .issuerMasterKeyAC, algorithm: .tdes, key: [UInt8](repeating: 1, count: 16))
        }
    }

    @Test("keys are used only for their usage")
    func usageEnforced() throws {
        let hsm = try makeHSM()
        _ = try hsm.generateKey(name: "tpk", usage: .pinEncryption, algorithm: .tdes, lengthBytes: 16)
        let pan = try PAN("6210220110002707354")
        let data = try TransactionData(elements: [UInt8](repeating: 0, count: 33), iad: UnionPayIAD(cvr: [3, 0, 0, 0], algorithm: .tdes).bytes)
        #expect(throws: KeyHoldingError.self) {
            try hsm.verifyARQC(imk: "tpk", profile: .unionPayCVN01, pan: pan, psn: "01", data: data, arqc: [UInt8](repeating: 0, count: 8))
        }
        #expect(throws: KeyHoldingError.unknownKey("nope")) { try hsm.keyInfo(name: "nope") }
    }

    @Test("export under a KEK and import elsewhere gives the same key (by KCV)")
    func exportImport() throws {
        let a = try makeHSM(), b = try SoftwareHSM(masterKey: [UInt8](repeating: 0x77, count: 32))
        let kek = [UInt8](repeating: 0x3C, count: 32)
        _ = try a.importClearKey(name: "kek", usage: .keyEncryption, algorithm: .aes, key: kek)
        _ = try b.importClearKey(name: "kek", usage: .keyEncryption, algorithm: .aes, key: kek)
        let zpk = try a.generateKey(name: "zpk", usage: .pinEncryption, algorithm: .tdes, lengthBytes: 16)
        let block = try a.exportKeyBlock(name: "zpk", kekName: "kek")
        let imported = try b.importKeyBlock(name: "zpk-from-a", keyBlock: block, kekName: "kek")
        #expect(imported.kcv == zpk.kcv)
    }

    @Test("ARQC verification, ARPC, PIN translation and verification, CVV, and vault sealing through key names")
    func operations() throws {
        let hsm = try makeHSM()
        let imk = hex("C4D689158AD9FB9D23105B91CE046D0E")
        _ = try hsm.importClearKey(name: "bank-a/imk-ac", usage: .issuerMasterKeyAC, algorithm: .tdes, key: imk)
        let pan = try PAN("6210220110002707354")
        var rng = SplitMix64(seed: 5)
        let data = try TransactionData(elements: rng.bytes(33), iad: UnionPayIAD(cvr: [3, 0xA0, 0, 0], algorithm: .tdes).bytes)
        let cardKey = try EMVKeyDerivation.optionA(imk: imk, pan: pan, psn: "01")
        let arqc = try Cryptogram.generate(profile: .unionPayCVN01, cardKey: cardKey, data: data)
        #expect(try hsm.verifyARQC(imk: "bank-a/imk-ac", profile: .unionPayCVN01, pan: pan, psn: "01", data: data, arqc: arqc))
        let arpc = try hsm.generateARPC(imk: "bank-a/imk-ac", profile: .unionPayCVN01, pan: pan, psn: "01", data: data, arqc: arqc,
                                        arc: Array("00".utf8), csu: [], proprietaryData: [])
        #expect(arpc == (try Cryptogram.arpc(profile: .unionPayCVN01, cardKey: cardKey, data: data, arqc: arqc)))

        // PIN: terminal key → zone key, then PVV verification at the issuer.
        let tpk = rng.bytes(16)
        _ = try hsm.importClearKey(name: "tpk", usage: .pinEncryption, algorithm: .tdes, key: tpk)
        _ = try hsm.generateKey(name: "zpk", usage: .pinEncryption, algorithm: .tdes, lengthBytes: 16)
        // A fixed PVK: under a random one the wrong PIN below shares the right one's four-digit PVV
        // about once in 10,000 keys.
        var pvkSeed = SeededRandomNumberGenerator(seed: 71)
        _ = try hsm.importClearKey(name: "pvk", usage: .pinVerificationVisaPVV, algorithm: .tdes, key: KeyTools.oddParity(pvkSeed.bytes(16)))
        let token = try PAN("6234567890123456780")
        let fromPOS = try ISO9564.encipher(PINBlock.encode(pin: "2468", format: .iso0, pan: token), key: tpk, pan: token)
        let toIssuer = try hsm.translatePIN(fromPOS, from: PINZone(keyName: "tpk", format: .iso0, pan: token), to: PINZone(keyName: "zpk", format: .iso0, pan: pan))
        let issuerZone = PINZone(keyName: "zpk", format: .iso0, pan: pan)
        let pvv = try hsm.generatePINVerificationData(toIssuer, zone: issuerZone, method: .visaPVV(pvkName: "pvk", pvki: 1))
        #expect(try hsm.verifyPIN(toIssuer, zone: issuerZone, against: PINReference(method: .visaPVV(pvkName: "pvk", pvki: 1), value: pvv)))
        let wrong = try hsm.translatePIN(
            try ISO9564.encipher(PINBlock.encode(pin: "2469", format: .iso0, pan: token), key: tpk, pan: token),
            from: PINZone(keyName: "tpk", format: .iso0, pan: token), to: issuerZone)
        #expect(try !hsm.verifyPIN(wrong, zone: issuerZone, against: PINReference(method: .visaPVV(pvkName: "pvk", pvki: 1), value: pvv)))

        // CVV.
        _ = try hsm.importClearKey(name: "cvk", usage: .cardVerification, algorithm: .tdes, key: hex("0123456789ABCDEFFEDCBA9876543210"))
        #expect(try hsm.verifyCVV(cvk: "cvk", pan: PAN(unchecked: "1234567890123456"), expiry: "9912", serviceCode: "220", cvv: "170"))

        // Vault.
        _ = try hsm.generateKey(name: "vault-kek", usage: .dataEncryption, algorithm: .aes, lengthBytes: 32)
        let sealed = try hsm.seal(Array(pan.digits.utf8), keyName: "vault-kek", authenticating: Array("card:1".utf8))
        #expect(try hsm.open(sealed, keyName: "vault-kek", authenticating: Array("card:1".utf8)) == Array(pan.digits.utf8))
        #expect(throws: (any Error).self) { try hsm.open(sealed, keyName: "vault-kek", authenticating: Array("card:2".utf8)) }
        #expect(try hsm.keyedHash(Array(pan.digits.utf8), keyName: "vault-kek").count == 32)

        // Look-up hashes: HMAC-SHA-256 (the figure from Python's hmac module, key 00 01 … 1F), the
        // same on every call from the key's kept state, and only under a key whose usage allows it.
        _ = try hsm.importClearKey(name: "hash-key", usage: .dataEncryption, algorithm: .aes, key: (0..<32).map { UInt8($0) })
        let expected = hex("099805f4ac310786968565c098db515cc50862b420ae31e20238312344bed36a")
        for _ in 0..<3 {
            #expect(try hsm.keyedHash(Array("what do ya want for nothing?".utf8), keyName: "hash-key") == expected)
        }
        #expect(try hsm.keyedHash([], keyName: "hash-key") != expected)
        #expect(throws: (any Error).self) { try hsm.keyedHash([1, 2, 3], keyName: "cvk") }
    }
}

@Suite("Keys sealed to a device")
struct DeviceKeyWrapTests {
    @Test("a batch shares one key agreement, yet each item opens alone, only under its own context and only with the device key")
    func batch() throws {
        let device = P256.KeyAgreement.PrivateKey()
        let items: [(plaintext: [UInt8], context: [UInt8])] = (1...4).map { i in ([UInt8](repeating: UInt8(i), count: 16), [0x00, UInt8(i)]) }
        let sealed = try DeviceKeyWrap.seal(items, to: device.publicKey)
        #expect(Set(sealed.map { Array($0[0..<65]) }).count == 1)
        #expect(Set(sealed.map { Array($0[65...]) }).count == 4)
        #expect(try DeviceKeyWrap.open(zip(sealed, items).map { ($0, $1.context) }, with: device) == items.map(\.plaintext))
        for (box, item) in zip(sealed, items) {
            #expect(try DeviceKeyWrap.open(box, with: device, context: item.context) == item.plaintext)
        }
        #expect(throws: (any Error).self) { try DeviceKeyWrap.open(sealed[0], with: device, context: items[1].context) }
        #expect(throws: (any Error).self) { try DeviceKeyWrap.open(sealed[0], with: P256.KeyAgreement.PrivateKey(), context: items[0].context) }
        // One sealed alone opens the same way.
        let single = try DeviceKeyWrap.seal(items[2].plaintext, to: device.publicKey, context: items[2].context)
        #expect(try DeviceKeyWrap.open(single, with: device, context: items[2].context) == items[2].plaintext)
    }
}
