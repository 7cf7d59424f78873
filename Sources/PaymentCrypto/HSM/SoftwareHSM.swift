import Crypto
import Foundation
import PaymentCore

/// The software key component: keys live as TR-31 version D key blocks wrapped under an
/// AES-256 master key (the local master key, LMK), and in clear only in this object's memory.
///
/// The key blocks can be saved and loaded by the caller (``keyBlocks`` / `init(masterKey:keyBlocks:)`);
/// without the master key they are useless. The master key itself is never stored here.
public final class SoftwareHSM: KeyHolding, @unchecked Sendable {
    private struct Held {
        let info: KeyInfo
        let block: String
        let clear: [UInt8]
        /// Issuer master keys are kept expanded for the authorization hot path.
        let imk: IssuerMasterKey?
        /// 3DES PIN keys are kept expanded for PIN translation.
        let pinKey: Legacy.TripleDES?
        /// Keys that may key look-up hashes are kept as HMAC state with the key absorbed: a
        /// hash copies it (copy on write) and adds only the data.
        let hmac: HMAC<SHA256>?

        init(info: KeyInfo, block: String, clear: [UInt8]) throws {
            self.info = info
            self.block = block
            self.clear = clear
            let isIMK = [.issuerMasterKeyAC, .issuerMasterKeyOther, .issuerMasterKeySMC, .issuerMasterKeySMI].contains(info.usage)
            self.imk = isIMK ? try IssuerMasterKey(clear, algorithm: info.algorithm) : nil
            self.pinKey = info.usage == .pinEncryption && info.algorithm == .tdes ? try Legacy.TripleDES(key: clear) : nil
            self.hmac = Self.hashKeyUsages.contains(info.usage) ? HMAC<SHA256>(key: SymmetricKey(data: clear)) : nil
        }

        static let hashKeyUsages: [KeyUsage] = [.dataEncryption, .cmac]
    }

    private let lock = NSLock()
    private var keys: [String: Held] = [:]
    private let masterKey: [UInt8]
    /// KCV of the master key, for logs.
    public let masterKeyKCV: String

    /// - Parameters:
    ///   - masterKey: 32 bytes (AES-256).
    ///   - keyBlocks: name → TR-31 key block, as saved from ``keyBlocks``.
    public init(masterKey: [UInt8], keyBlocks: [String: String] = [:]) throws {
        guard masterKey.count == 32 else { throw KeyHoldingError.invalidKey("master key must be 32 bytes (AES-256)") }
        self.masterKey = masterKey
        self.masterKeyKCV = try KeyTools.kcv(masterKey, algorithm: .aes).hexString
        for (name, block) in keyBlocks {
            let (header, key) = try TR31.unwrap(block, kbpk: masterKey)
            let info = try SoftwareHSM.info(name: name, header: header, key: key)
            keys[name] = try Held(info: info, block: block, clear: key)
        }
    }

    /// Every key as a TR-31 key block under the master key, for the caller to persist.
    public var keyBlocks: [String: String] {
        lock.withLock { keys.mapValues(\.block) }
    }

    // MARK: Key management

    public func generateKey(name: String, usage: KeyUsage, algorithm: KeyAlgorithm, lengthBytes: Int) throws -> KeyInfo {
        var key = [UInt8](repeating: 0, count: lengthBytes)
        var rng = SystemRandomNumberGenerator()
        for i in key.indices { key[i] = UInt8.random(in: 0...255, using: &rng) }
        if algorithm == .tdes { key = KeyTools.oddParity(key) }
        return try importClearKey(name: name, usage: usage, algorithm: algorithm, key: key)
    }

    public func importClearKey(name: String, usage: KeyUsage, algorithm: KeyAlgorithm, key: [UInt8]) throws -> KeyInfo {
        _ = try algorithm.cipher(key)  // validates the length
        let header = TR31.Header(keyUsage: usage.rawValue, algorithm: SoftwareHSM.code(algorithm), modeOfUse: usage.modeOfUse)
        let block = try TR31.wrap(key: key, header: header, kbpk: masterKey)
        let info = try SoftwareHSM.info(name: name, header: header, key: key)
        try lock.withLock {
            guard keys[name] == nil else { throw KeyHoldingError.keyExists(name) }
            keys[name] = try Held(info: info, block: block, clear: key)
        }
        return info
    }

