import EMV
import PaymentCore

/// An authorization (0100) or financial (0200) request as CloudTap sends it (DESIGN §3).
public struct AuthorizationRequest: Sendable, Hashable {
    public var mti: MessageType
    public var pan: PAN
    /// DE3, "000000" for a purchase.
    public var processingCode: String
    /// DE4 and DE49.
    public var amount: Amount
    /// DE7, MMDDhhmmss in UTC.
    public var transmissionDateTime: String
    /// DE11.
    public var stan: String
    /// DE12 hhmmss and DE13 MMDD, local to the terminal.
    public var localTime: String
    public var localDate: String
    /// DE14 YYMM.
    public var expiry: String?
    /// DE22: "071" contactless chip with online PIN, "072" without PIN, "03x" consumer-presented QR.
    public var posEntryMode: String
    /// DE23, three digits.
    public var cardSequenceNumber: String?
    /// DE25.
    public var posConditionCode: String
    /// DE26 when a PIN is present.
    public var pinCaptureCode: String?
    /// DE32.
    public var acquirerID: String
    /// DE33.
    public var forwardingID: String?
    /// DE35, with `=` as separator.
    public var track2: String?
    /// DE37.
    public var retrievalReference: String?
    /// DE41, DE42, DE43.
    public var terminalID: String
    public var merchantID: String
    public var merchantNameLocation: String?
    /// DE18.
    public var merchantType: String?
    /// DE52, an ISO 9564 block enciphered under the sender's PIN key.
    public var pinBlock: [UInt8]?
    /// DE53.
    public var securityControl: String?
    /// DE55 objects, in order; unknown tags are carried as they came.
    public var iccData: [TLV]?
    /// DE63 tagged subfields ("TK", "SM", "PR").
    public var privateData: [(String, String)]

    public init(
        mti: MessageType = .financialRequest, pan: PAN, processingCode: String = "000000", amount: Amount, transmissionDateTime: String,
        stan: String, localTime: String, localDate: String, expiry: String? = nil, posEntryMode: String, cardSequenceNumber: String? = nil,
        posConditionCode: String = "00", pinCaptureCode: String? = nil, acquirerID: String, forwardingID: String? = nil, track2: String? = nil,
        retrievalReference: String? = nil, terminalID: String, merchantID: String, merchantNameLocation: String? = nil, merchantType: String? = nil,
        pinBlock: [UInt8]? = nil, securityControl: String? = nil, iccData: [TLV]? = nil, privateData: [(String, String)] = []
    ) {
        self.mti = mti; self.pan = pan; self.processingCode = processingCode; self.amount = amount
        self.transmissionDateTime = transmissionDateTime; self.stan = stan; self.localTime = localTime; self.localDate = localDate
        self.expiry = expiry; self.posEntryMode = posEntryMode; self.cardSequenceNumber = cardSequenceNumber
        self.posConditionCode = posConditionCode; self.pinCaptureCode = pinCaptureCode; self.acquirerID = acquirerID
        self.forwardingID = forwardingID; self.track2 = track2; self.retrievalReference = retrievalReference
        self.terminalID = terminalID; self.merchantID = merchantID; self.merchantNameLocation = merchantNameLocation
        self.merchantType = merchantType; self.pinBlock = pinBlock; self.securityControl = securityControl
        self.iccData = iccData; self.privateData = privateData
    }

    public static func == (a: Self, b: Self) -> Bool { a.message == b.message }
    public func hash(into h: inout Hasher) { h.combine(message) }

    /// The message, ready to pack in any dialect.
    public var message: Message {
        var m = Message(mti: mti.rawValue)
        m[2] = pan.digits
        m[3] = processingCode
        m[4] = amount.n12
        m[7] = transmissionDateTime
        m[11] = stan
        m[12] = localTime
        m[13] = localDate
        m[14] = expiry
        m[18] = merchantType
        m[22] = posEntryMode
        m[23] = cardSequenceNumber
        m[25] = posConditionCode
        m[26] = pinCaptureCode
        m[32] = acquirerID
        m[33] = forwardingID
        m[35] = track2
        m[37] = retrievalReference
        m[41] = terminalID
        m[42] = merchantID
        m[43] = merchantNameLocation
        m[49] = amount.currency.numericString
        m.set(52, bytes: pinBlock)
        m[53] = securityControl
        m.set(55, bytes: iccData.map { $0.encoded() })
        if !privateData.isEmpty { m[63] = Tagged.build(privateData, CompositeSpec(kind: .tagged, tagLength: 2, lengthDigits: 3)) }
        return m
    }

    /// Reads a request; errors name the missing or malformed field.
    public init(message m: Message) throws(ISO8583Error) {
        // A repeat (0101, 0121, 0201) reads as the request it repeats.
        guard let type = MessageType(rawValue: MessageType.original(of: m.mti)), type == .authorizationRequest || type == .financialRequest || type == .authorizationAdvice else {
            throw ISO8583Error(.invalidValue("MTI \(m.mti) is not 0100, 0120 or 0200 (or their repeats)"), path: "MTI", offset: 0)
        }
        func required(_ n: Int) throws(ISO8583Error) -> String {
            guard let v = m[n] else { throw ISO8583Error(.invalidValue("required field is missing"), path: "DE\(n)", offset: 0) }
            return v
        }
        mti = type
        do { pan = try PAN(try required(2)) } catch let e as ISO8583Error { throw e } catch {
            throw ISO8583Error(.invalidValue("\(error)"), path: "DE2", offset: 0)
        }
        processingCode = try required(3)
        let currency = Currency(code: try required(49)) ?? Currency(numericCode: UInt16(m[49] ?? "0") ?? 0, alphaCode: m[49] ?? "", exponent: 2)
        guard let minor = Int64(try required(4)) else { throw ISO8583Error(.invalidValue("amount is not numeric"), path: "DE4", offset: 0) }
        amount = Amount(minorUnits: minor, currency: currency)
        transmissionDateTime = try required(7)
        stan = try required(11)
        localTime = try required(12)
        localDate = try required(13)
        expiry = m[14]
        merchantType = m[18]
        posEntryMode = try required(22)
        cardSequenceNumber = m[23]
        posConditionCode = m[25] ?? "00"
        pinCaptureCode = m[26]
        acquirerID = try required(32)
        forwardingID = m[33]
        track2 = m[35]
        retrievalReference = m[37]
        terminalID = try required(41)
        merchantID = try required(42)
        merchantNameLocation = m[43]
        pinBlock = m.bytes(52)
        securityControl = m[53]
        if let icc = m.bytes(55) {
            do { iccData = try TLV.decode(icc) } catch { throw ISO8583Error(.invalidValue("\(error)"), path: "DE55", offset: 0) }
        } else {
            iccData = nil
        }
        if let de63 = m.bytes(63) {
            privateData = try Tagged.parse(de63, CompositeSpec(kind: .tagged, tagLength: 2, lengthDigits: 3), path: "DE63")
                .map { ($0.0, String(decoding: $0.1, as: UTF8.self)) }
        } else {
            privateData = []
        }
    }

    /// Whether the cardholder entered a PIN (DE22 position 3 = 1, or a PIN block is present).
    public var hasPIN: Bool { pinBlock != nil }
}
