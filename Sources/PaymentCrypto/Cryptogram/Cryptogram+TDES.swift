import PaymentCore

/// The 3DES cryptogram path on 64-bit words: the same derivations and MAC as the byte-array
/// functions, without an allocation per block. Every 3DES profile goes through it; the tests
/// compare it with the published vectors and with independent implementations.
extension Cryptogram {
    /// Odd parity on each byte of a 64-bit word (FIPS 46-3).
    @inline(__always)
    static func oddParity(_ x: UInt64) -> UInt64 {
        var out: UInt64 = 0
        for shift in stride(from: 56, through: 0, by: -8) {
            let b = UInt8(truncatingIfNeeded: x >> UInt64(shift)) & 0xFE
            out = out << 8 | UInt64(b.nonzeroBitCount & 1 == 0 ? b | 1 : b)
        }
        return out
    }

    /// ALG(K)[Y] ‖ ALG(K)[~Y] as a two-key 3DES key. (Parity bits never enter DES, so the
    /// odd-parity adjustment the byte functions show is skipped here.)
    @inline(__always)
    static func diversify(_ key: Legacy.TripleDES, _ y: UInt64) -> Legacy.TripleDES {
        Legacy.TripleDES(k1: key.encrypt(y), k2: key.encrypt(~y))
    }

    /// Option A's Y as a word: the rightmost 16 digits of PAN ‖ PSN, packed BCD.
    static func optionAWord(pan: PAN, psn: String) throws(CryptoError) -> UInt64 {
        guard psn.utf8.count == 2, psn.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
            throw CryptoError("PAN sequence number must be 2 digits")
        }
        var y: UInt64 = 0
        var taken = 0
        for c in psn.utf8.reversed() {
            y |= UInt64(c - 48) << UInt64(4 * taken)
            taken += 1
        }
        for c in pan.digits.utf8.reversed() where taken < 16 {
            y |= UInt64(c &- 48) << UInt64(4 * taken)
            taken += 1
        }
        return y
    }

    /// The key the card holds (card key, or the limited-use key), derived from the IMK.
    static func tdesHeldKey(profile: CryptogramProfile, imk: Legacy.TripleDES, pan: PAN, psn: String, iad: [UInt8]) throws(CryptoError) -> Legacy.TripleDES {
        let y: UInt64
        switch profile.cardKey {
        case .optionA:
            y = try optionAWord(pan: pan, psn: psn)
        case .optionB where pan.digits.utf8.count <= 16:
            y = try optionAWord(pan: pan, psn: psn)
        case .optionB:
            y = try EMVKeyDerivation.optionBInput(pan: pan, psn: psn).bigEndianUInt64
        }
        let cardKey = diversify(imk, y)
        guard profile.sessionKey == .limitedUseKey else { return cardKey }
        // The LUK's Y: 4C ‖ hour (3) ‖ sequence (2) ‖ 0000, read straight from the cloud IAD.
        guard iad.count == CloudIAD.length, iad[0] == 0x0D, iad[2] == CloudIAD.cvn else { _ = try CloudIAD(bytes: iad); return cardKey }
        var lukY: UInt64 = 0x4C
        for i in 8..<13 { lukY = lukY << 8 | UInt64(iad[i]) }
        return diversify(cardKey, lukY << 16)
    }

    /// The AC key from the key the card holds.
    static func tdesACKey(profile: CryptogramProfile, held: Legacy.TripleDES, data: TransactionData) -> Legacy.TripleDES {
        let e = data.elements
        let atc = UInt64(e[31]) << 8 | UInt64(e[32])
        switch profile.sessionKey {
        case .none, .limitedUseKey:
            return held
        case .unionPay:
            return Legacy.TripleDES(k1: held.encrypt(atc), k2: held.encrypt(~atc & 0xFFFF))
        case .emvCommonATC, .emvCommonATCUN:
            var r = atc << 48
            if profile.sessionKey == .emvCommonATCUN {
                r |= UInt64(e[25]) << 24 | UInt64(e[26]) << 16 | UInt64(e[27]) << 8 | UInt64(e[28])
            }
            let cleared = r & ~(UInt64(0xFF) << 40)
            return Legacy.TripleDES(k1: oddParity(held.encrypt(cleared | UInt64(0xF0) << 40)),
                                    k2: oddParity(held.encrypt(cleared | UInt64(0x0F) << 40)))
        }
    }

    /// The AC as a 64-bit word: retail MAC over the minimum set and the IAD part, padded.
    static func tdesAC(profile: CryptogramProfile, key: Legacy.TripleDES, data: TransactionData) throws(CryptoError) -> UInt64 {
        let iadPart: ArraySlice<UInt8>
        switch profile.acData {
        case .fullIAD:
            iadPart = data.iad[...]
        case .cvr(let offset, let length):
            guard data.iad.count >= offset + length else {
                throw CryptoError("IAD of \(data.iad.count) bytes has no CVR at \(offset)..<\(offset + length)")
            }
            iadPart = data.iad[offset..<offset + length]
        }
        var message: [UInt8] = []
        message.reserveCapacity(data.elements.count + iadPart.count + 8)
        message += data.elements
        message += iadPart
        // Pad in place (ISO/IEC 9797-1 method 1 or 2).
        if profile.padding == .method2 { message.append(0x80) }
        while message.count % 8 != 0 || message.isEmpty { message.append(0) }
        return ISO9797.retailMACWord(message, key: key)
    }
}
