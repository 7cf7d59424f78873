/// What a key held by the key component is for, with its TR-31 key usage code.
public enum KeyUsage: String, Sendable, Hashable, CaseIterable, Codable {
    /// "E0" EMV issuer master key for application cryptograms (IMK-AC).
    case issuerMasterKeyAC = "E0"
    /// "E1" EMV issuer master key for secure messaging confidentiality.
    case issuerMasterKeySMC = "E1"
    /// "E2" EMV issuer master key for secure messaging integrity.
    case issuerMasterKeySMI = "E2"
    /// "E6" EMV issuer master key, other (dCVV, CVC3).
    case issuerMasterKeyOther = "E6"
    /// "P0" PIN encryption (terminal PIN keys, zone PIN keys).
    case pinEncryption = "P0"
    /// "V1" PIN verification, IBM 3624.
    case pinVerificationIBM3624 = "V1"
    /// "V2" PIN verification, Visa PVV.
    case pinVerificationVisaPVV = "V2"
    /// "C0" card verification key (CVV/CVC).
    case cardVerification = "C0"
    /// "K0" key encryption or wrapping.
    case keyEncryption = "K0"
    /// "D0" symmetric data encryption (the vault's key-encryption key).
    case dataEncryption = "D0"
    /// "M3" ISO 9797-1 MAC algorithm 3 (ISO 8583 message MACs).
    case macAlgorithm3 = "M3"
    /// "M6" ISO 9797-1 MAC algorithm 5, CMAC.
    case cmac = "M6"

    /// The TR-31 mode of use that goes with this usage.
    var modeOfUse: Character {
        switch self {
        case .issuerMasterKeyAC, .issuerMasterKeySMC, .issuerMasterKeySMI, .issuerMasterKeyOther: return "X"
        case .pinEncryption, .keyEncryption, .dataEncryption: return "B"
        case .pinVerificationIBM3624, .pinVerificationVisaPVV, .cardVerification, .macAlgorithm3, .cmac: return "C"
        }
    }
}

/// Public facts about a held key: never the key itself.
public struct KeyInfo: Sendable, Hashable, Codable, CustomStringConvertible {
    public let name: String
    public let usage: KeyUsage
    public let algorithm: KeyAlgorithm
    public let lengthBits: Int
    /// Key check value, 3 bytes in hex.
    public let kcv: String

    public var description: String { "\(name) [\(usage.rawValue) \(algorithm.rawValue)-\(lengthBits) KCV \(kcv)]" }
}
