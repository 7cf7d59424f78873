import Crypto
import Foundation
import PaymentCore
import PaymentCrypto
import Storage
import StorageTestSupport
import Testing
@testable import TokenService

@Suite("Limited-use keys and cryptogram validation on SQLite and PostgreSQL", .serialized)
struct KeyIssueTests {
    /// The phone's side: open a key with the device's private key and make an ARQC.
    static func arqc(key: IssuedKey, device: P256.KeyAgreement.PrivateKey, atc: UInt16, amount: String, use: UInt8 = 1) throws -> (TransactionData, [UInt8]) {
        let luk = try DeviceKeyWrap.open(key.sealedKey, with: device, context: key.index.bytes)
        var elements = try BCD.pack(try Amount(amount, currency: .cny).n12)             // 9F02
        elements += [UInt8](repeating: 0, count: 6) + [0x01, 0x56] + [0, 0, 0, 0, 0]  // 9F03 9F1A 95
        elements += [0x01, 0x56, 0x26, 0x11, 0x26, 0x00]                               // 5F2A 9A 9C
        elements += [0xDE, 0xAD, 0xBE, UInt8(truncatingIfNeeded: atc)]                 // 9F37
        elements += [0x7C, 0x00] + [UInt8(atc >> 8), UInt8(atc & 0xFF)]                // 82 9F36
        let iad = CloudIAD(dki: 1, cvr: [0x03, 0xA0, 0x00, 0x00], algorithm: .tdes, keyIndex: key.index, useCount: use)
        let data = try TransactionData(elements: elements, iad: iad.bytes)
        return (data, try Cryptogram.generate(profile: .cloud, cardKey: luk, data: data))
    }

    /// The bank's IMK set up, the test card stored, a token issued for phone-1 and a fresh
    /// device key bound to it (the token still inactive).
    static func boundToken(_ f: TSPFixture) async throws -> (token: TokenRecord, number: PAN, device: P256.KeyAgreement.PrivateKey) {
        _ = try f.hsm.generateKey(name: "tsp/bank-a/imk-ac", usage: .issuerMasterKeyAC, algorithm: .tdes, lengthBytes: 16)
        try await f.tsp.setBankKeys(bank: "BANKA", imkName: "tsp/bank-a/imk-ac")
        let stored = try await f.tsp.storeCard(TokenServiceTests.card, expiry: "2912", bank: "BANKA")
        let (token, number) = try await f.tsp.issueToken(vaultID: stored.vaultID, requestor: "BANKAPP0001", device: "phone-1")
        let device = P256.KeyAgreement.PrivateKey()
        try await f.tsp.bindDevice(tokenID: token.id, publicKey: device.publicKey)
        return (token, number, device)
    }

