import PaymentCore

/// A merchant-presented QR payload (EMV QRCPS MPM v1.1) as a merchant's terminal shows it and a
/// wallet reads it. Every data object is kept: those named here, and any other (RFU IDs,
/// unreserved templates 80–99) in `other`, so a payload re-encodes with nothing lost.
public struct MerchantPresentedCode: Sendable, Hashable {
    /// ID 01: how the code is used.
    public enum Initiation: String, Sendable, Hashable {
        /// `11`: the same code for every payment (printed at the counter).
        case staticCode = "11"
        /// `12`: a code for one payment (on the terminal's screen, usually with the amount).
        case dynamicCode = "12"
    }

    public var initiation: Initiation?
    /// IDs 02–51 in order: 02–25 primitive (scheme-assigned, e.g. 15 UnionPay), 26–51
    /// templates whose sub-ID 00 is a globally unique identifier.
    public var merchantAccounts: [MPMObject]
    /// ID 52 (ISO 18245).
    public var merchantCategoryCode: String
    /// ID 53: ISO 4217 numeric.
    public var currency: String
    /// ID 54: up to 13 characters, digits with an optional `.`; absent, the payer keys it.
    public var amount: String?
    /// ID 55: `01` the payer is asked for a tip, `02` a fixed fee (56), `03` a percentage (57).
    public var tipIndicator: String?
    public var convenienceFeeFixed: String?
    public var convenienceFeePercentage: String?
    /// ID 58: ISO 3166-1 alpha-2.
    public var countryCode: String
    /// ID 59, up to 25 characters.
    public var merchantName: String
    /// ID 60, up to 15 characters.
    public var merchantCity: String
    /// ID 61.
    public var postalCode: String?
    /// ID 62's objects: 01 bill number, 02 mobile, 03 store, 04 loyalty, 05 reference,
    /// 06 customer label, 07 terminal label, 08 purpose, 09 consumer data request; a value of
    /// `***` asks the payer to key it.
    public var additionalData: [MPMObject]
    /// ID 64's objects: 00 language (ISO 639), 01 merchant name and 02 city in that language.
    public var language: [MPMObject]
    /// IDs 65–99 and any other object, in order (80–99 unreserved templates included).
    public var other: [MPMObject]
    /// The order the IDs came in when read, kept so a payload re-encodes as it was; new IDs
    /// follow in ID order.
    var layout: [String] = []

    public init(initiation: Initiation?, merchantAccounts: [MPMObject], merchantCategoryCode: String, currency: String, amount: String? = nil,
                countryCode: String, merchantName: String, merchantCity: String, postalCode: String? = nil,
                additionalData: [MPMObject] = [], language: [MPMObject] = [], other: [MPMObject] = []) {
        self.initiation = initiation
        self.merchantAccounts = merchantAccounts
        self.merchantCategoryCode = merchantCategoryCode
        self.currency = currency
        self.amount = amount
        self.countryCode = countryCode
        self.merchantName = merchantName
        self.merchantCity = merchantCity
        self.postalCode = postalCode
        self.additionalData = additionalData
        self.language = language
        self.other = other
    }

    /// Parses and checks a payload: the CRC, ID 00 first, no ID twice, the templates' unique
    /// identifiers, and the formats of the mandatory objects.
    public init(payload: String) throws(MPMError) {
        let objects = try MPM.decode(payload)
        guard let first = objects.first, first.id == "00" else { throw MPMError(.payloadFormatFirst) }
        guard first.value == "01" else { throw MPMError(.invalidValue(id: "00", reason: "payload format indicator is \"01\"")) }
        var seen = Set<String>()
        for o in objects {
            guard seen.insert(o.id).inserted else { throw MPMError(.duplicateID(o.id)) }
        }
        func value(_ id: String) -> String? { objects.first { $0.id == id }?.value }
        func required(_ id: String, _ what: String) throws(MPMError) -> String {
            guard let v = value(id) else { throw MPMError(.invalidValue(id: id, reason: "\(what) is missing")) }
            return v
        }
        if let i = value("01") {
            guard let kind = Initiation(rawValue: i) else { throw MPMError(.invalidValue(id: "01", reason: "point of initiation is 11 or 12")) }
            initiation = kind
        } else {
            initiation = nil
        }
        merchantAccounts = objects.filter { (Int($0.id) ?? 0) >= 2 && (Int($0.id) ?? 0) <= 51 }
        guard !merchantAccounts.isEmpty else { throw MPMError(.invalidValue(id: "02-51", reason: "no merchant account information")) }
        for account in merchantAccounts where Int(account.id)! >= 26 {
            guard let guid = try account.children().first, guid.id == "00", !guid.value.isEmpty else { throw MPMError(.templateWithoutIdentifier(account.id)) }
        }
        merchantCategoryCode = try required("52", "merchant category code")
        currency = try required("53", "transaction currency")
        guard currency.count == 3, currency.allSatisfy(\.isASCIIDigit) else { throw MPMError(.invalidValue(id: "53", reason: "currency is ISO 4217 numeric")) }
        amount = value("54")
        if let amount {
            guard amount.count <= 13, Self.isAmount(amount) else { throw MPMError(.invalidValue(id: "54", reason: "amount is digits with an optional '.'")) }
        }
        tipIndicator = value("55")
        convenienceFeeFixed = value("56")
        convenienceFeePercentage = value("57")
        countryCode = try required("58", "country code")
        merchantName = try required("59", "merchant name")
        merchantCity = try required("60", "merchant city")
        postalCode = value("61")
        additionalData = try objects.first { $0.id == "62" }?.children() ?? []
        language = try objects.first { $0.id == "64" }?.children() ?? []
        let named: Set<String> = ["00", "01", "52", "53", "54", "55", "56", "57", "58", "59", "60", "61", "62", "64"]
        other = objects.filter { !named.contains($0.id) && !((Int($0.id) ?? 0) >= 2 && (Int($0.id) ?? 0) <= 51) }
        layout = objects.map(\.id)
    }

