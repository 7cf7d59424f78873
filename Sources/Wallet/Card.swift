import Foundation
import PaymentCore
import PaymentCrypto

/// How a card on the phone makes its cryptograms.
public enum CardKind: String, Sendable, Hashable, Codable {
    /// A token with limited-use keys from the cloud (the cloud CVN 41).
    case cloud
    /// A classic chip card: UnionPay CVN 01 with its own card key (for testing POS software
    /// against a card that needs no cloud).
    case physical
}

/// What the phone knows of one card: everything the POS may read, and for a physical card its
/// card key (a chip card keeps it in its secure memory; here it is sealed in the secure store).
public struct CardProfile: Sendable, Hashable, Codable {
    public var id: String
    public var kind: CardKind
    /// The token number (cloud) or card number (physical); what the POS reads in 57 and 5A.
    public var pan: String
    /// YYMM.
    public var expiry: String
    public var psn: String
    /// UnionPay AID: A000000333010101 debit, …0102 credit, …0103 quasi-credit.
    public var aid: [UInt8]
    public var label: String
    /// Application priority indicator (87), 1 = highest.
    public var priority: UInt8
    public var holderName: String
    /// The cryptogram profile name (`cloud`, `cloud-sm4`, `01`, `sm4`).
    public var cryptogramProfile: String
    /// The card key (MK-AC) of a physical card; nil for cloud cards.
    public var cardKey: [UInt8]?
    /// ISO 3166 numeric country of the issuer, ISO 4217 numeric currency.
    public var country: UInt16
    public var currency: UInt16
    /// The token service's id for this token (cloud cards provisioned from the cloud).
    public var tokenID: Int64?

    public init(id: String, kind: CardKind, pan: String, expiry: String, psn: String = "01", aid: [UInt8] = CardProfile.debitAID,
                label: String = "UnionPay", priority: UInt8 = 1, holderName: String = "", cryptogramProfile: String,
                cardKey: [UInt8]? = nil, country: UInt16 = 156, currency: UInt16 = 156) {
        self.id = id
        self.kind = kind
        self.pan = pan
        self.expiry = expiry
        self.psn = psn
        self.aid = aid
        self.label = label
        self.priority = priority
        self.holderName = holderName
        self.cryptogramProfile = cryptogramProfile
        self.cardKey = cardKey
        self.country = country
        self.currency = currency
    }

    public static let debitAID: [UInt8] = [0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x01]
    public static let creditAID: [UInt8] = [0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x02]
    public static let quasiCreditAID: [UInt8] = [0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x03]

    var profile: CryptogramProfile? { CryptogramProfile.named(cryptogramProfile) }
}

/// A limited-use key held by the phone, with what it has been used for.
public struct HeldKey: Sendable, Hashable, Codable {
    public var generationHour: UInt32
    public var sequence: UInt16
    /// The key itself, clear only inside the sealed store.
    var key: [UInt8]
    public var limits: LimitedUseKeyLimits
    public var uses: Int
    public var cumulativeAmount: Int64

    public var index: LimitedUseKeyIndex { LimitedUseKeyIndex(generationHour: generationHour, sequence: sequence) }

    /// Whether the key may make a cryptogram for `amount` at `now`.
    public func isUsable(for amount: Int64, at now: Date) -> Bool {
        limits.violations(index: index, useCount: uses + 1, cumulativeAmount: cumulativeAmount + amount, now: now).isEmpty
    }

    /// Whether the key can still be used at all (count and time left; amount unknown).
    public func isAlive(at now: Date) -> Bool { isUsable(for: 0, at: now) }
}

/// One tap as the phone remembers it.
public struct WalletLogEntry: Sendable, Hashable, Codable {
    public var cardID: String
    public var atc: UInt16
    /// The limited-use key's sequence (0 for a physical card).
    public var keySequence: UInt16
    public var amount: Int64
    public var currency: UInt16
    /// "ARQC", "AAC".
    public var cryptogramType: String
    public var date: Date
}

/// A card on the phone with its counters, keys and log.
public struct CardState: Sendable, Hashable, Codable {
    public var profile: CardProfile
    /// The last ATC used; the next tap uses atc + 1.
    public var atc: UInt16
    public var keys: [HeldKey]
    public var lastOnlineATC: UInt16
    /// Taps up to this ATC have been accounted for in a replenishment the cloud accepted.
    public var reconciledATC: UInt16
    /// The highest limited-use key sequence number received (kept after the key is spent).
    public var receivedKeysThrough: UInt16
    /// Taps up to ``reconciledATC`` the cloud had no transaction for when it last answered a
    /// replenishment: sent again in the next one.
    public var unseenATCs: [UInt16]

    public init(profile: CardProfile) {
        self.profile = profile
        self.atc = 0
        self.keys = []
        self.lastOnlineATC = 0
        self.reconciledATC = 0
        self.receivedKeysThrough = 0
        self.unseenATCs = []
    }

    enum CodingKeys: String, CodingKey { case profile, atc, keys, lastOnlineATC, reconciledATC, receivedKeysThrough, unseenATCs }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        profile = try c.decode(CardProfile.self, forKey: .profile)
        atc = try c.decode(UInt16.self, forKey: .atc)
        keys = try c.decode([HeldKey].self, forKey: .keys)
        lastOnlineATC = try c.decode(UInt16.self, forKey: .lastOnlineATC)
        reconciledATC = try c.decode(UInt16.self, forKey: .reconciledATC)
        // Stores written before this field: the keys still held are what is known.
        receivedKeysThrough = try c.decodeIfPresent(UInt16.self, forKey: .receivedKeysThrough) ?? keys.map(\.sequence).max() ?? 0
        unseenATCs = try c.decodeIfPresent([UInt16].self, forKey: .unseenATCs) ?? []
    }
}