    @Test("keys issued at once for one token take turns: every sequence once, each key for the device, whichever batch was made first")
    func concurrentIssues() async throws {
        try await TokenServiceTests.each("luk-concurrent") { (f: TSPFixture) async throws -> Void in
            let (token, _, device) = try await Self.boundToken(f)
            try await f.tsp.change(tokenID: token.id, .activate, actor: .requestor, reason: .verified)
            // Each batch is made before its unit from the same last sequence; all but the first
            // unit find it changed and make theirs again.
            let batches = try await withThrowingTaskGroup(of: [IssuedKey].self) { group in
                for _ in 0..<4 { group.addTask { try await f.tsp.issueKeys(tokenID: token.id, count: 2) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let keys = batches.flatMap { $0 }
            #expect(keys.map(\.index.sequence).sorted() == Array(1...8))
            for batch in batches { #expect(batch.map(\.index.sequence) == [batch[0].index.sequence, batch[0].index.sequence + 1]) }
            for key in keys { #expect(throws: Never.self) { try DeviceKeyWrap.open(key.sealedKey, with: device, context: key.index.bytes) } }
        }
    }

    @Test("keys go to the device encrypted; its cryptograms validate once; limits, state and foreign keys are enforced")
    func keysAndValidation() async throws {
        try await TokenServiceTests.each("luk") { (f: TSPFixture) async throws -> Void in
            let (token, number, device) = try await Self.boundToken(f)
            await #expect(throws: (any Error).self) { _ = try await f.tsp.issueKeys(tokenID: token.id, count: 1) }  // still inactive
            try await f.tsp.change(tokenID: token.id, .activate, actor: .requestor, reason: .verified)
            let keys = try await f.tsp.issueKeys(tokenID: token.id, count: 3, limits: LimitedUseKeyLimits(maxTransactions: 2, maxCumulativeAmount: 10_000))
            #expect(keys.map(\.index.sequence) == [1, 2, 3])
            // Another device cannot open the keys.
            #expect(throws: (any Error).self) { try DeviceKeyWrap.open(keys[0].sealedKey, with: P256.KeyAgreement.PrivateKey(), context: keys[0].index.bytes) }

            let (data, arqc) = try Self.arqc(key: keys[0], device: device, atc: 1, amount: "38.50")
            guard case .valid(let pan, let id, let index) = try await f.tsp.validate(CryptogramCheck(token: number, data: data, arqc: arqc)) else {
                Issue.record("valid cryptogram declined"); return
            }
            #expect(pan == TokenServiceTests.card)
            #expect(id == token.id)
            #expect(index == keys[0].index)
            // A replay (same ATC) is declined.
            guard case .declined(_, let why) = try await f.tsp.validate(CryptogramCheck(token: number, data: data, arqc: arqc)) else {
                Issue.record("replay accepted"); return
            }
            #expect(why.contains("ATC"))
            // A tampered cryptogram.
            var (data2, arqc2) = try Self.arqc(key: keys[0], device: device, atc: 2, amount: "10.00", use: 2)
            arqc2[0] ^= 1
            #expect(try await f.tsp.validate(CryptogramCheck(token: number, data: data2, arqc: arqc2)) == .declined(responseCode: "05", reason: "cryptogram does not verify"))
            // Over the key's cumulative amount (100.00 with 38.50 used).
            (data2, arqc2) = try Self.arqc(key: keys[0], device: device, atc: 3, amount: "70.00", use: 2)
            guard case .declined(_, let over) = try await f.tsp.validate(CryptogramCheck(token: number, data: data2, arqc: arqc2)) else {
                Issue.record("over the amount limit accepted"); return
            }
            #expect(over.contains("cumulative"))
            // Second use is fine, a third exceeds the two-transaction limit.
            (data2, arqc2) = try Self.arqc(key: keys[0], device: device, atc: 4, amount: "10.00", use: 2)
            if case .declined(_, let r) = try await f.tsp.validate(CryptogramCheck(token: number, data: data2, arqc: arqc2)) { Issue.record("second use declined: \(r)") }
            (data2, arqc2) = try Self.arqc(key: keys[0], device: device, atc: 5, amount: "1.00", use: 3)
            guard case .declined = try await f.tsp.validate(CryptogramCheck(token: number, data: data2, arqc: arqc2)) else {
                Issue.record("third use accepted"); return
            }
            // A key index never issued to this token.
            let forged = IssuedKey(index: LimitedUseKeyIndex(generatedAt: Date(), sequence: 99), sealedKey: keys[1].sealedKey, limits: keys[1].limits)
            let luk1 = try DeviceKeyWrap.open(keys[1].sealedKey, with: device, context: keys[1].index.bytes)
            _ = luk1
            let (data3, _) = try Self.arqc(key: keys[1], device: device, atc: 6, amount: "1.00")
            var iad = try CloudIAD(bytes: data3.iad)
            iad.keyIndex = forged.index
            let forgedData = try TransactionData(elements: data3.elements, iad: iad.bytes)
            guard case .declined(_, let notIssued) = try await f.tsp.validate(CryptogramCheck(token: number, data: forgedData, arqc: [UInt8](repeating: 0, count: 8))) else {
                Issue.record("forged key index accepted"); return
            }
            #expect(notIssued.contains("not issued"))
            // A token past its expiry month is declined 54, whatever its keys allow.
            let (data5, arqc5) = try Self.arqc(key: keys[1], device: device, atc: 8, amount: "1.00")
            try await f.db.sql.raw("UPDATE tsp_tokens SET token_expiry = '2510' WHERE id = \(bind: token.id)").run()
            let lastDay = try Date("2025-10-31T23:59:59Z", strategy: .iso8601), nextMonth = try Date("2025-11-01T00:00:00Z", strategy: .iso8601)
            #expect(try await f.tsp.read(CryptogramCheck(token: number, data: data5, arqc: arqc5, now: nextMonth), lookup: f.tsp.lookupHash(CryptogramCheck(token: number, data: data5, arqc: arqc5)))
                .declinedCode == "54")
            #expect(try await f.tsp.read(CryptogramCheck(token: number, data: data5, arqc: arqc5, now: lastDay), lookup: f.tsp.lookupHash(CryptogramCheck(token: number, data: data5, arqc: arqc5)))
                .declinedCode != "54")
            #expect(try await f.tsp.validate(CryptogramCheck(token: number, data: data5, arqc: arqc5)) == .declined(responseCode: "54", reason: "token expired 2510"))
            // A suspended token is declined in the cloud.
            try await f.tsp.change(tokenID: token.id, .suspend, actor: .cardholder, reason: .lost)
            let (data4, arqc4) = try Self.arqc(key: keys[1], device: device, atc: 7, amount: "1.00")
            #expect(try await f.tsp.validate(CryptogramCheck(token: number, data: data4, arqc: arqc4)) == .declined(responseCode: "62", reason: "token is suspended"))
        }
    }

    @Test("a token's next keys as a batch reads them: in order, each whole or dropped; a key's columns as a reading reads them")
    func nextKeysText() {
        let keys = LimitedUseKeyRow.list("7:490000:3:10:259200:200000:0:0,8:490000:4:10:259200:200000:2:1500")
        #expect(keys.map(\.id) == [7, 8] && keys.map(\.sequence) == [3, 4] && keys.map(\.hour) == [490_000, 490_000])
        #expect(keys[1].uses == 2 && keys[1].cumulative == 1500 && keys[1].maxTransactions == 10 && keys[1].ttlSeconds == 259_200)
        #expect(LimitedUseKeyRow.list(nil).isEmpty && LimitedUseKeyRow.list("").isEmpty)
        #expect(LimitedUseKeyRow.list("1:2:3,9:490000:5:10:259200:200000:0:0,x:1:2:3:4:5:6:7").map(\.id) == [9])
        let columns = keys[1].columns
        #expect(columns["luk_id"] == .integer(8) && columns["luk_state"] == .text("issued") && columns["atc_seen"] == .integer(0))
        #expect(columns["uses"] == .integer(2) && columns["cumulative"] == .integer(1500) && columns["max_amount"] == .integer(200_000))
    }

    @Test("a cryptogram read before the unit is recorded only if, by then, its ATC is unseen, its key has room and its token is active")
    func readThenRecord() async throws {
        try await TokenServiceTests.each("luk-read") { (f: TSPFixture) async throws -> Void in
            let (token, number, device) = try await Self.boundToken(f)
            try await f.tsp.change(tokenID: token.id, .activate, actor: .requestor, reason: .verified)
            let keys = try await f.tsp.issueKeys(tokenID: token.id, count: 2, limits: LimitedUseKeyLimits(maxTransactions: 2, maxCumulativeAmount: 10_000))
            func read(_ key: IssuedKey, atc: UInt16, amount: String, use: UInt8) async throws -> VerifiedCryptogram? {
                let (data, arqc) = try Self.arqc(key: key, device: device, atc: atc, amount: amount, use: use)
                let check = CryptogramCheck(token: number, data: data, arqc: arqc)
                guard case .verified(let verified) = try await f.tsp.read(check, lookup: try f.tsp.lookupHash(check)) else { return nil }
                return verified
            }
            func record(_ verified: VerifiedCryptogram) async throws -> CryptogramVerdict {
                try await f.db.transaction { tx in try await f.tsp.record(verified, in: tx) }
            }
            // Read twice, recorded once: the second finds the ATC seen.
            let once = try #require(try await read(keys[0], atc: 1, amount: "10.00", use: 1))
            #expect(try await record(once) == .valid(pan: TokenServiceTests.card, tokenID: token.id, keyIndex: keys[0].index))
            guard case .declined("05", let replay) = try await record(once) else { Issue.record("a replay recorded"); return }
            #expect(replay.contains("ATC 1 already used"))
            // Two readings of the key's last use: the first recorded takes it.
            let a = try #require(try await read(keys[0], atc: 2, amount: "10.00", use: 2))
            let b = try #require(try await read(keys[0], atc: 3, amount: "10.00", use: 2))
            guard case .valid = try await record(a) else { Issue.record("the key's second use refused"); return }
            guard case .declined("05", let full) = try await record(b) else { Issue.record("a third use recorded"); return }
            #expect(full.contains("limits were reached meanwhile"))
            // Suspended after the reading: refused, and the ATC not recorded.
            let late = try #require(try await read(keys[1], atc: 4, amount: "1.00", use: 1))
            try await f.tsp.change(tokenID: token.id, .suspend, actor: .cardholder, reason: .lost)
            #expect(try await record(late) == .declined(responseCode: "62", reason: "token is suspended"))
            try await f.tsp.change(tokenID: token.id, .resume, actor: .cardholder, reason: .found)
            guard case .valid = try await record(late) else { Issue.record("resumed token's reading refused"); return }
        }
    }
}

extension CryptogramReading {
    /// The response code of a decline; nil when the cryptogram verified.
    var declinedCode: String? {
        if case .declined(let code, _) = self { return code }
        return nil
    }
}