    public func importKeyBlock(name: String, keyBlock: String, kekName: String) throws -> KeyInfo {
        let kek = try clear(kekName, for: [.keyEncryption])
        guard kek.count == 16 || kek.count == 24 || kek.count == 32, try keyInfo(name: kekName).algorithm == .aes else {
            throw KeyHoldingError.invalidKey("the KEK for TR-31 version D must be an AES key")
        }
        let (header, key) = try TR31.unwrap(keyBlock, kbpk: kek)
        guard let usage = KeyUsage(rawValue: header.keyUsage), let algorithm = SoftwareHSM.algorithm(header.algorithm) else {
            throw KeyHoldingError.invalidKey("key usage \(header.keyUsage) / algorithm \(header.algorithm) not supported")
        }
        return try importClearKey(name: name, usage: usage, algorithm: algorithm, key: key)
    }

    public func exportKeyBlock(name: String, kekName: String) throws -> String {
        let kek = try clear(kekName, for: [.keyEncryption])
        let held = try self.held(name)
        guard held.block.dropFirst(11).first == "E" else { throw KeyHoldingError.notExportable(name) }
        let header = TR31.Header(keyUsage: held.info.usage.rawValue, algorithm: SoftwareHSM.code(held.info.algorithm), modeOfUse: held.info.usage.modeOfUse)
        return try TR31.wrap(key: held.clear, header: header, kbpk: kek)
    }

    public func keyInfo(name: String) throws -> KeyInfo { try held(name).info }

    public func keyNames() -> [String] { lock.withLock { keys.keys.sorted() } }

    // MARK: EMV

    public func verifyARQC(imk: String, profile: CryptogramProfile, pan: PAN, psn: String, data: TransactionData, arqc: [UInt8]) throws -> Bool {
        return try Cryptogram.verify(profile: profile, imk: try issuerMasterKey(imk), pan: pan, psn: psn, data: data, arqc: arqc)
    }

    public func generateARPC(
        imk: String, profile: CryptogramProfile, pan: PAN, psn: String, data: TransactionData, arqc: [UInt8],
        arc: [UInt8], csu: [UInt8], proprietaryData: [UInt8]
    ) throws -> [UInt8] {
        let cardKey = try Cryptogram.cardKey(profile: profile, imk: try issuerMasterKey(imk), pan: pan, psn: psn, iad: data.iad)
        return try Cryptogram.arpc(profile: profile, cardKey: cardKey, data: data, arqc: arqc, arc: arc, csu: csu, proprietaryData: proprietaryData)
    }

    public func issueLimitedUseKeys(
        imk: String, profile: CryptogramProfile, pan: PAN, psn: String, indices: [LimitedUseKeyIndex],
        device: P256.KeyAgreement.PublicKey
    ) throws -> [[UInt8]] {
        guard profile.sessionKey == .limitedUseKey else { throw KeyHoldingError.invalidKey("\(profile) does not use limited-use keys") }
        let master = try issuerMasterKey(imk)
        let cardKey = try master.cardKey(pan: pan, psn: psn, method: profile.cardKey)
        // The batch under one key agreement.
        return try DeviceKeyWrap.seal(try indices.map { index in
            (try EMVKeyDerivation.limitedUseKey(cardKey: cardKey, index: index, algorithm: profile.algorithm), index.bytes)
        }, to: device)
    }

    // MARK: PIN

    public func translatePIN(_ block: EncryptedPINBlock, from: PINZone, to: PINZone) throws -> EncryptedPINBlock {
        // The common case — format 0 to format 0 between 3DES keys — on expanded keys.
        if from.format == .iso0, to.format == .iso0, block.format == .iso0, let fromPAN = from.pan, let toPAN = to.pan {
            let source = try held(from.keyName), destination = try held(to.keyName)
            if let s = source.pinKey, let d = destination.pinKey {
                return EncryptedPINBlock(format: .iso0, bytes: try ISO9564.translateFormat0(block.bytes, from: s, sourcePAN: fromPAN, to: d, destinationPAN: toPAN))
            }
        }
        let source = try clear(from.keyName, for: [.pinEncryption])
        let destination = try clear(to.keyName, for: [.pinEncryption])
        return try ISO9564.translate(
            block, from: .init(key: source, format: from.format, pan: from.pan), to: .init(key: destination, format: to.format, pan: to.pan))
    }

    public func verifyPIN(_ block: EncryptedPINBlock, zone: PINZone, against reference: PINReference) throws -> Bool {
        let expected = try generatePINVerificationData(block, zone: zone, method: reference.method)
        return constantTimeEqual(Array(expected.utf8), Array(reference.value.utf8))
    }

