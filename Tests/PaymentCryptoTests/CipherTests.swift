import TestSupport
import Testing
import PaymentCore
@testable import PaymentCrypto

@Suite("Block ciphers")
struct CipherTests {
    @Test("DES and 3DES match NIST SP 800-17, SP 800-67 and the FIPS 46 example", arguments: ["des", "crosscheck-des"])
    func desVectors(file: String) throws {
        let f = try loadVectors(file, as: CipherFile.self)
        #expect(!f.vectors.isEmpty)
        for v in f.vectors {
            let c = try Legacy.TripleDES(key: hex(v.key))
            #expect(c.encrypt(block: hex(v.plaintext)).hexString == v.ciphertext, "\(f.source): key \(v.key)")
            #expect(c.decrypt(block: hex(v.ciphertext)).hexString == v.plaintext)
        }
    }

    @Test("AES matches FIPS 197")
    func aesVectors() throws {
        let f = try loadVectors("aes", as: CipherFile.self)
        for v in f.vectors {
            let c = try AESCipher(key: hex(v.key))
            #expect(c.encrypt(block: hex(v.plaintext)).hexString == v.ciphertext)
            #expect(c.decrypt(block: hex(v.ciphertext)).hexString == v.plaintext)
        }
    }

    struct SM4File: Decodable { let key, plaintext, ciphertext: String; let iterations: Int; let ciphertextAfterIterations: String }

    @Test("SM4 matches GB/T 32907-2016 Annex A, including a million iterations")
    func sm4Vectors() async throws {
        try await onOwnThread {
            let f = try loadVectors("sm4", as: SM4File.self)
            let c = try SM4(key: hex(f.key))
            #expect(c.encrypt(block: hex(f.plaintext)).hexString == f.ciphertext)
            #expect(c.decrypt(block: hex(f.ciphertext)).hexString == f.plaintext)
            var block = hex(f.plaintext)
            for _ in 0..<f.iterations { block = c.encrypt(block: block) }
            #expect(block.hexString == f.ciphertextAfterIterations)
        }
    }

    @Test("SM4 S-box is a permutation")
    func sm4SboxIsPermutation() {
        #expect(Set(SM4.sbox).count == 256)
    }

    @Test("decrypt(encrypt(x)) == x for random 3DES, SM4 and AES keys and blocks")
    func roundTrips() throws {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<500 {
            for keyLength in [8, 16, 24] {
                let c = try Legacy.TripleDES(key: rng.bytes(keyLength))
                let x = rng.bytes(8)
                #expect(c.decrypt(block: c.encrypt(block: x)) == x)
            }
            let s = try SM4(key: rng.bytes(16))
            let y = rng.bytes(16)
            #expect(s.decrypt(block: s.encrypt(block: y)) == y)
            #expect(try s.decryptCBC(s.encryptCBC(y + y)) == y + y)
        }
    }

    @Test("keys of the wrong length are refused with a clear error")
    func badKeys() {
        #expect(throws: CryptoError.self) { try Legacy.TripleDES(key: [1, 2, 3]) }
        #expect(throws: CryptoError.self) { try SM4(key: [UInt8](repeating: 0, count: 8)) }
        #expect(throws: CryptoError.self) { try AESCipher(key: [UInt8](repeating: 0, count: 15)) }
        #expect(throws: CryptoError.self) { try Legacy.TripleDES(key: hex("0123456789ABCDEF")).encryptECB([1, 2, 3]) }
    }

    @Test("a cipher describes itself by KCV, never by key")
    func descriptionHidesKey() throws {
        let key = hex("0123456789ABCDEFFEDCBA9876543210")
        let d = String(describing: try Legacy.TripleDES(key: key))
        #expect(d.contains("KCV 08D7B4"))
        #expect(!d.contains("0123456789ABCDEF"))
    }
}
