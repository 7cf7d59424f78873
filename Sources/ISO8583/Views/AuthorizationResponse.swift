import EMV
import PaymentCore

/// The answer to a 0100/0200 (0110/0210): the request's identifying fields echoed, the
/// response code, the authorization code, and issuer data in DE55 (tag 91, scripts 71/72).
public struct AuthorizationResponse: Sendable, Hashable {
    public var mti: MessageType
    public var echoed: Message
    /// DE39: "00" approved; "05", "14", "51", "54", "55", "57", "61", "65", "75", "91", "96" … declined.
    public var responseCode: String
    /// DE38.
    public var authorizationCode: String?
    /// DE55 from the issuer.
    public var iccData: [TLV]?

    /// Fields copied from the request into the response (ISO 8583 echo rules).
    public static let echoedFields = [2, 3, 4, 7, 11, 12, 13, 14, 22, 23, 25, 32, 33, 37, 41, 42, 49]

    public init(responding request: Message, responseCode: String, authorizationCode: String? = nil, iccData: [TLV]? = nil) throws(ISO8583Error) {
        guard let mtiText = MessageType.responseMTI(for: request.mti), let type = MessageType(rawValue: mtiText) else {
            throw ISO8583Error(.invalidValue("MTI \(request.mti) has no response"), path: "MTI", offset: 0)
        }
        mti = type
        var echo = Message(mti: mtiText)
        for n in Self.echoedFields { echo.set(n, bytes: request.bytes(n)) }
        echoed = echo
        self.responseCode = responseCode
        self.authorizationCode = authorizationCode
        self.iccData = iccData
    }

    public init(message m: Message) throws(ISO8583Error) {
        guard let type = MessageType(rawValue: m.mti), !MessageType.isRequest(m.mti) else {
            throw ISO8583Error(.invalidValue("MTI \(m.mti) is not a response"), path: "MTI", offset: 0)
        }
        guard let rc = m[39] else { throw ISO8583Error(.invalidValue("response code is missing"), path: "DE39", offset: 0) }
        mti = type
        responseCode = rc
        authorizationCode = m[38]
        var echo = Message(mti: m.mti)
        for n in Self.echoedFields { echo.set(n, bytes: m.bytes(n)) }
        echoed = echo
        if let icc = m.bytes(55) {
            do { iccData = try TLV.decode(icc) } catch { throw ISO8583Error(.invalidValue("\(error)"), path: "DE55", offset: 0) }
        }
    }

    public var message: Message {
        var m = echoed
        m.mti = mti.rawValue
        m[38] = authorizationCode
        m[39] = responseCode
        m.set(55, bytes: iccData.map { $0.encoded() })
        return m
    }

    public var isApproved: Bool { responseCode == "00" }

    /// Issuer authentication data (tag 91) from DE55, when present.
    public var issuerAuthenticationData: [UInt8]? { iccData?.find(0x91)?.value }
}
