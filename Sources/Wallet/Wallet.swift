import CloudWire
import Crypto
import Foundation
import PaymentCore
import PaymentCrypto

/// The phone's payment app: its cards, their counters and limited-use keys, the device key and
/// the transaction log, all kept in a ``SecureStore``. Every change is stored before it is
/// used — in particular a tap's ATC and key use are stored before the card's answer leaves the
/// phone, so a crash can never make the phone reuse an ATC or a spent key.
public final class Wallet: @unchecked Sendable {
    struct State: Codable {
        var cards: [CardState] = []
        var defaultCardID: String?
        /// Log entries written so far; entry n is stored as record `log-(n mod logCapacity)`.
        var logCount = 0
    }

    public let deviceID: String
    let store: any SecureStore
    let deviceKey: P256.KeyAgreement.PrivateKey
    private let lock = NSLock()
    private var state: State
    /// The log in memory, oldest first (the store holds it as a ring of records).
    private var logEntries: [WalletLogEntry] = []
    private var verifiedOwner = false

    static let stateName = "wallet-state"
    static let deviceKeyName = "device-key"
    /// Taps the log keeps; far more than a pool of keys allows between replenishments.
    static let logCapacity = 1000
    static func logName(_ n: Int) -> String { "log-\(n % logCapacity)" }

    /// Opens the wallet in `store`, creating its device key on first use.
    public init(store: any SecureStore, deviceID: String) throws {
        self.store = store
        self.deviceID = deviceID
        if let raw = try store.load(Self.deviceKeyName) {
            deviceKey = try P256.KeyAgreement.PrivateKey(rawRepresentation: raw)
        } else {
            deviceKey = P256.KeyAgreement.PrivateKey()
            try store.save(Self.deviceKeyName, deviceKey.rawRepresentation)
        }
        if let data = try store.load(Self.stateName) {
            state = try JSONDecoder().decode(State.self, from: data)
            try Self.mergeCounters(into: &state, from: store)
        } else {
            state = State()
        }
        for n in max(0, state.logCount - Self.logCapacity)..<state.logCount {
            if let data = try store.load(Self.logName(n)) { logEntries.append(try WalletLogEntry.stored(data)) }
        }
    }

    /// The public half of the device key, enrolled with each token of this phone.
    public var devicePublicKey: P256.KeyAgreement.PublicKey { deviceKey.publicKey }

    /// Whether the owner has just unlocked the phone (consumer device CVM); recorded in the CVR.
    public var ownerVerified: Bool {
        get { lock.withLock { verifiedOwner } }
        set { lock.withLock { verifiedOwner = newValue } }
    }

    // MARK: Cards

    public var cards: [CardState] { lock.withLock { state.cards } }
    public var defaultCardID: String? { lock.withLock { state.defaultCardID } }
    public var log: [WalletLogEntry] { lock.withLock { logEntries } }

    /// Adds a cloud card from the profile the cloud sealed to this device's key.
    @discardableResult
    public func addCloudCard(id: String, sealedProfile: [UInt8], aid: [UInt8] = CardProfile.debitAID, label: String = "UnionPay") throws -> CardProfile {
        let token = try TokenProfile.open(sealedProfile, with: deviceKey)
        guard let profile = CryptogramProfile.named(token.cryptogramProfile), profile.sessionKey == .limitedUseKey else {
            throw WalletError.invalidProfile("\(token.cryptogramProfile) is not a cloud cryptogram profile")
        }
        let card = CardProfile(id: id, kind: .cloud, pan: token.token, expiry: token.expiry, psn: token.psn, aid: aid, label: label,
                               cryptogramProfile: token.cryptogramProfile)
        try addCard(card)
        return card
    }