    public func generatePINVerificationData(_ block: EncryptedPINBlock, zone: PINZone, method: PINVerificationMethod) throws -> String {
        let pek = try clear(zone.keyName, for: [.pinEncryption])
        let pin = try ISO9564.decipher(block, key: pek, pan: zone.pan).decodePIN(pan: zone.pan)
        switch method {
        case .visaPVV(let pvkName, let pvki):
            guard let pan = zone.pan else { throw PINBlock.Error.panRequired }
            let pvk = try clear(pvkName, for: [.pinVerificationVisaPVV])
            return try PINVerification.visaPVV(pvk: pvk, pan: pan, pvki: pvki, pin: pin)
        case .ibm3624(let pvkName, let validationData, let table):
            let pvk = try clear(pvkName, for: [.pinVerificationIBM3624])
            return try PINVerification.ibm3624Offset(pvk: pvk, validationData: validationData, decimalizationTable: table, pin: pin)
        }
    }

    // MARK: Card verification

    public func generateCVV(cvk: String, pan: PAN, expiry: String, serviceCode: String) throws -> String {
        try CardVerification.cvv(cvk: try clear(cvk, for: [.cardVerification]), pan: pan, expiry: expiry, serviceCode: serviceCode)
    }

    public func verifyCVV(cvk: String, pan: PAN, expiry: String, serviceCode: String, cvv: String) throws -> Bool {
        let expected = try generateCVV(cvk: cvk, pan: pan, expiry: expiry, serviceCode: serviceCode)
        return constantTimeEqual(Array(expected.utf8), Array(cvv.utf8))
    }

    // MARK: Data protection

    public func seal(_ plaintext: [UInt8], keyName: String, authenticating: [UInt8]) throws -> [UInt8] {
        let key = SymmetricKey(data: try clear(keyName, for: [.dataEncryption]))
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: authenticating)
        return Array(box.nonce) + Array(box.ciphertext) + Array(box.tag)
    }

    public func open(_ sealed: [UInt8], keyName: String, authenticating: [UInt8]) throws -> [UInt8] {
        let key = SymmetricKey(data: try clear(keyName, for: [.dataEncryption]))
        guard sealed.count >= 28 else { throw KeyHoldingError.invalidKey("sealed data shorter than nonce and tag") }
        let box = try AES.GCM.SealedBox(combined: sealed)
        return Array(try AES.GCM.open(box, using: key, authenticating: authenticating))
    }

    public func keyedHash(_ data: [UInt8], keyName: String) throws -> [UInt8] {
        let h = try held(keyName)
        guard var mac = h.hmac else { throw KeyHoldingError.wrongUsage(name: keyName, has: h.info.usage, needs: Held.hashKeyUsages) }
        mac.update(data: data)
        return Array(mac.finalize())
    }

    // MARK: Internals

    private func held(_ name: String) throws -> Held {
        guard let h = lock.withLock({ keys[name] }) else { throw KeyHoldingError.unknownKey(name) }
        return h
    }

    private func issuerMasterKey(_ name: String) throws -> IssuerMasterKey {
        let h = try held(name)
        guard h.info.usage == .issuerMasterKeyAC, let imk = h.imk else {
            throw KeyHoldingError.wrongUsage(name: name, has: h.info.usage, needs: [.issuerMasterKeyAC])
        }
        return imk
    }

    /// The clear key, for use inside this component only, after checking its usage.
    private func clear(_ name: String, for usages: [KeyUsage]) throws -> [UInt8] {
        let h = try held(name)
        guard usages.contains(h.info.usage) else { throw KeyHoldingError.wrongUsage(name: name, has: h.info.usage, needs: usages) }
        return h.clear
    }

    private static func info(name: String, header: TR31.Header, key: [UInt8]) throws -> KeyInfo {
        guard let usage = KeyUsage(rawValue: header.keyUsage), let algorithm = algorithm(header.algorithm) else {
            throw KeyHoldingError.invalidKey("key usage \(header.keyUsage) / algorithm \(header.algorithm) not supported")
        }
        return KeyInfo(name: name, usage: usage, algorithm: algorithm, lengthBits: key.count * 8,
                       kcv: try KeyTools.kcv(key, algorithm: algorithm).hexString)
    }

    static func code(_ algorithm: KeyAlgorithm) -> Character {
        switch algorithm {
        case .tdes: return "T"
        case .aes: return "A"
        case .sm4: return "4"
        }
    }

    static func algorithm(_ code: Character) -> KeyAlgorithm? {
        switch code {
        case "T": return .tdes
        case "A": return .aes
        case "4": return .sm4
        default: return nil
        }
    }
}
