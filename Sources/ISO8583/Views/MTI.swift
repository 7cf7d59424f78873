/// Message type indicators CloudTap uses (ISO 8583:1987 version 0).
public enum MessageType: String, Sendable, Hashable, CaseIterable {
    case authorizationRequest = "0100", authorizationResponse = "0110"
    case authorizationAdvice = "0120", authorizationAdviceResponse = "0130"
    case financialRequest = "0200", financialResponse = "0210"
    case reversalRequest = "0400", reversalResponse = "0410"
    case reversalAdvice = "0420", reversalAdviceResponse = "0430"
    case networkManagementRequest = "0800", networkManagementResponse = "0810"

    /// The response MTI for a request MTI: the third digit plus one ("0200" → "0210").
    public static func responseMTI(for mti: String) -> String? {
        var digits = Array(mti.utf8)
        guard isRequest(digits) else { return nil }
        digits[2] += 1
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
