import Foundation
import Testing
import PaymentCore
@testable import PaymentCrypto

@Suite("EMV key derivation and cryptograms")
struct CryptogramTests {
    struct EMVFile: Decodable {
        struct Derivation: Decodable { let imk, pan, psn, key: String }
        struct CSK: Decodable { let mk, r, key: String }
        struct AC: Decodable { let sk, data, ac, arpc1Arc, arpc1, arpc2Csu, arpc2: String }
        struct CVN18: Decodable { let imk, pan, psn, arqc, csu, arpc: String; let tags: [String: String] }
        struct UnionPay: Decodable { let mdk, pan, psn, atc, cardKey, sessionKeyInput, sessionKey: String }
        let optionA, optionB: Derivation
        let commonSessionKey: CSK
        let applicationCryptogram: AC
        let visaCVN18: CVN18
        let unionPay: UnionPay
    }

    @Test("option A, option B and the common session key match EMV Book 2 examples")
    func derivations() throws {
        let f = try loadVectors("emv", as: EMVFile.self)
        let a = f.optionA
        #expect(try EMVKeyDerivation.optionA(imk: hex(a.imk), pan: PAN(unchecked: a.pan), psn: a.psn).hexString == a.key)
        let b = f.optionB
        #expect(try EMVKeyDerivation.optionB(imk: hex(b.imk), pan: PAN(unchecked: b.pan), psn: b.psn).hexString == b.key)
        let c = f.commonSessionKey
        #expect(try EMVKeyDerivation.commonSessionKey(mk: hex(c.mk), r: hex(c.r)).hexString == c.key)
    }

    @Test("AC, ARPC method 1 and method 2 match the published examples")
    func acAndARPC() throws {
        let v = try loadVectors("emv", as: EMVFile.self).applicationCryptogram
        #expect(try ISO9797.retailMAC(hex(v.data), key: hex(v.sk), padding: .method2).hexString == v.ac)
        #expect(try Cryptogram.arpcMethod1(key: hex(v.sk), arqc: hex(v.ac), arc: hex(v.arpc1Arc), algorithm: .tdes).hexString == v.arpc1)
        #expect(try Cryptogram.arpcMethod2(key: hex(v.sk), arqc: hex(v.ac), csu: hex(v.arpc2Csu)).hexString == v.arpc2)
    }

    static func tags(_ t: [String: String]) -> [UInt32: [UInt8]] {
        var out: [UInt32: [UInt8]] = [:]
        for (k, v) in t { out[UInt32(k, radix: 16)!] = hex(v) }
        return out
    }

    @Test("Visa CVN 18 ARQC and ARPC match the published example")
    func visaCVN18() throws {
        let v = try loadVectors("emv", as: EMVFile.self).visaCVN18
        let data = try TransactionData(values: Self.tags(v.tags))
        let pan = try PAN(unchecked: v.pan)
        let key = try Cryptogram.cardKey(profile: .visaCVN18, imk: hex(v.imk), pan: pan, psn: v.psn, iad: data.iad)
        let arqc = try Cryptogram.generate(profile: .visaCVN18, cardKey: key, data: data)
        #expect(arqc.hexString == v.arqc)
        #expect(try Cryptogram.verify(profile: .visaCVN18, imk: hex(v.imk), pan: pan, psn: v.psn, data: data, arqc: arqc))
        #expect(try Cryptogram.arpc(profile: .visaCVN18, cardKey: key, data: data, arqc: arqc, csu: hex(v.csu)).hexString == v.arpc)
    }

    @Test("UnionPay card key and session key match the PBOC worked example")
    func unionPay() throws {
        let v = try loadVectors("emv", as: EMVFile.self).unionPay
        let cardKey = try EMVKeyDerivation.optionA(imk: hex(v.mdk), pan: PAN(unchecked: v.pan), psn: v.psn, oddParity: false)
        #expect(cardKey.hexString == v.cardKey)
        let adjusted = try EMVKeyDerivation.optionA(imk: hex(v.mdk), pan: PAN(unchecked: v.pan), psn: v.psn)
        #expect(adjusted == KeyTools.oddParity(hex(v.cardKey)))
        #expect(try EMVKeyDerivation.unionPaySessionKey(cardKey: adjusted, atc: hex(v.atc)).hexString == v.sessionKey)
        #expect(try EMVKeyDerivation.unionPaySessionKey(cardKey: cardKey, atc: hex(v.atc)).hexString == v.sessionKey)
    }