    /// Adds a card (a physical-card profile, or a cloud profile already opened).
    public func addCard(_ profile: CardProfile) throws {
        _ = try PAN(profile.pan)
        guard let cryptogram = profile.profile else { throw WalletError.invalidProfile("unknown cryptogram profile \(profile.cryptogramProfile)") }
        switch profile.kind {
        case .physical:
            guard cryptogram.sessionKey != .limitedUseKey, let key = profile.cardKey, key.count == 16 else {
                throw WalletError.invalidProfile("a physical card needs a 16-byte card key and a card profile such as 01")
            }
        case .cloud:
            guard cryptogram.sessionKey == .limitedUseKey, profile.cardKey == nil else {
                throw WalletError.invalidProfile("a cloud card uses limited-use keys and holds no card key")
            }
        }
        guard profile.expiry.count == 4, profile.expiry.allSatisfy(\.isNumber) else { throw WalletError.invalidProfile("expiry is YYMM") }
        try mutate { state in
            state.cards.removeAll { $0.profile.id == profile.id }
            state.cards.append(CardState(profile: profile))
            if state.defaultCardID == nil { state.defaultCardID = profile.id }
        }
    }

    public func setDefault(cardID: String) throws {
        try mutate { state in
            guard state.cards.contains(where: { $0.profile.id == cardID }) else { throw WalletError.unknownCard(cardID) }
            state.defaultCardID = cardID
        }
    }

    public func removeCard(id: String) throws {
        try mutate { state in
            state.cards.removeAll { $0.profile.id == id }
            if state.defaultCardID == id { state.defaultCardID = state.cards.first?.profile.id }
        }
    }

    // MARK: Limited-use keys

    /// A key as it arrives from the cloud: its index, the key sealed to the device key, its limits.
    public struct SealedKey: Sendable, Hashable {
        public var index: LimitedUseKeyIndex
        public var sealedKey: [UInt8]
        public var limits: LimitedUseKeyLimits
        public init(index: LimitedUseKeyIndex, sealedKey: [UInt8], limits: LimitedUseKeyLimits) {
            self.index = index
            self.sealedKey = sealedKey
            self.limits = limits
        }
    }

    /// Opens keys sealed to this device and adds them to the card's pool.
    public func addKeys(cardID: String, _ keys: [SealedKey]) throws {
        let opened = try open(keys)
        try mutate { state in try Self.add(opened, cardID: cardID, to: &state) }
    }

    /// Opens a batch of sealed keys with the device key (one key agreement for the batch).
    func open(_ keys: [SealedKey]) throws -> [HeldKey] {
        let clear = try DeviceKeyWrap.open(keys.map { ($0.sealedKey, $0.index.bytes) }, with: deviceKey)
        return zip(keys, clear).map { k, key in
            HeldKey(generationHour: k.index.generationHour, sequence: k.index.sequence, key: key, limits: k.limits, uses: 0, cumulativeAmount: 0)
        }
    }

    static func add(_ opened: [HeldKey], cardID: String, to state: inout State) throws {
        guard let i = state.cards.firstIndex(where: { $0.profile.id == cardID }) else { throw WalletError.unknownCard(cardID) }
        guard state.cards[i].profile.kind == .cloud else { throw WalletError.invalidProfile("only cloud cards take limited-use keys") }
        let known = Set(state.cards[i].keys.map(\.index))
        state.cards[i].keys += opened.filter { !known.contains($0.index) }
        state.cards[i].receivedKeysThrough = max(state.cards[i].receivedKeysThrough, opened.map(\.sequence).max() ?? 0)
        state.cards[i].keys.sort { $0.index < $1.index }
    }

    /// Keys of a card that can still make a cryptogram.
    public func keysLeft(cardID: String, at now: Date = Date()) -> Int {
        lock.withLock { state.cards.first { $0.profile.id == cardID }?.keys.filter { $0.isAlive(at: now) }.count ?? 0 }
    }

    /// Whether a cloud card should ask for keys (fewer than `threshold` left).
    public func needsReplenishment(cardID: String, threshold: Int = 2, at now: Date = Date()) -> Bool {
        guard lock.withLock({ state.cards.first { $0.profile.id == cardID }?.profile.kind }) == .cloud else { return false }
        return keysLeft(cardID: cardID, at: now) < threshold
    }

    /// What the cloud answered a replenishment: the keys, and the ATCs of the request's log it
    /// holds no transaction for yet (their POS's request had not reached it).
    public struct Replenishment: Sendable {
        public var keys: [SealedKey]
        public var unseen: [UInt16]
        public init(keys: [SealedKey], unseen: [UInt16] = []) {
            self.keys = keys
            self.unseen = unseen
        }
    }

