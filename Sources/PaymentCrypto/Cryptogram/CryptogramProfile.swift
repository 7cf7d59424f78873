/// Everything a cryptogram version number (CVN) fixes: how the card key is derived from the
/// issuer master key, how a session key is derived, which data the MAC covers with which
/// padding, and how the ARPC is made.
public struct CryptogramProfile: Sendable, Hashable, CustomStringConvertible {
    public enum CardKeyMethod: String, Sendable, Hashable {
        /// EMV 4.4 Book 2 A1.4.1.
        case optionA
        /// EMV 4.4 Book 2 A1.4.2 (option A for PANs of 16 digits or fewer).
        case optionB
    }

    public enum SessionKeyMethod: String, Sendable, Hashable {
        /// The card key itself is the AC key (Visa CVN 10).
        case none
        /// EMV common session key with R = ATC ‖ 00…00 (Visa CVN 18).
        case emvCommonATC
        /// EMV common session key with R = ATC ‖ 0000 ‖ UN (Mastercard SKD as used by CVN 16).
        case emvCommonATCUN
        /// UnionPay/PBOC: ALG(MK)[00…00‖ATC‖00…00‖~ATC].
        case unionPay
        /// The limited-use key, derived from the card key and the key index in the IAD, is
        /// itself the AC key (CloudTap cloud CVN).
        case limitedUseKey
    }

    public enum ACData: Sendable, Hashable {
        /// The minimum data set then `length` CVR bytes taken from the IAD at `offset`.
        case cvr(offset: Int, length: Int)
        /// The minimum data set then the whole IAD (Visa CVN 18, CloudTap cloud).
        case fullIAD
    }

    public enum ARPCMethod: String, Sendable, Hashable {
        /// EMV 4.4 Book 2 §8.2.1: ALG(K)[ARQC ⊕ ARC‖00…], 8 bytes.
        case method1
        /// EMV 4.4 Book 2 §8.2.2: MAC(SK)[ARQC ‖ CSU ‖ proprietary data], 4 bytes.
        case method2
    }

    public enum ARPCKey: String, Sendable, Hashable {
        /// The AC session key (or the limited-use key).
        case session
        /// The card master key.
        case card
    }

    public let name: String
    /// The CVN byte as it appears in the IAD.
    public let cvn: UInt8
    public let algorithm: KeyAlgorithm
    public let cardKey: CardKeyMethod
    public let sessionKey: SessionKeyMethod
    public let acData: ACData
    public let padding: MACPadding
    public let arpcMethod: ARPCMethod
    public let arpcKey: ARPCKey

    public init(
        name: String, cvn: UInt8, algorithm: KeyAlgorithm, cardKey: CardKeyMethod, sessionKey: SessionKeyMethod,
        acData: ACData, padding: MACPadding, arpcMethod: ARPCMethod, arpcKey: ARPCKey
    ) {
        self.name = name
        self.cvn = cvn
        self.algorithm = algorithm
        self.cardKey = cardKey
        self.sessionKey = sessionKey
        self.acData = acData
        self.padding = padding
        self.arpcMethod = arpcMethod
        self.arpcKey = arpcKey
    }

    public var description: String { name }

    /// UnionPay CVN 01 (PBOC 2.0/3.0 qPBOC, 3DES). IAD: 07 DKI CVN CVR(4) 01.
    public static let unionPayCVN01 = CryptogramProfile(
        name: "UnionPay CVN 01 (3DES)", cvn: 0x01, algorithm: .tdes, cardKey: .optionA, sessionKey: .unionPay,
        acData: .cvr(offset: 3, length: 4), padding: .method2, arpcMethod: .method1, arpcKey: .session)

    /// UnionPay CVN 01 with the SM4 algorithm (PBOC 3.0 algorithm id 04): SM4 card and session
    /// keys, SM4 CBC-MAC (ISO 9797-1 algorithm 1, padding 2) truncated to 8 bytes.
    public static let unionPaySM4 = CryptogramProfile(
        name: "UnionPay CVN 01 (SM4, algorithm 04)", cvn: 0x01, algorithm: .sm4, cardKey: .optionA, sessionKey: .unionPay,
        acData: .cvr(offset: 3, length: 4), padding: .method2, arpcMethod: .method1, arpcKey: .session)

    /// Visa CVN 10: card key used directly, MAC padding method 1, CVR from the IAD, ARPC method 1 under the card key.
    public static let visaCVN10 = CryptogramProfile(
        name: "Visa CVN 10", cvn: 0x0A, algorithm: .tdes, cardKey: .optionA, sessionKey: .none,
        acData: .cvr(offset: 3, length: 4), padding: .method1, arpcMethod: .method1, arpcKey: .card)

    /// Visa CVN 18: option B, EMV common session key (R = ATC‖00…), the whole IAD, padding 2, ARPC method 2.
    public static let visaCVN18 = CryptogramProfile(
        name: "Visa CVN 18", cvn: 0x12, algorithm: .tdes, cardKey: .optionB, sessionKey: .emvCommonATC,
        acData: .fullIAD, padding: .method2, arpcMethod: .method2, arpcKey: .session)

    /// Mastercard CVN 16 (M/Chip): option A, session key R = ATC‖0000‖UN, 6-byte CVR from the
    /// IAD, padding 2, ARPC method 1 under the card key.
    public static let mastercardCVN16 = CryptogramProfile(
        name: "Mastercard CVN 16", cvn: 0x10, algorithm: .tdes, cardKey: .optionA, sessionKey: .emvCommonATCUN,
        acData: .cvr(offset: 2, length: 6), padding: .method2, arpcMethod: .method1, arpcKey: .card)

    /// CloudTap's cloud CVN (3DES): limited-use keys, whole IAD covered. See docs/cloud-cvn.md.
    public static let cloud = CryptogramProfile(
        name: "CloudTap cloud CVN 41 (3DES)", cvn: 0x41, algorithm: .tdes, cardKey: .optionA, sessionKey: .limitedUseKey,
        acData: .fullIAD, padding: .method2, arpcMethod: .method1, arpcKey: .session)

    /// CloudTap's cloud CVN with SM4 (algorithm id 04).
    public static let cloudSM4 = CryptogramProfile(
        name: "CloudTap cloud CVN 41 (SM4)", cvn: 0x41, algorithm: .sm4, cardKey: .optionA, sessionKey: .limitedUseKey,
        acData: .fullIAD, padding: .method2, arpcMethod: .method1, arpcKey: .session)

    public static let all: [CryptogramProfile] = [unionPayCVN01, unionPaySM4, visaCVN10, visaCVN18, mastercardCVN16, cloud, cloudSM4]

    /// Looks a profile up by the short names the CLI uses.
    public static func named(_ name: String) -> CryptogramProfile? {
        switch name.lowercased() {
        case "01", "1", "cvn01", "unionpay", "up01": return .unionPayCVN01
        case "sm4", "01-sm4", "unionpay-sm4", "up-sm4": return .unionPaySM4
        case "10", "visa10", "cvn10": return .visaCVN10
        case "18", "visa18", "cvn18": return .visaCVN18
        case "16", "mc16", "cvn16", "mastercard16": return .mastercardCVN16
        case "cloud", "41", "cvn41": return .cloud
        case "cloud-sm4", "41-sm4": return .cloudSM4
        default: return nil
        }
    }
}
