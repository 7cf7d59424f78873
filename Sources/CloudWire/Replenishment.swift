import Crypto
import Foundation
import PaymentCore
import PaymentCrypto

/// One transaction in the phone's log.
public struct PhoneLogEntry: Sendable, Hashable, Codable {
    public var atc: UInt16
    public var keySequence: UInt16
    public var amount: Int64
    public init(atc: UInt16, keySequence: UInt16, amount: Int64) {
        self.atc = atc
        self.keySequence = keySequence
        self.amount = amount
    }
}

/// A replenishment request as it travels in JSON (`POST /v1/tokens/{id}/replenish`; the token
/// is in the path): the same fields, the time in Unix seconds and the signature in base64.
public struct ReplenishmentBody: Sendable, Hashable, Codable {
    public var deviceId: String
    /// Unix seconds.
    public var timestamp: Int64
    public var nonce: String
    public var log: [PhoneLogEntry]
    /// The highest key sequence number the phone has received (signed with the rest).
    public var receivedKeysThrough: UInt16?
    /// Base64 DER ECDSA signature over ``ReplenishmentRequest/signedBytes``.
    public var signature: String

    public init(_ request: ReplenishmentRequest) {
        deviceId = request.deviceID
        timestamp = Int64(request.timestamp.timeIntervalSince1970)
        nonce = request.nonce
        log = request.log
        receivedKeysThrough = request.receivedKeysThrough
        signature = Data(request.signature).base64EncodedString()
    }

    /// The request for token `tokenID`; nil when the signature is not base64.
    public func request(tokenID: Int64) -> ReplenishmentRequest? {
        guard let signature = Data(base64Encoded: signature) else { return nil }
        return ReplenishmentRequest(tokenID: tokenID, deviceID: deviceId, timestamp: Date(timeIntervalSince1970: Double(timestamp)), nonce: nonce,
                                    log: log, receivedKeysThrough: receivedKeysThrough, signature: Array(signature))
    }
}

/// A replenishment request, signed by the device key (ECDSA P-256 over ``signedBytes``).
public struct ReplenishmentRequest: Sendable, Hashable {
    public var tokenID: Int64
    public var deviceID: String
    public var timestamp: Date
    public var nonce: String
    public var log: [PhoneLogEntry]
    /// The highest key sequence number the phone has received. Keys are issued in rising
    /// sequence, a batch whole or not at all, so keys the cloud issued above this never reached
    /// the phone (an answer lost on the way): they are withdrawn and the pool is topped up with
    /// keys the phone will really have. Nil: not reported.
    public var receivedKeysThrough: UInt16?
    public var signature: [UInt8]

    public init(tokenID: Int64, deviceID: String, timestamp: Date, nonce: String, log: [PhoneLogEntry], receivedKeysThrough: UInt16? = nil, signature: [UInt8] = []) {
        self.tokenID = tokenID
        self.deviceID = deviceID
        self.timestamp = timestamp
        self.nonce = nonce
        self.log = log
        self.receivedKeysThrough = receivedKeysThrough
        self.signature = signature
    }

    /// The bytes signed: a canonical line per field, the log in ATC order, then the last key received.
    public var signedBytes: [UInt8] {
        var text = "cloudtap-replenish-v1\n\(tokenID)\n\(deviceID)\n\(Int64(timestamp.timeIntervalSince1970))\n\(nonce)\n"
        for e in log.sorted(by: { $0.atc < $1.atc }) { text += "\(e.atc),\(e.keySequence),\(e.amount)\n" }
        if let receivedKeysThrough { text += "received-through \(receivedKeysThrough)\n" }
        return Array(text.utf8)
    }

    /// Signs with the device's private key (the same P-256 key whose public half was enrolled).
    public mutating func sign(with device: P256.KeyAgreement.PrivateKey) throws {
        let signer = try P256.Signing.PrivateKey(rawRepresentation: device.rawRepresentation)
        signature = Array(try signer.signature(for: signedBytes).derRepresentation)
    }
}

/// The cloud's answer to a replenishment as it travels in JSON: the keys issued, each sealed to
/// the device key (base64) with its index and limits, and the ATCs of the request's log the
/// cloud holds no transaction for yet (absent from a cloud that does not say: then every tap
/// sent counts as accounted for).
public struct KeyBatch: Sendable, Hashable, Codable {
    public struct Key: Sendable, Hashable, Codable {
        public var generationHour: UInt32
        public var sequence: UInt16
        public var sealedKey: String
        public var maxTransactions: Int
        public var ttlSeconds: Int
        public var maxAmount: Int64

        public init(generationHour: UInt32, sequence: UInt16, sealedKey: String, maxTransactions: Int, ttlSeconds: Int, maxAmount: Int64) {
            self.generationHour = generationHour
            self.sequence = sequence
            self.sealedKey = sealedKey
            self.maxTransactions = maxTransactions
            self.ttlSeconds = ttlSeconds
            self.maxAmount = maxAmount
        }
    }
    public var keys: [Key]
    public var unseenAtcs: [UInt16]?

    public init(keys: [Key], unseenAtcs: [UInt16]?) {
        self.keys = keys
        self.unseenAtcs = unseenAtcs
    }
}