    struct Cross: Decodable {
        struct K: Decodable { let imk, pan, psn, optionA, optionB: String }
        struct P: Decodable { let profile, imk, pan, psn, elements, iad, arqc, arpc: String; let arc: String?; let csu: String? }
        let cardKeys: [K]; let profiles: [P]
    }

    @Test("card keys and Visa CVN 10 / 18 and Mastercard CVN 16 cryptograms match pyemv")
    func pyemvCrossCheck() throws {
        let f = try loadVectors("crosscheck-emv", as: Cross.self)
        for k in f.cardKeys {
            let pan = try PAN(unchecked: k.pan)
            #expect(try EMVKeyDerivation.optionA(imk: hex(k.imk), pan: pan, psn: k.psn).hexString == k.optionA)
            #expect(try EMVKeyDerivation.optionB(imk: hex(k.imk), pan: pan, psn: k.psn).hexString == k.optionB)
        }
        for p in f.profiles {
            let profile = try #require(CryptogramProfile.named(p.profile))
            let data = try TransactionData(elements: hex(p.elements), iad: hex(p.iad))
            let pan = try PAN(unchecked: p.pan)
            let key = try Cryptogram.cardKey(profile: profile, imk: hex(p.imk), pan: pan, psn: p.psn, iad: data.iad)
            #expect(try Cryptogram.generate(profile: profile, cardKey: key, data: data).hexString == p.arqc, "\(profile)")
            let arpc = try Cryptogram.arpc(profile: profile, cardKey: key, data: data, arqc: hex(p.arqc),
                                           arc: hex(p.arc ?? "3030"), csu: hex(p.csu ?? "00000000"))
            #expect(arpc.hexString == p.arpc, "\(profile) ARPC")
        }
    }

    /// Transaction data with a profile-appropriate IAD.
    static func sampleData(profile: CryptogramProfile, rng: inout SplitMix64) throws -> TransactionData {
        let iad: [UInt8]
        switch profile.sessionKey {
        case .limitedUseKey:
            iad = CloudIAD(dki: 1, cvr: [0x03, 0xA0, 0x00, 0x00], algorithm: profile.algorithm,
                           keyIndex: LimitedUseKeyIndex(generationHour: 60_000, sequence: 7), useCount: 1).bytes
        case .emvCommonATCUN:
            iad = hex("0110A00003220000000000000000000000FF")
        default:
            iad = profile.cvn == 0x01 ? UnionPayIAD(cvr: [0x03, 0xA0, 0x00, 0x00], algorithm: profile.algorithm).bytes : hex("06011203A0B800")
        }
        return try TransactionData(elements: rng.bytes(33), iad: iad)
    }

