import Testing
import PaymentCore
@testable import PaymentCrypto

@Test func desQuick() throws {
    let des = try Legacy.TripleDES(key: [UInt8](hex: "133457799BBCDFF1"))
    #expect(des.encrypt(block: try [UInt8](hex: "0123456789ABCDEF")).hexString == "85E813540F0AB405")
    #expect(des.decrypt(block: try [UInt8](hex: "85E813540F0AB405")).hexString == "0123456789ABCDEF")
    let sm4 = try SM4(key: [UInt8](hex: "0123456789ABCDEFFEDCBA9876543210"))
    #expect(sm4.encrypt(block: try [UInt8](hex: "0123456789ABCDEFFEDCBA9876543210")).hexString == "681EDF34D206965E86B3E94F536E4246")
    #expect(sm4.decrypt(block: try [UInt8](hex: "681EDF34D206965E86B3E94F536E4246")).hexString == "0123456789ABCDEFFEDCBA9876543210")
}
