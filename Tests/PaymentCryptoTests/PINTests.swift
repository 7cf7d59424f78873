import Testing
import PaymentCore
@testable import PaymentCrypto

@Suite("PIN blocks, PIN verification and card verification values")
struct PINTests {
    struct Published: Decodable {
        struct F0: Decodable { let pin, pan, clear: String }
        struct CVV: Decodable { let cvk, pan, expiry, serviceCode, cvv: String }
        struct PVV: Decodable { let pvk, pan: String; let pvki: Int; let pin, pvv: String }
        struct IBM: Decodable { let pvk, pan, decimalizationTable, validationData, pin, offset: String }
        let format0: [F0]; let cvv: CVV; let pvv: PVV; let ibm3624: IBM
    }

    @Test("ISO 9564 format 0, Visa CVV, PVV and IBM 3624 match the published examples")
    func published() throws {
        let f = try loadVectors("pin-cvv", as: Published.self)
        for v in f.format0 {
            let block = try PINBlock.encode(pin: v.pin, format: .iso0, pan: PAN(unchecked: v.pan))
            #expect(block.bytes.hexString == v.clear)
            #expect(try block.decodePIN(pan: PAN(unchecked: v.pan)) == v.pin)
        }
        let c = f.cvv
        #expect(try CardVerification.cvv(cvk: hex(c.cvk), pan: PAN(unchecked: c.pan), expiry: c.expiry, serviceCode: c.serviceCode) == c.cvv)
        let p = f.pvv
        #expect(try PINVerification.visaPVV(pvk: hex(p.pvk), pan: PAN(unchecked: p.pan), pvki: p.pvki, pin: p.pin) == p.pvv)
        let i = f.ibm3624
        #expect(try PINVerification.ibm3624Offset(pvk: hex(i.pvk), validationData: hex(i.validationData), decimalizationTable: i.decimalizationTable, pin: i.pin) == i.offset)
        #expect(try PINVerification.ibm3624PIN(pvk: hex(i.pvk), validationData: hex(i.validationData), decimalizationTable: i.decimalizationTable, offset: i.offset) == i.pin)
    }

    struct Cross: Decodable {
        struct B: Decodable { let format: Int; let pin, pan: String; let clear, key, enciphered: String? }
        struct PVV: Decodable { let pvk, pan: String; let pvki: Int; let pin, pvv: String }
        struct IBM: Decodable { let pvk, pan, validationData, decimalizationTable, pin, offset: String }
        struct CVV: Decodable { let cvk, pan, expiry, serviceCode, cvv: String }
        struct CVC3: Decodable { let cardKey, track, atc, un, cvc3: String }
        let pinBlocks: [B]; let pvv: [PVV]; let ibm3624: [IBM]; let cvv: [CVV]; let cvc3: [CVC3]
    }

    @Test("PIN blocks (formats 0, 3, 4), PVV, IBM 3624, CVV and CVC3 agree with psec and pyemv")
    func crossCheck() throws {
        let f = try loadVectors("crosscheck-pin-cvv", as: Cross.self)
        for b in f.pinBlocks {
            let pan = try PAN(unchecked: b.pan)
            switch b.format {
            case 0:
                #expect(try PINBlock.encode(pin: b.pin, format: .iso0, pan: pan).bytes.hexString == b.clear)
            case 3:
                #expect(try PINBlock(format: .iso3, bytes: hex(b.clear!)).decodePIN(pan: pan) == b.pin)
            default:
                let enc = EncryptedPINBlock(format: .iso4, bytes: hex(b.enciphered!))
                #expect(try ISO9564.decipher(enc, key: hex(b.key!), pan: pan).decodePIN(pan: pan) == b.pin)
            }
        }
        for v in f.pvv {
            #expect(try PINVerification.visaPVV(pvk: hex(v.pvk), pan: PAN(unchecked: v.pan), pvki: v.pvki, pin: v.pin) == v.pvv)
        }
        for v in f.ibm3624 {
            #expect(try PINVerification.ibm3624Offset(pvk: hex(v.pvk), validationData: hex(v.validationData), decimalizationTable: v.decimalizationTable, pin: v.pin) == v.offset)
        }
        for v in f.cvv {
            #expect(try CardVerification.cvv(cvk: hex(v.cvk), pan: PAN(unchecked: v.pan), expiry: v.expiry, serviceCode: v.serviceCode) == v.cvv)
        }
        for v in f.cvc3 {
            #expect(try CardVerification.cvc3(cardKey: hex(v.cardKey), trackData: hex(v.track), unpredictableNumber: hex(v.un), atc: hex(v.atc)) == v.cvc3)
        }
    }