    /// The payload: ID 00 first, the others in the order they were read (new ones in ID order),
    /// the CRC last.
    public var payload: String {
        var objects = [MPMObject("00", "01")]
        if let initiation { objects.append(MPMObject("01", initiation.rawValue)) }
        objects += merchantAccounts
        objects.append(MPMObject("52", merchantCategoryCode))
        objects.append(MPMObject("53", currency))
        if let amount { objects.append(MPMObject("54", amount)) }
        if let tipIndicator { objects.append(MPMObject("55", tipIndicator)) }
        if let convenienceFeeFixed { objects.append(MPMObject("56", convenienceFeeFixed)) }
        if let convenienceFeePercentage { objects.append(MPMObject("57", convenienceFeePercentage)) }
        objects.append(MPMObject("58", countryCode))
        objects.append(MPMObject("59", merchantName))
        objects.append(MPMObject("60", merchantCity))
        if let postalCode { objects.append(MPMObject("61", postalCode)) }
        if !additionalData.isEmpty { objects.append(MPMObject("62", children: additionalData)) }
        if !language.isEmpty { objects.append(MPMObject("64", children: language)) }
        objects += other
        let rank = Dictionary(layout.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        return MPM.encode(objects.enumerated().sorted { a, b in
            switch (rank[a.element.id], rank[b.element.id]) {
            case let (x?, y?): x < y
            case (_?, nil): true
            case (nil, _?): false
            case (nil, nil): a.element.id < b.element.id
            }
        }.map(\.element))
    }

    static func isAmount(_ s: String) -> Bool {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), !parts[0].isEmpty else { return false }
        return parts.allSatisfy { $0.allSatisfy(\.isASCIIDigit) }
    }

    /// The amount in minor units of the currency, when the code carries one.
    public func amountValue() throws -> Amount? {
        guard let amount else { return nil }
        guard let currency = Currency(code: currency) else { throw MPMError(.invalidValue(id: "53", reason: "unknown currency \(self.currency)")) }
        return try Amount(amount, currency: currency)
    }

    /// Fields of the additional data template that ask the payer to key a value (`***`).
    public var prompts: [String] { additionalData.filter { $0.value == "***" }.map(\.id) }

    /// UnionPay's merchant account (ID 15, or 16 — both are UnionPay's): acquirer IIN (8),
    /// forwarding IIN (8), merchant id (15).
    public var unionPay: UnionPayMerchant? {
        guard let v = merchantAccounts.first(where: { ($0.id == "15" || $0.id == "16") && $0.value.count == 31 })?.value, v.allSatisfy({ $0.isASCII }) else { return nil }
        let c = Array(v)
        return UnionPayMerchant(acquirerIIN: String(c[0..<8]), forwardingIIN: String(c[8..<16]), merchantID: String(c[16..<31]))
    }
}

/// The UnionPay merchant account information of ID 15.
public struct UnionPayMerchant: Sendable, Hashable {
    public var acquirerIIN: String
    public var forwardingIIN: String
    public var merchantID: String

    public init(acquirerIIN: String, forwardingIIN: String, merchantID: String) {
        self.acquirerIIN = acquirerIIN
        self.forwardingIIN = forwardingIIN
        self.merchantID = merchantID
    }

    /// ID 15's object.
    public var object: MPMObject { MPMObject("15", acquirerIIN + forwardingIIN + merchantID) }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
