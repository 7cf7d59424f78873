import Crypto
import PaymentCore

/// The key-holding component (DESIGN §4): it owns every secret and exposes operations that take
/// key names. No operation returns a clear key or a clear PIN; a key leaves only wrapped under
/// another key. ``SoftwareHSM`` implements it in process; a PKCS#11 token or a payment HSM can
/// implement it later without changing its callers.
public protocol KeyHolding: Sendable {
    // Key management.
    func generateKey(name: String, usage: KeyUsage, algorithm: KeyAlgorithm, lengthBytes: Int) throws -> KeyInfo
    /// Loads a clear key (a key ceremony's combined components). The key goes in, never out.
    func importClearKey(name: String, usage: KeyUsage, algorithm: KeyAlgorithm, key: [UInt8]) throws -> KeyInfo
    /// Imports a TR-31 key block wrapped under the key-encryption key `kekName`.
    func importKeyBlock(name: String, keyBlock: String, kekName: String) throws -> KeyInfo
    /// Exports a key as a TR-31 key block under the key-encryption key `kekName`.
    func exportKeyBlock(name: String, kekName: String) throws -> String
    func keyInfo(name: String) throws -> KeyInfo
    func keyNames() -> [String]

    // EMV.
    func verifyARQC(imk: String, profile: CryptogramProfile, pan: PAN, psn: String, data: TransactionData, arqc: [UInt8]) throws -> Bool
    func generateARPC(
        imk: String, profile: CryptogramProfile, pan: PAN, psn: String, data: TransactionData, arqc: [UInt8],
        arc: [UInt8], csu: [UInt8], proprietaryData: [UInt8]) throws -> [UInt8]

    /// Derives limited-use keys for a cloud card (token PAN and PSN) from the IMK and returns
    /// each encrypted to the device's key (``DeviceKeyWrap``, the key index as context).
    /// The clear keys never leave the component.
    func issueLimitedUseKeys(
        imk: String, profile: CryptogramProfile, pan: PAN, psn: String, indices: [LimitedUseKeyIndex],
        device: P256.KeyAgreement.PublicKey) throws -> [[UInt8]]

    // PIN.
    func translatePIN(_ block: EncryptedPINBlock, from: PINZone, to: PINZone) throws -> EncryptedPINBlock
    func verifyPIN(_ block: EncryptedPINBlock, zone: PINZone, against reference: PINReference) throws -> Bool
    /// Makes PIN verification data from an encrypted PIN block (PIN issuance or change).
    func generatePINVerificationData(_ block: EncryptedPINBlock, zone: PINZone, method: PINVerificationMethod) throws -> String

    // Card verification values.
    func generateCVV(cvk: String, pan: PAN, expiry: String, serviceCode: String) throws -> String
    func verifyCVV(cvk: String, pan: PAN, expiry: String, serviceCode: String, cvv: String) throws -> Bool

    // Data protection (the vault).
    /// AES-GCM under a named data key; returns nonce ‖ ciphertext ‖ tag.
    func seal(_ plaintext: [UInt8], keyName: String, authenticating: [UInt8]) throws -> [UInt8]
    func open(_ sealed: [UInt8], keyName: String, authenticating: [UInt8]) throws -> [UInt8]
    /// HMAC-SHA-256 under a named key, for look-up hashes of card numbers.
    func keyedHash(_ data: [UInt8], keyName: String) throws -> [UInt8]
}

/// Where an encrypted PIN block sits: the key it is under, its format and the PAN it is bound to.
public struct PINZone: Sendable, Hashable {
    public var keyName: String
    public var format: PINBlockFormat
    public var pan: PAN?
    public init(keyName: String, format: PINBlockFormat, pan: PAN?) {
        self.keyName = keyName
        self.format = format
        self.pan = pan
    }
}

/// How an issuer verifies PINs.
public enum PINVerificationMethod: Sendable, Hashable {
    /// Visa PVV under the PVK `pvkName`, with PVK index `pvki`.
    case visaPVV(pvkName: String, pvki: Int)
    /// IBM 3624 offset under `pvkName`, with the validation data and decimalization table.
    case ibm3624(pvkName: String, validationData: [UInt8], decimalizationTable: String)
}

/// Stored PIN verification data to check a PIN against.
public struct PINReference: Sendable, Hashable {
    public var method: PINVerificationMethod
    /// The PVV or the IBM offset.
    public var value: String
    public init(method: PINVerificationMethod, value: String) {
        self.method = method
        self.value = value
    }
}

/// Errors of the key component. None carries key material or a PIN.
public enum KeyHoldingError: Error, Hashable, Sendable, CustomStringConvertible {
    case unknownKey(String)
    case keyExists(String)
    case wrongUsage(name: String, has: KeyUsage, needs: [KeyUsage])
    case notExportable(String)
    case invalidKey(String)

    public var description: String {
        switch self {
        case .unknownKey(let n): return "no key named '\(n)'"
        case .keyExists(let n): return "a key named '\(n)' already exists"
        case .wrongUsage(let n, let has, let needs):
            return "key '\(n)' has usage \(has.rawValue); this operation needs \(needs.map(\.rawValue).joined(separator: " or "))"
        case .notExportable(let n): return "key '\(n)' is not exportable"
        case .invalidKey(let why): return "invalid key: \(why)"
        }
    }
}