    @Test("encode/decode round trip for every format and many PINs", arguments: PINBlockFormat.allCases)
    func roundTrip(format: PINBlockFormat) throws {
        var rng = SplitMix64(seed: UInt64(format.rawValue) + 1)
        let pans = ["6210220110002707355", "4761739001010010", "5544332211009966"].map { try! PAN(unchecked: $0) }
        for _ in 0..<300 {
            let pin = String((0..<Int.random(in: 4...12, using: &rng)).map { _ in Character(String(Int.random(in: 0...9, using: &rng))) })
            let pan = pans[Int.random(in: 0..<3, using: &rng)]
            let block = try PINBlock.encode(pin: pin, format: format, pan: pan, using: &rng)
            #expect(block.bytes.count == format.blockLength)
            #expect(try block.decodePIN(pan: pan) == pin)
            let key = format == .iso4 ? rng.bytes(16) : rng.bytes(16)
            let enc = try ISO9564.encipher(block, key: key, pan: pan)
            #expect(try ISO9564.decipher(enc, key: key, pan: pan).decodePIN(pan: pan) == pin)
        }
    }

    @Test("translation from the terminal's key and token to the issuer's key and card number")
    func translate() throws {
        var rng = SplitMix64(seed: 9)
        let tpk = rng.bytes(16), zpk = rng.bytes(16), aesZone = rng.bytes(16)
        let token = try PAN("6234567890123456780"), card = try PAN("6210220110002707354")
        let atPOS = try ISO9564.encipher(PINBlock.encode(pin: "135790", format: .iso0, pan: token), key: tpk, pan: token)
        let toIssuer = try ISO9564.translate(atPOS, from: .init(key: tpk, format: .iso0, pan: token), to: .init(key: zpk, format: .iso0, pan: card))
        #expect(try ISO9564.decipher(toIssuer, key: zpk, pan: card).decodePIN(pan: card) == "135790")
        let fast = try ISO9564.translateFormat0(atPOS.bytes, from: Legacy.TripleDES(key: tpk), sourcePAN: token, to: Legacy.TripleDES(key: zpk), destinationPAN: card)
        #expect(fast == toIssuer.bytes)
        let toAES = try ISO9564.translate(atPOS, from: .init(key: tpk, format: .iso0, pan: token), to: .init(key: aesZone, format: .iso4, pan: card))
        #expect(try ISO9564.decipher(toAES, key: aesZone, pan: card).decodePIN(pan: card) == "135790")
        // The wrong source key is caught by the format checks (almost surely), never silently passed on.
        #expect(throws: (any Error).self) {
            _ = try ISO9564.translateFormat0(atPOS.bytes, from: Legacy.TripleDES(key: zpk), sourcePAN: token, to: Legacy.TripleDES(key: zpk), destinationPAN: card)
        }
    }

    @Test("bad PINs are refused and errors never carry the PIN")
    func badInput() throws {
        #expect(throws: PINBlock.Error.pinLength(3)) { try PINBlock.encode(pin: "123", format: .iso0, pan: PAN("4761739001010010")) }
        #expect(throws: PINBlock.Error.pinNotDigits) { try PINBlock.encode(pin: "12a4", format: .iso0, pan: PAN("4761739001010010")) }
        #expect(throws: PINBlock.Error.panRequired) { try PINBlock.encode(pin: "1234", format: .iso3, pan: nil) }
        let block = try PINBlock.encode(pin: "987654", format: .iso1, pan: nil)
        #expect(!String(describing: block).contains("987654"))
        #expect(!String(describing: block).contains(block.bytes.hexString))
    }
}