    @Test("for every profile an ARQC made on the card side verifies on the issuer side, and any changed byte fails",
          arguments: CryptogramProfile.all)
    func cardToIssuer(profile: CryptogramProfile) throws {
        var rng = SplitMix64(seed: UInt64(profile.cvn) &* 31 &+ (profile.algorithm == .sm4 ? 7 : 0))
        let imk = KeyTools.oddParity(rng.bytes(16))
        let pan = try PAN("6234567890123456780")
        for _ in 0..<5 {
            let data = try Self.sampleData(profile: profile, rng: &rng)
            let cardKey = try Cryptogram.cardKey(profile: profile, imk: imk, pan: pan, psn: "01", iad: data.iad)
            let arqc = try Cryptogram.generate(profile: profile, cardKey: cardKey, data: data)
            #expect(try Cryptogram.verify(profile: profile, imk: imk, pan: pan, psn: "01", data: data, arqc: arqc))
            // Each byte of the covered data, and each byte of the ARQC, matters.
            for i in 0..<data.elements.count {
                var e = data.elements
                e[i] ^= 0x01
                let changed = try TransactionData(elements: e, iad: data.iad)
                #expect(try !Cryptogram.verify(profile: profile, imk: imk, pan: pan, psn: "01", data: changed, arqc: arqc), "byte \(i)")
            }
            for i in 0..<8 {
                var a = arqc
                a[i] ^= 0x80
                #expect(try !Cryptogram.verify(profile: profile, imk: imk, pan: pan, psn: "01", data: data, arqc: a))
            }
            // The covered part of the IAD matters too (the CVR, or all of it).
            let covered: Range<Int> = switch profile.acData {
            case .cvr(let offset, let length): offset..<offset + length
            case .fullIAD: 0..<data.iad.count
            }
            for i in covered where !(profile.sessionKey == .limitedUseKey && [0, 2, 7].contains(i)) {
                var iad = data.iad
                iad[i] ^= 0x01
                let changed = try TransactionData(elements: data.elements, iad: iad)
                #expect(try !Cryptogram.verify(profile: profile, imk: imk, pan: pan, psn: "01", data: changed, arqc: arqc), "IAD byte \(i)")
            }
            // Another card's key does not verify.
            #expect(try !Cryptogram.verify(profile: profile, imk: imk, pan: PAN("6234567890123456798"), psn: "01", data: data, arqc: arqc))
            // The ARPC the issuer makes is what the card expects.
            let arpc = try Cryptogram.arpc(profile: profile, cardKey: cardKey, data: data, arqc: arqc)
            #expect(arpc.count == (profile.arpcMethod == .method1 ? 8 : 4))
        }
    }

    @Test("limited-use key limits: count, age and cumulative amount")
    func lukLimits() throws {
        let index = LimitedUseKeyIndex(generatedAt: Date(timeIntervalSince1970: 1_790_000_000), sequence: 3)
        let limits = LimitedUseKeyLimits(maxTransactions: 5, timeToLive: 24 * 3600, maxCumulativeAmount: 100_000)
        let now = index.generatedAt.addingTimeInterval(3600)
        #expect(limits.violations(index: index, useCount: 5, cumulativeAmount: 100_000, now: now).isEmpty)
        #expect(limits.violations(index: index, useCount: 6, cumulativeAmount: 0, now: now) == [.tooManyTransactions(used: 6, limit: 5)])
        #expect(limits.violations(index: index, useCount: 1, cumulativeAmount: 100_001, now: now) == [.amountExceeded(cumulative: 100_001, limit: 100_000)])
        let late = index.generatedAt.addingTimeInterval(26 * 3600)
        #expect(limits.violations(index: index, useCount: 1, cumulativeAmount: 0, now: late).count == 1)
        #expect(try LimitedUseKeyIndex(bytes: index.bytes) == index)
        let wide = LimitedUseKeyIndex(generationHour: 0x12_3456, sequence: 0xABCD)
        #expect(wide.bytes == [0x12, 0x34, 0x56, 0xAB, 0xCD])
        #expect(wide.derivationData == [0x4C, 0x12, 0x34, 0x56, 0xAB, 0xCD, 0x00, 0x00])
        #expect(wide.description == "123456ABCD (hour 1193046, #43981)")
    }

    @Test("the cloud IAD round-trips and rejects malformed bytes")
    func cloudIAD() throws {
        let iad = CloudIAD(dki: 2, cvr: [3, 0x90, 0, 0], algorithm: .sm4, keyIndex: LimitedUseKeyIndex(generationHour: 1234, sequence: 9), useCount: 4)
        #expect(iad.bytes.count == 14)
        #expect(try CloudIAD(bytes: iad.bytes) == iad)
        var bad = iad.bytes
        bad[2] = 0x01
        #expect(throws: CryptoError.self) { try CloudIAD(bytes: bad) }
        #expect(throws: CryptoError.self) { try CloudIAD(bytes: Array(iad.bytes.prefix(10))) }
    }
}
