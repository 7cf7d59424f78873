import PaymentCore

/// Network management (0800/0810): sign-on, sign-off, echo and key exchange.
///
/// The network dialect carries the code in DE70; the terminal dialect in DE60.3 (with the
/// batch number in DE60.2). Key exchange carries the new key only wrapped under the zone master
/// key (a TR-31 block or a key under the ZMK), never in clear, in DE62 in both dialects.
public struct NetworkManagement: Sendable, Hashable {
    public enum Style: Sendable, Hashable { case network, terminal }

    public var isResponse: Bool
    public var code: NetworkManagementCode
    public var stan: String
    public var transmissionDateTime: String?
    public var terminalID: String?
    public var merchantID: String?
    public var institutionID: String?
    public var batchNumber: String
    public var responseCode: String?
    /// Wrapped key material for key exchange (TR-31 block or key under the ZMK), and its KCV.
    public var keyData: [UInt8]?

    public init(code: NetworkManagementCode, stan: String, transmissionDateTime: String? = nil, terminalID: String? = nil,
                merchantID: String? = nil, institutionID: String? = nil, batchNumber: String = "000001", keyData: [UInt8]? = nil) {
        self.isResponse = false
        self.code = code
        self.stan = stan
        self.transmissionDateTime = transmissionDateTime
        self.terminalID = terminalID
        self.merchantID = merchantID
        self.institutionID = institutionID
        self.batchNumber = batchNumber
        self.keyData = keyData
    }

    public func message(style: Style) -> Message {
        var m = Message(mti: isResponse ? MessageType.networkManagementResponse.rawValue : MessageType.networkManagementRequest.rawValue)
        m[7] = transmissionDateTime
        m[11] = stan
        m[39] = responseCode
        m[41] = terminalID
        m[42] = merchantID
        switch style {
        case .network:
            m[33] = institutionID
            m[70] = code.rawValue
            m.set(62, bytes: keyData)
        case .terminal:
            m[60] = "00" + batchNumber + code.rawValue
            m.set(62, bytes: keyData)
        }
        return m
    }

    public init(message m: Message) throws(ISO8583Error) {
        guard m.mti == "0800" || m.mti == "0810" else { throw ISO8583Error(.invalidValue("MTI \(m.mti) is not 0800/0810"), path: "MTI", offset: 0) }
        isResponse = m.mti == "0810"
        guard let stan = m[11] else { throw ISO8583Error(.invalidValue("required field is missing"), path: "DE11", offset: 0) }
        self.stan = stan
        transmissionDateTime = m[7]
        terminalID = m[41]
        merchantID = m[42]
        institutionID = m[33]
        responseCode = m[39]
        if let c = m[70] {
            guard let code = NetworkManagementCode(rawValue: c) else { throw ISO8583Error(.invalidValue("unknown code \(c)"), path: "DE70", offset: 0) }
            self.code = code
            batchNumber = "000000"
            keyData = m.bytes(62)
        } else if let de60 = m[60], de60.count >= 11 {
            let chars = Array(de60)
            batchNumber = String(chars[2..<8])
            guard let code = NetworkManagementCode(rawValue: String(chars[8..<11])) else {
                throw ISO8583Error(.invalidValue("unknown code \(String(chars[8..<11]))"), path: "DE60.3", offset: 0)
            }
            self.code = code
            keyData = m.bytes(62)
        } else {
            throw ISO8583Error(.invalidValue("no network management code (DE70 or DE60.3)"), path: "DE70", offset: 0)
        }
    }

    /// The response to this request.
    public func response(code responseCode: String = "00", keyData: [UInt8]? = nil) -> NetworkManagement {
        var r = self
        r.isResponse = true
        r.responseCode = responseCode
        r.keyData = keyData
        return r
    }
}
