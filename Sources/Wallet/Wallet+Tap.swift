import Foundation
import PaymentCore
import PaymentCrypto

/// The card's answer to one tap: what goes into the GPO (fast path) or GENERATE AC response.
struct CardAnswer: Sendable {
    var cid: UInt8
    var cryptogram: [UInt8]
    var atc: UInt16
    var iad: [UInt8]
    var ctq: [UInt8]
}

/// Bits of the CVR's third byte that CloudTap's cards set (docs/cloud-cvn.md).
enum CVRFlag {
    /// The owner verified themselves on the phone (consumer device CVM).
    static let cdcvmPerformed: UInt8 = 0x80
    /// The card asked the terminal for online PIN.
    static let onlinePINRequested: UInt8 = 0x40
    /// A cloud card had no usable limited-use key and declined.
    static let noUsableKey: UInt8 = 0x20
}

extension Wallet {
    /// The application interchange profile both paths return: no offline data authentication
    /// (cloud cards are online-only), nothing else claimed.
    static let aip: [UInt8] = [0x00, 0x00]

    /// Makes the cryptogram for one tap and stores the new ATC, the key's use and the log entry
    /// before returning. `terminal` holds the values of 9F66 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37.
    func answer(cardID: String, terminal: [UInt32: [UInt8]], now: Date) throws -> CardAnswer {
        let ownerVerified = self.ownerVerified
        return try tap(cardID: cardID) { state, log in
            guard let i = state.cards.firstIndex(where: { $0.profile.id == cardID }) else { throw WalletError.unknownCard(cardID) }
            var card = state.cards[i]
            guard let profile = card.profile.profile else { throw WalletError.invalidProfile(card.profile.cryptogramProfile) }
            guard card.atc < UInt16.max else { throw WalletError.invalidProfile("the ATC is exhausted") }
            let ttq = terminal[0x9F66] ?? [0, 0, 0, 0]
            let amountBCD = terminal[0x9F02] ?? [UInt8](repeating: 0, count: 6)
            let amount = Int64(amountBCD.reduce(0) { $0 * 100 + Int64($1 >> 4) * 10 + Int64($1 & 0x0F) })

            // Cardholder verification: online PIN when the terminal needs a CVM and can take a PIN;
            // otherwise the owner's verification on the phone, else a signature.
            var ctq: [UInt8] = [0x00, 0x00]
            var flags: UInt8 = ownerVerified ? CVRFlag.cdcvmPerformed : 0
            let cvmRequired = ttq.count > 1 && ttq[1] & 0x40 != 0
            if cvmRequired {
                if ttq[0] & 0x04 != 0 {
                    ctq[0] |= 0x80
                    flags |= CVRFlag.onlinePINRequested
                } else if ownerVerified {
                    ctq[1] |= 0x80
                } else {
                    ctq[0] |= 0x40
                }
            }

            card.atc += 1
            let atc = card.atc
            var keyIndex: Int?
            if card.profile.kind == .cloud {
                keyIndex = card.keys.firstIndex { $0.isUsable(for: amount, at: now) }
                if keyIndex == nil { flags |= CVRFlag.noUsableKey }
            }
            let approveOnline = card.profile.kind == .physical || keyIndex != nil
            let cvr: [UInt8] = [0x03, approveOnline ? 0xA0 : 0x80, flags, 0x00]

            var iad: [UInt8]
            var cryptogram = [UInt8](repeating: 0, count: 8)
            var keySequence: UInt16 = 0
            if let k = keyIndex {
                card.keys[k].uses += 1
                card.keys[k].cumulativeAmount += amount
                let key = card.keys[k]
                keySequence = key.sequence
                iad = CloudIAD(dki: 0x01, cvr: cvr, algorithm: profile.algorithm, keyIndex: key.index, useCount: UInt8(clamping: key.uses)).bytes
                cryptogram = try Cryptogram.generate(profile: profile, cardKey: key.key, data: try Self.data(terminal, atc: atc, iad: iad))
            } else if card.profile.kind == .physical, let cardKey = card.profile.cardKey {
                iad = UnionPayIAD(dki: 0x01, cvn: profile.cvn, cvr: cvr, algorithm: profile.algorithm).bytes
                cryptogram = try Cryptogram.generate(profile: profile, cardKey: cardKey, data: try Self.data(terminal, atc: atc, iad: iad))
            } else {
                // No key: an AAC without a cryptogram the cloud could check; the terminal declines.
                iad = CloudIAD(dki: 0x01, cvr: cvr, algorithm: profile.algorithm, keyIndex: LimitedUseKeyIndex(generationHour: 0, sequence: 0), useCount: 0).bytes
            }
            if approveOnline { card.lastOnlineATC = atc }
            state.cards[i] = card
            log.append(WalletLogEntry(cardID: cardID, atc: atc, keySequence: keySequence, amount: amount,
                                            currency: UInt16(Self.bcdValue(terminal[0x5F2A] ?? [])), cryptogramType: approveOnline ? "ARQC" : "AAC", date: now))
            return CardAnswer(cid: approveOnline ? 0x80 : 0x00, cryptogram: cryptogram, atc: atc, iad: iad, ctq: ctq)
        }
    }

    static func data(_ terminal: [UInt32: [UInt8]], atc: UInt16, iad: [UInt8]) throws -> TransactionData {
        var values = terminal
        values[0x82] = aip
        values[0x9F36] = [UInt8(atc >> 8), UInt8(atc & 0xFF)]
        values[0x9F10] = iad
        return try TransactionData(values: values)
    }

    static func bcdValue(_ bytes: [UInt8]) -> Int {
        bytes.reduce(0) { $0 * 100 + Int($1 >> 4) * 10 + Int($1 & 0x0F) }
    }
}
