import Foundation
import PaymentCore

/// What a contactless POS is set up with: the applications it accepts, its limits and its
/// capabilities as the TTQ (9F66) tells the card.
public struct TerminalConfiguration: Sendable, Hashable {
    /// AIDs the terminal supports; a card's AID matches when it starts with one of them.
    public var supportedAIDs: [[UInt8]]
    /// At or above this amount (minor units) the tap is refused: use another interface.
    public var contactlessLimit: Int64
    /// At or above this amount a CVM is required (below it: small amount, no PIN).
    public var cvmLimit: Int64
    /// Above this amount the transaction goes online; CloudTap terminals are online-only (0).
    public var floorLimit: Int64
    /// Whether a zero amount may be tapped (it then goes online).
    public var allowsZeroAmount: Bool
    /// qPBOC (fast path) supported; without it the terminal asks for contactless PBOC (full path).
    public var supportsQPBOC: Bool
    /// Online PIN can be captured on this terminal's PIN pad.
    public var supportsOnlinePIN: Bool
    public var country: UInt16
    public var currency: Currency
    /// 9F33, 9F35, 9F1E, 9F09 as the terminal reports them in DE55.
    public var capabilities: [UInt8]
    public var terminalType: UInt8
    public var interfaceDeviceSerial: String
    public var applicationVersion: [UInt8]

    public init(supportedAIDs: [[UInt8]] = TerminalConfiguration.unionPayAIDs, contactlessLimit: Int64 = 1_000_000, cvmLimit: Int64 = 100_000,
                floorLimit: Int64 = 0, allowsZeroAmount: Bool = false, supportsQPBOC: Bool = true, supportsOnlinePIN: Bool = true,
                country: UInt16 = 156, currency: Currency = .cny, capabilities: [UInt8] = [0xE0, 0x48, 0xC8], terminalType: UInt8 = 0x22,
                interfaceDeviceSerial: String = "CTPOS001", applicationVersion: [UInt8] = [0x00, 0x30]) {
        self.supportedAIDs = supportedAIDs
        self.contactlessLimit = contactlessLimit
        self.cvmLimit = cvmLimit
        self.floorLimit = floorLimit
        self.allowsZeroAmount = allowsZeroAmount
        self.supportsQPBOC = supportsQPBOC
        self.supportsOnlinePIN = supportsOnlinePIN
        self.country = country
        self.currency = currency
        self.capabilities = capabilities
        self.terminalType = terminalType
        self.interfaceDeviceSerial = interfaceDeviceSerial
        self.applicationVersion = applicationVersion
    }

    /// UnionPay debit, credit and quasi-credit.
    public static let unionPayAIDs: [[UInt8]] = [
        [0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x01], [0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x02],
        [0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x03],
    ]
}

/// One transaction as the cashier keyed it.
public struct TransactionInput: Sendable, Hashable {
    /// Minor units of the terminal's currency.
    public var amount: Int64
    public var otherAmount: Int64
    /// 9C: 00 purchase.
    public var type: UInt8
    public var date: Date
    /// 9F37, fresh for every tap.
    public var unpredictableNumber: [UInt8]

    public init(amount: Int64, otherAmount: Int64 = 0, type: UInt8 = 0x00, date: Date = Date(), unpredictableNumber: [UInt8]? = nil) {
        self.amount = amount
        self.otherAmount = otherAmount
        self.type = type
        self.date = date
        // Four random bytes from one draw (one call to the system's generator, not four).
        self.unpredictableNumber = unpredictableNumber ?? withUnsafeBytes(of: UInt32.random(in: .min ... .max)) { Array($0) }
    }
}