    /// How long a tap the cloud has not seen is sent again. A POS sends its request within its
    /// answer timeout, seconds after the tap; a tap still unseen after a day is one whose request
    /// never left the POS, and the cloud will never hold it against the phone.
    public static let unseenTapLifetime: TimeInterval = 24 * 3600

    /// The replenishment request for a card's token, signed with the device key, carrying the
    /// taps not yet accounted for in an accepted replenishment — and again, for a day, those the
    /// cloud said it had not seen. Spent and expired keys are dropped from the pool.
    public func replenishmentRequest(cardID: String, tokenID: Int64, nonce: String = UUID().uuidString, now: Date = Date()) throws -> ReplenishmentRequest {
        let log = self.log
        let (entries, received): ([PhoneLogEntry], UInt16) = try mutate { state in
            guard let i = state.cards.firstIndex(where: { $0.profile.id == cardID }) else { throw WalletError.unknownCard(cardID) }
            state.cards[i].keys.removeAll { !$0.isAlive(at: now) }
            let reconciled = state.cards[i].reconciledATC, unseen = Set(state.cards[i].unseenATCs)
            return (log.filter {
                $0.cardID == cardID && $0.cryptogramType == "ARQC"
                    && ($0.atc > reconciled || (unseen.contains($0.atc) && now.timeIntervalSince($0.date) < Self.unseenTapLifetime))
            }.map { PhoneLogEntry(atc: $0.atc, keySequence: $0.keySequence, amount: $0.amount) }, state.cards[i].receivedKeysThrough)
        }
        var request = ReplenishmentRequest(tokenID: tokenID, deviceID: deviceID, timestamp: now, nonce: nonce, log: entries, receivedKeysThrough: received)
        try request.sign(with: deviceKey)
        return request
    }

    /// The cloud accepted `request`: its taps are accounted for but those it named `unseen`
    /// (sent again next time), and the keys it sent are added.
    public func replenished(cardID: String, request: ReplenishmentRequest, keys: [SealedKey], unseen: [UInt16] = []) throws {
        let opened = try open(keys)
        let sent = Set(request.log.map(\.atc))
        // The keys, the reconciled ATC and the unseen taps in one change: one write of the state.
        try mutate { state in
            try Self.add(opened, cardID: cardID, to: &state)
            guard let i = state.cards.firstIndex(where: { $0.profile.id == cardID }) else { throw WalletError.unknownCard(cardID) }
            let through = sent.max() ?? state.cards[i].reconciledATC
            state.cards[i].reconciledATC = max(state.cards[i].reconciledATC, through)
            state.cards[i].unseenATCs = unseen.filter(sent.contains).sorted()
        }
    }

    /// Signs a device operation for the cloud API (provisioning, history).
    public func sign(_ request: DeviceSignedRequest) throws -> [UInt8] { try request.signature(with: deviceKey) }

    /// A card applet answering the POS for this wallet.
    public func applet() -> CardApplet { CardApplet(wallet: self) }

    // MARK: State

    /// Applies a change and stores the result before anyone sees it.
    func mutate<T>(_ change: (inout State) throws -> T) throws -> T {
        try mutate { state, _ in try change(&state) }
    }

    /// As ``mutate(_:)``, and the log entries the change appends are stored first, each in its
    /// slot of the ring: a crash between the two writes leaves an entry the state does not count,
    /// which the next tap overwrites.
    func mutate<T>(_ change: (inout State, inout [WalletLogEntry]) throws -> T) throws -> T {
        try mutate(storing: { next in try store.save(Self.stateName, try JSONEncoder().encode(next)) }, change)
    }

    /// Applies `change`, stores the log entries it appends, then stores the new state with `save`.
    func mutate<T>(storing save: (State) throws -> Void, _ change: (inout State, inout [WalletLogEntry]) throws -> T) throws -> T {
        try lock.withLock {
            var next = state
            var appended: [WalletLogEntry] = []
            let result = try change(&next, &appended)
            for entry in appended {
                try store.save(Self.logName(next.logCount), entry.record)
                next.logCount += 1
            }
            try save(next)
            state = next
            logEntries += appended
            if logEntries.count > Self.logCapacity { logEntries.removeFirst(logEntries.count - Self.logCapacity) }
            return result
        }
    }

    func card(_ id: String) -> CardState? { lock.withLock { state.cards.first { $0.profile.id == id } } }
}
