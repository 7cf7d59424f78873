/// Message type indicators CloudTap uses (ISO 8583:1987 version 0). A repeat (fourth digit 1)
/// is the same message sent again by a sender that heard no answer to it.
public enum MessageType: String, Sendable, Hashable, CaseIterable {
    case authorizationRequest = "0100", authorizationRequestRepeat = "0101", authorizationResponse = "0110"
    case authorizationAdvice = "0120", authorizationAdviceRepeat = "0121", authorizationAdviceResponse = "0130"
    case financialRequest = "0200", financialRequestRepeat = "0201", financialResponse = "0210"
    case reversalRequest = "0400", reversalRequestRepeat = "0401", reversalResponse = "0410"
    case reversalAdvice = "0420", reversalAdviceRepeat = "0421", reversalAdviceResponse = "0430"
    case networkManagementRequest = "0800", networkManagementResponse = "0810"

    /// The response MTI for a request MTI: the third digit plus one, and a repeat answered as
    /// its first sending ("0200" → "0210", "0401" → "0410", "0423" → "0432").
    public static func responseMTI(for mti: String) -> String? {
        var digits = Array(mti.utf8)
        guard isRequest(digits) else { return nil }
        digits[2] += 1
        if (digits[3] - 0x30) % 2 == 1 { digits[3] -= 1 }
        return String(decoding: digits, as: UTF8.self)
    }

    /// The message type with a repeat taken as its first sending ("0401" → "0400"); other
    /// MTIs as they are.
    public static func original(of mti: String) -> String {
        var digits = Array(mti.utf8)
        guard digits.count == 4, digits[3] == 0x31 || digits[3] == 0x33 else { return mti }
        digits[3] -= 1
        return String(decoding: digits, as: UTF8.self)
    }

    /// Whether an MTI is a request (third digit even: 0, 2, 4 …).
    public static func isRequest(_ mti: String) -> Bool { isRequest(Array(mti.utf8)) }

    /// Four ASCII digits, the third even (read as bytes: the switch asks this of every message).
    static func isRequest(_ digits: [UInt8]) -> Bool {
        digits.count == 4 && digits.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } && (digits[2] - 0x30) % 2 == 0
    }
}

/// Network management information codes (DE70 in the network dialect, DE60.3 at the terminal).
public enum NetworkManagementCode: String, Sendable, Hashable, CaseIterable {
    case signOn = "001"
    case signOff = "002"
    case keyExchange = "101"
    case echo = "301"
}
