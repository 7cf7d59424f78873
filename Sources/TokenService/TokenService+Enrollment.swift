import Crypto
import Foundation
import PaymentCore
import PaymentCrypto
import SQLKit
import Storage

/// The issuer's answer to "may this card be tokenized?", as the token service needs it.
public struct EligibilityAnswer: Sendable, Hashable {
    public var ineligibleReason: String?   // nil when eligible
    public var bank: String
    public var mobile: String
    public var deviceLimit: Int
    public init(ineligibleReason: String?, bank: String, mobile: String, deviceLimit: Int) {
        self.ineligibleReason = ineligibleReason
        self.bank = bank
        self.mobile = mobile
        self.deviceLimit = deviceLimit
    }
}

/// Asks the card's issuer about eligibility (the deployment connects this to the issuer hosts).
public protocol EligibilityService: Sendable {
    func eligibility(pan: PAN, expiry: String, cvn2: String?) async throws -> EligibilityAnswer
}

/// An enrollment request from a bank app or wallet.
public struct EnrollmentRequest: Sendable {
    public var requestor: String
    public var pan: PAN
    public var expiry: String
    public var cvn2: String?
    public var holderName: String
    public var deviceID: String
    public var devicePublicKey: P256.KeyAgreement.PublicKey

    public init(requestor: String, pan: PAN, expiry: String, cvn2: String?, holderName: String, deviceID: String, devicePublicKey: P256.KeyAgreement.PublicKey) {
        self.requestor = requestor
        self.pan = pan
        self.expiry = expiry
        self.cvn2 = cvn2
        self.holderName = holderName
        self.deviceID = deviceID
        self.devicePublicKey = devicePublicKey
    }
}

public enum EnrollmentOutcome: Sendable, Hashable {
    /// A one-time code went to the mobile number on file (its last digits shown).
    case codeSent(enrollmentID: Int64, maskedMobile: String)
    case refused(String)
}

public enum OTPOutcome: Sendable, Hashable {
    case verified(TokenRecord)
    case wrongCode(attemptsLeft: Int)
    case expired
    case tooManyAttempts
    case unknown
}

extension TokenService {
    /// Minutes a one-time code lives, and tries allowed.
    static let otpLifetime: TimeInterval = 300
    static let otpAttempts = 3

    /// Starts an enrollment: asks the issuer, checks the card's device limit and that this
    /// device has no token for it yet, stores the card in the vault, and sends a one-time code
    /// to the mobile number on file (through the SMS outbox).
    public func enroll(_ request: EnrollmentRequest, issuer: any EligibilityService, now: Date = Date()) async throws -> EnrollmentOutcome {
        let answer = try await issuer.eligibility(pan: request.pan, expiry: request.expiry, cvn2: request.cvn2)
        if let reason = answer.ineligibleReason { return .refused("card not eligible: \(reason)") }
        let stored = try await storeCard(request.pan, expiry: request.expiry, bank: answer.bank)
        var rng = SystemRandomNumberGenerator()
        let code = String(format: "%06d", Int.random(in: 0...999_999, using: &rng))
        let codeHash = Data(SHA256.hash(data: Array("\(stored.vaultID):\(code)".utf8)))
        let expires = now.addingTimeInterval(TokenService.otpLifetime).ISO8601Format()
        let stamp = now.ISO8601Format()
        let deviceKey = Data(request.devicePublicKey.x963Representation)
        let masked = String(repeating: "*", count: max(0, answer.mobile.count - 4)) + answer.mobile.suffix(4)
        return try await db.transaction { tx in
            let active = try await tx.raw("SELECT device_id FROM tsp_tokens WHERE vault_id = \(bind: stored.vaultID) AND state <> 'deleted'").all()
            let devices = try active.map { try $0.decode(column: "device_id", as: String.self) }
            if devices.contains(request.deviceID) { return .refused("this device already holds a token for the card") }
            if devices.count >= answer.deviceLimit { return .refused("the card is on \(devices.count) devices, its limit") }
            let id = try await tx.raw("""
                INSERT INTO tsp_enrollments (requestor_id, device_id, device_key, vault_id, holder_name, otp_hash, otp_expires, attempts, state, created_at)
                VALUES (\(bind: request.requestor), \(bind: request.deviceID), \(bind: deviceKey), \(bind: stored.vaultID), \(bind: request.holderName),
                        \(bind: codeHash), \(bind: expires), 0, 'pending', \(bind: stamp)) RETURNING id
                """).first()!.decode(column: "id", as: Int64.self)
            try await tx.raw("""
                INSERT INTO tsp_sms_outbox (mobile, message, sent, created_at)
                VALUES (\(bind: answer.mobile), \(bind: "CloudTap: your code to add your card ending \(request.pan.lastFour) is \(code). It expires in 5 minutes."), 0, \(bind: stamp))
                """).run()
            return .codeSent(enrollmentID: id, maskedMobile: masked)
        }
    }

