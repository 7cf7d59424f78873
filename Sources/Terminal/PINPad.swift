import Foundation
import PaymentCore
import PaymentCrypto

/// The PIN entry device: it takes the PIN from the customer and gives back only the PIN block
/// (ISO 9564 format 0, encrypted under the terminal's PIN key). A clear PIN never leaves it.
public protocol PINPad: Sendable {
    /// Nil when the customer cancels.
    func capturePIN(for pan: PAN) async throws -> EncryptedPINBlock?
}

/// A PIN pad in software: the terminal PIN key lives inside it, and the keypad is a function
/// (a test, or the CLI's prompt) that yields the digits.
public struct SoftwarePINPad: PINPad {
    let tpk: [UInt8]
    let keypad: @Sendable () async -> String?

    public init(terminalPINKey: [UInt8], keypad: @escaping @Sendable () async -> String?) {
        self.tpk = terminalPINKey
        self.keypad = keypad
    }

    public func capturePIN(for pan: PAN) async throws -> EncryptedPINBlock? {
        guard let pin = await keypad() else { return nil }
        return try ISO9564.encipher(PINBlock.encode(pin: pin, format: .iso0, pan: pan), key: tpk, pan: pan)
    }
}
