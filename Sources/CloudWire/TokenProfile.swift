import Crypto
import Foundation
import PaymentCore
import PaymentCrypto

/// What a phone needs to emulate the card: the token number, its expiry and sequence number and
/// the cryptogram profile. Travels only encrypted to the device key.
public struct TokenProfile: Sendable, Hashable, Codable {
    public var token: String
    public var expiry: String
    public var psn: String
    public var cryptogramProfile: String

    /// The associated data binding a sealed profile to its purpose.
    public static let sealContext = Array("cloudtap-token-profile-v1".utf8)

    public init(token: String, expiry: String, psn: String, cryptogramProfile: String) {
        self.token = token
        self.expiry = expiry
        self.psn = psn
        self.cryptogramProfile = cryptogramProfile
    }

    /// Opens a sealed profile with the device's private key.
    public static func open(_ sealed: [UInt8], with device: P256.KeyAgreement.PrivateKey) throws -> TokenProfile {
        try JSONDecoder().decode(TokenProfile.self, from: Data(DeviceKeyWrap.open(sealed, with: device, context: sealContext)))
    }
}
