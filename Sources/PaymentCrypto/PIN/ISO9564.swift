import PaymentCore

/// Enciphering, deciphering and translating PIN blocks (ISO 9564-1:2017, ANSI X9.8).
public enum ISO9564 {
    /// Enciphers a clear PIN block under a PIN encryption key: 3DES ECB for formats 0–3,
    /// the two-pass AES of format 4 (which needs the PAN).
    public static func encipher(_ block: PINBlock, key: [UInt8], pan: PAN?) throws -> EncryptedPINBlock {
        switch block.format {
        case .iso4:
            guard let pan else { throw PINBlock.Error.panRequired }
            let aes = try AESCipher(key: key)
            let a = aes.encrypt(block: block.bytes)
            return EncryptedPINBlock(format: .iso4, bytes: aes.encrypt(block: xor(a, PINBlock.format4PANField(pan))))
        default:
            return EncryptedPINBlock(format: block.format, bytes: try Legacy.TripleDES(key: key).encrypt(block: block.bytes))
        }
    }

    /// Deciphers to the clear PIN block (the PIN field for format 4).
    public static func decipher(_ block: EncryptedPINBlock, key: [UInt8], pan: PAN?) throws -> PINBlock {
        guard block.bytes.count == block.format.blockLength else {
            throw PINBlock.Error.wrongBlockLength(expected: block.format.blockLength, actual: block.bytes.count)
        }
        switch block.format {
        case .iso4:
            guard let pan else { throw PINBlock.Error.panRequired }
            let aes = try AESCipher(key: key)
            let b = aes.decrypt(block: block.bytes)
            return PINBlock(format: .iso4, bytes: aes.decrypt(block: xor(b, PINBlock.format4PANField(pan))))
        default:
            return PINBlock(format: block.format, bytes: try Legacy.TripleDES(key: key).decrypt(block: block.bytes))
        }
    }

    /// The side of a translation: key, format and PAN.
    public struct Zone: Sendable {
        public var key: [UInt8]
        public var format: PINBlockFormat
        public var pan: PAN?
        public init(key: [UInt8], format: PINBlockFormat, pan: PAN?) {
            self.key = key
            self.format = format
            self.pan = pan
        }
    }

    /// Translates a PIN block from one key, format and PAN to another — as the switch does from
    /// the terminal's zone and the token to the issuer's zone and the real card number. The
    /// clear PIN exists only inside this call.
    public static func translate(_ block: EncryptedPINBlock, from source: Zone, to destination: Zone) throws -> EncryptedPINBlock {
        let clear = try decipher(block, key: source.key, pan: source.pan)
        let pin = try clear.decodePIN(pan: source.pan)
        let reencoded = try PINBlock.encode(pin: pin, format: destination.format, pan: destination.pan)
        return try encipher(reencoded, key: destination.key, pan: destination.pan)
    }

    /// The fast path for the common 3DES format 0 → format 0 translation: the same steps with
    /// pre-expanded keys and no intermediate allocations beyond the PIN digits.
    public static func translateFormat0(
        _ block: [UInt8], from sourceKey: Legacy.TripleDES, sourcePAN: PAN, to destinationKey: Legacy.TripleDES, destinationPAN: PAN
    ) throws -> [UInt8] {
        guard block.count == 8 else { throw PINBlock.Error.wrongBlockLength(expected: 8, actual: block.count) }
        let clear = sourceKey.decrypt(block.bigEndianUInt64) ^ (try PINBlock.panBlockWord(sourcePAN))
        // Check the PIN field: control 0, length 4–12, digits, F fill.
        let control = clear >> 60, n = Int((clear >> 56) & 0xF)
        guard control == 0 else { throw PINBlock.Error.wrongControlField(expected: 0, found: Int(control)) }
        guard (4...12).contains(n) else { throw PINBlock.Error.malformed("PIN length nibble \(n)") }
        for i in 0..<14 {
            let nibble = (clear >> (52 - 4 * UInt64(i))) & 0xF
            if i < n { guard nibble <= 9 else { throw PINBlock.Error.malformed("non-digit in PIN field") } }
            else { guard nibble == 0xF else { throw PINBlock.Error.malformed("fill is not F") } }
        }
        let out = clear ^ (try PINBlock.panBlockWord(destinationPAN))
        return destinationKey.encrypt(out).bigEndianBytes()
    }
}
