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
        var chars = Array(mti)
        guard chars.count == 4, let d = chars[2].wholeNumberValue, d % 2 == 0 else { return nil }
        chars[2] = Character(String(d + 1))
        return String(chars)
    }

    /// Whether an MTI is a request (third digit even: 0, 2, 4 …).
    public static func isRequest(_ mti: String) -> Bool {
        guard mti.count == 4, let d = Array(mti)[2].wholeNumberValue else { return false }
        return d % 2 == 0
    }
}

/// Network management information codes (DE70 in the network dialect, DE60.3 at the terminal).
public enum NetworkManagementCode: String, Sendable, Hashable, CaseIterable {
    case signOn = "001"
    case signOff = "002"
    case keyExchange = "101"
    case echo = "301"
}