    /// Checks a one-time code; the right one issues the token (assurance "10": one-time code to
    /// the mobile number on file), activates it and binds the device key.
    public func verifyOTP(enrollmentID: Int64, code: String, now: Date = Date()) async throws -> OTPOutcome {
        let row = try await db.transaction { tx -> (Int64, String, String, Data)? in
            guard let e = try await tx.raw("""
                SELECT vault_id, otp_hash, otp_expires, attempts, state, requestor_id, device_id, device_key FROM tsp_enrollments WHERE id = \(bind: enrollmentID)
                """).first(), try e.decode(column: "state", as: String.self) == "pending" else { return nil }
            let vaultID = try e.decode(column: "vault_id", as: Int64.self)
            return (vaultID, try e.decode(column: "requestor_id", as: String.self), try e.decode(column: "device_id", as: String.self),
                    try e.decode(column: "device_key", as: Data.self))
        }
        guard let (vaultID, requestor, device, deviceKey) = row else { return .unknown }
        let outcome = try await db.transaction { tx -> OTPOutcome? in
            let e = try await tx.raw("SELECT otp_hash, otp_expires, attempts FROM tsp_enrollments WHERE id = \(bind: enrollmentID)").first()!
            let attempts = try e.decode(column: "attempts", as: Int.self)
            if attempts >= TokenService.otpAttempts { return .tooManyAttempts }
            if try e.decode(column: "otp_expires", as: String.self) < now.ISO8601Format() {
                try await tx.raw("UPDATE tsp_enrollments SET state = 'expired' WHERE id = \(bind: enrollmentID)").run()
                return .expired
            }
            let given = Array(SHA256.hash(data: Array("\(vaultID):\(code)".utf8)))
            guard constantTimeEqual(given, Array(try e.decode(column: "otp_hash", as: Data.self))) else {
                try await tx.raw("UPDATE tsp_enrollments SET attempts = attempts + 1 WHERE id = \(bind: enrollmentID)").run()
                let left = TokenService.otpAttempts - attempts - 1
                if left == 0 { try await tx.raw("UPDATE tsp_enrollments SET state = 'locked' WHERE id = \(bind: enrollmentID)").run() }
                return left > 0 ? .wrongCode(attemptsLeft: left) : .tooManyAttempts
            }
            try await tx.raw("UPDATE tsp_enrollments SET state = 'verified' WHERE id = \(bind: enrollmentID)").run()
            return nil
        }
        if let outcome { return outcome }
        let (token, _) = try await issueToken(vaultID: vaultID, requestor: requestor, device: device, assurance: "10", now: now)
        try await bindDevice(tokenID: token.id, publicKey: try P256.KeyAgreement.PublicKey(x963Representation: deviceKey))
        let active = try await change(tokenID: token.id, .activate, actor: .requestor, reason: .verified)
        try await db.transaction { tx in
            try await tx.raw("UPDATE tsp_enrollments SET token_id = \(bind: token.id) WHERE id = \(bind: enrollmentID)").run()
        }
        return .verified(active)
    }

    /// Messages waiting in the SMS outbox (the stand-in for the SMS gateway): (mobile, text).
    public func smsOutbox() async throws -> [(String, String)] {
        try await db.sql.raw("SELECT mobile, message FROM tsp_sms_outbox WHERE sent = 0 ORDER BY id").all().map {
            (try $0.decode(column: "mobile", as: String.self), try $0.decode(column: "message", as: String.self))
        }
    }
}
