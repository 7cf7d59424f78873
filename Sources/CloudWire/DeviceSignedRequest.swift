import Crypto
import Foundation
import PaymentCore
import PaymentCrypto

/// A request a phone signs with its device key (ECDSA P-256, the key enrolled with the token):
/// the method, the path, a timestamp and the SHA-256 of the body, one per line.
public struct DeviceSignedRequest: Sendable, Hashable {
    public var method: String
    public var path: String
    public var timestamp: Int64
    public var bodyDigest: [UInt8]

    public init(method: String, path: String, timestamp: Int64, body: [UInt8] = []) {
        self.method = method.uppercased()
        self.path = path
        self.timestamp = timestamp
        self.bodyDigest = Array(SHA256.hash(data: body))
    }

    public var signedBytes: [UInt8] {
        Array("cloudtap-device-v1\n\(method)\n\(path)\n\(timestamp)\n\(bodyDigest.hexString)\n".utf8)
    }

    /// The signature (DER) a device with `key` gives this request.
    public func signature(with key: P256.KeyAgreement.PrivateKey) throws -> [UInt8] {
        let signer = try P256.Signing.PrivateKey(rawRepresentation: key.rawRepresentation)
        return Array(try signer.signature(for: signedBytes).derRepresentation)
    }
}
