import Crypto
import Foundation

/// Keys sent to a phone, encrypted to its device key (P-256): ECIES with an ephemeral P-256
/// key agreement, HKDF-SHA-256 and AES-256-GCM. The phone's wallet opens them with its private
/// key; nothing else can.
///
///     sealed = ephemeral public key (65 bytes, X9.63) ‖ nonce (12) ‖ ciphertext ‖ tag (16)
///     key    = HKDF-SHA-256(ECDH(ephemeral, device), salt: "CloudTap device key wrap v1", info: context, 32 bytes)
///
/// `context` (the limited-use key's index, say) is bound as HKDF info and as GCM associated data.
public enum DeviceKeyWrap {
    static let salt = Array("CloudTap device key wrap v1".utf8)

    public static func seal(_ plaintext: [UInt8], to device: P256.KeyAgreement.PublicKey, context: [UInt8]) throws -> [UInt8] {
        try seal([(plaintext, context)], to: device)[0]
    }

    /// Several plaintexts, each under its own context, to one device with one ephemeral key:
    /// one key agreement for the batch, a key per context from HKDF (the context is HKDF info,
    /// so no two share a key). Each result is sealed as above and opens on its own.
    public static func seal(_ items: [(plaintext: [UInt8], context: [UInt8])], to device: P256.KeyAgreement.PublicKey) throws -> [[UInt8]] {
        let ephemeral = P256.KeyAgreement.PrivateKey()
        let shared = try ephemeral.sharedSecretFromKeyAgreement(with: device)
        let ephemeralKey = Array(ephemeral.publicKey.x963Representation)
        return try items.map { plaintext, context in
            let key = shared.hkdfDerivedSymmetricKey(using: SHA256.self, salt: salt, sharedInfo: context, outputByteCount: 32)
            return ephemeralKey + Array(try AES.GCM.seal(plaintext, using: key, authenticating: context).combined!)
        }
    }

    public static func open(_ sealed: [UInt8], with device: P256.KeyAgreement.PrivateKey, context: [UInt8]) throws -> [UInt8] {
        try open([(sealed, context)], with: device)[0]
    }

    /// Opens several sealed items, agreeing once per distinct ephemeral key (a batch sealed
    /// together shares one).
    public static func open(_ items: [(sealed: [UInt8], context: [UInt8])], with device: P256.KeyAgreement.PrivateKey) throws -> [[UInt8]] {
        var agreed: [ArraySlice<UInt8>: SharedSecret] = [:]
        return try items.map { sealed, context in
            guard sealed.count > 65 + 28 else { throw CryptoError("sealed key is too short") }
            let ephemeralKey = sealed[0..<65]
            let shared: SharedSecret
            if let known = agreed[ephemeralKey] {
                shared = known
            } else {
                shared = try device.sharedSecretFromKeyAgreement(with: try P256.KeyAgreement.PublicKey(x963Representation: ephemeralKey))
                agreed[ephemeralKey] = shared
            }
            let key = shared.hkdfDerivedSymmetricKey(using: SHA256.self, salt: salt, sharedInfo: context, outputByteCount: 32)
            return Array(try AES.GCM.open(AES.GCM.SealedBox(combined: sealed[65...]), using: key, authenticating: context))
        }
    }
}
