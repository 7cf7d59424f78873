import Testing
import PaymentCore
@testable import PaymentCrypto

@Suite("MACs and key tools")
struct MACTests {
    struct RFC4493: Decodable { let key: String; let vectors: [V]; struct V: Decodable { let message, mac: String } }

    @Test("AES-CMAC matches RFC 4493, through swift-crypto and through the generic CMAC")
    func aesCMAC() throws {
        let f = try loadVectors("rfc4493", as: RFC4493.self)
        for v in f.vectors {
            #expect(try AESCMAC.mac(hex(v.message), key: hex(f.key)).hexString == v.mac)
            #expect(CMAC.mac(hex(v.message), cipher: try AESCipher(key: hex(f.key))).hexString == v.mac)
        }
    }

    struct Cross: Decodable {
        let iso9797: [M]; let aesCMAC: [C]
        struct M: Decodable { let algorithm, padding: Int; let key, data, mac: String }
        struct C: Decodable { let key, data, mac: String }
    }

    @Test("ISO 9797-1 algorithms 1 and 3 with padding 1 and 2 match psec")
    func iso9797() throws {
        let f = try loadVectors("crosscheck-mac", as: Cross.self)
        for v in f.iso9797 {
            let padding = MACPadding(rawValue: v.padding)!
            let mac = v.algorithm == 3
                ? try ISO9797.retailMAC(hex(v.data), key: hex(v.key), padding: padding)
                : ISO9797.mac1(hex(v.data), cipher: try Legacy.TripleDES(key: hex(v.key)), padding: padding)
            #expect(mac.hexString == v.mac, "algorithm \(v.algorithm) padding \(v.padding) data \(v.data.count / 2) bytes")
        }
        for v in f.aesCMAC {
            #expect(try AESCMAC.mac(hex(v.data), key: hex(v.key)).hexString == v.mac)
        }
    }

    @Test("SM4 CBC-MAC is algorithm 1 over SM4")
    func sm4MAC() throws {
        let key = hex("0123456789ABCDEFFEDCBA9876543210")
        let sm4 = try SM4(key: key)
        let data = hex("0123456789ABCDEFFEDCBA9876543210")
        // One full block with padding 2 adds a second block of 80 00…: MAC = E(E(x) ⊕ 80…).
        let expected = sm4.encrypt(block: xor(sm4.encrypt(block: data), [0x80] + [UInt8](repeating: 0, count: 15)))
        #expect(ISO9797.mac1(data, cipher: sm4, padding: .method2) == expected)
    }

    @Test("KCV, odd parity and variants")
    func keyTools() throws {
        #expect(try KeyTools.kcv(hex("0123456789ABCDEFFEDCBA9876543210"), algorithm: .tdes).hexString == "08D7B4")
        let adjusted = KeyTools.oddParity(hex("0022446688AACCEE"))
        #expect(adjusted.hexString == "0123456789ABCDEF")
        #expect(KeyTools.hasOddParity(adjusted))
        #expect(!KeyTools.hasOddParity(hex("0022446688AACCEE")))
        #expect(KeyTools.variant(hex("00000000000000001111111111111111"), 0xA6).hexString == "A600000000000000B711111111111111")
        // AES KCV is the CMAC of a zero block (X9.24-1:2017).
        let aesKey = hex("2B7E151628AED2A6ABF7158809CF4F3C")
        #expect(try KeyTools.kcv(aesKey, algorithm: .aes) == Array(try AESCMAC.mac([UInt8](repeating: 0, count: 16), key: aesKey).prefix(3)))
    }

    @Test("padding methods", arguments: [0, 1, 7, 8, 9, 16])
    func padding(length: Int) {
        let data = [UInt8](repeating: 0x11, count: length)
        let p1 = MACPadding.method1.pad(data, blockSize: 8)
        let p2 = MACPadding.method2.pad(data, blockSize: 8)
        #expect(p1.count % 8 == 0 && p1.count >= max(length, 8))
        #expect(p2.count % 8 == 0 && p2.count > length && p2[length] == 0x80)
    }
}
