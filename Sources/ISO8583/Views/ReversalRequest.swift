import PaymentCore

/// A reversal (0400) or reversal advice (0420) of an earlier request, naming it in DE90.
public struct ReversalRequest: Sendable, Hashable {
    public var mti: MessageType
    /// The fields of the original request the reversal repeats (2, 3, 4, 11, 22, 32, 41, 42, 49 …).
    public var original: Message
    /// DE11 of this message.
    public var stan: String
    /// DE7 of this message.
    public var transmissionDateTime: String
    /// DE39: why — "98" no response from the POS's point of view, "96" system malfunction, "06" error.
    public var reasonCode: String

    public init(mti: MessageType = .reversalRequest, original: Message, stan: String, transmissionDateTime: String, reasonCode: String = "98") {
        self.mti = mti
        self.original = original
        self.stan = stan
        self.transmissionDateTime = transmissionDateTime
        self.reasonCode = reasonCode
    }

    /// DE90: original MTI, STAN, transmission date-time, acquirer and forwarding institution ids.
    public static func originalDataElements(of m: Message) -> String {
        func pad(_ s: String?, _ n: Int) -> String {
            let v = s ?? ""
            return String(repeating: "0", count: max(0, n - v.count)) + v.suffix(n)
        }
        return pad(m.mti, 4) + pad(m[11], 6) + pad(m[7], 10) + pad(m[32], 11) + pad(m[33], 11)
    }

    public var message: Message {
        var m = Message(mti: mti.rawValue)
        for n in [2, 3, 4, 12, 13, 14, 22, 23, 25, 32, 33, 35, 37, 41, 42, 49, 55] { m.set(n, bytes: original.bytes(n)) }
        m[7] = transmissionDateTime
        m[11] = stan
        m[39] = reasonCode
        m[90] = Self.originalDataElements(of: original)
        return m
    }
}
