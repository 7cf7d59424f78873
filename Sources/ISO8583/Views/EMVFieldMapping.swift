import EMV
import PaymentCore

/// Where EMV data elements travel in ISO 8583 (EMV 4.4 Book 4 Annex C, "Data element
/// conversion"), and the checks a host makes between DE55 and the rest of the message.
public enum EMVFieldMapping {
    public struct Entry: Sendable, Hashable {
        public let tag: EMV.Tag
        public let field: Int
        public let note: String
    }

    /// EMV tag → ISO 8583 field, as Book 4 Annex C lists them for the data CloudTap carries.
    public static let table: [Entry] = [
        Entry(tag: 0x5A, field: 2, note: "Application PAN → Primary account number"),
        Entry(tag: 0x9C, field: 3, note: "Transaction type → processing code positions 1–2"),
        Entry(tag: 0x9F02, field: 4, note: "Amount, authorised → amount, transaction"),
        Entry(tag: 0x9F41, field: 11, note: "Transaction sequence counter → STAN"),
        Entry(tag: 0x9F21, field: 12, note: "Transaction time → time, local transaction"),
        Entry(tag: 0x9A, field: 13, note: "Transaction date → date, local transaction (MMDD)"),
        Entry(tag: 0x5F24, field: 14, note: "Application expiration date → date, expiration (YYMM)"),
        Entry(tag: 0x9F15, field: 18, note: "Merchant category code → merchant type"),
        Entry(tag: 0x9F1A, field: 19, note: "Terminal country code → acquiring institution country code"),
        Entry(tag: 0x9F39, field: 22, note: "POS entry mode → point of service entry mode"),
        Entry(tag: 0x5F34, field: 23, note: "PAN sequence number → card sequence number"),
        Entry(tag: 0x9F01, field: 32, note: "Acquirer identifier → acquiring institution identification code"),
        Entry(tag: 0x57, field: 35, note: "Track 2 equivalent data → track 2 data"),
        Entry(tag: 0x89, field: 38, note: "Authorisation code → authorization identification response"),
        Entry(tag: 0x8A, field: 39, note: "Authorisation response code → response code"),
        Entry(tag: 0x9F1C, field: 41, note: "Terminal identification → card acceptor terminal identification"),
        Entry(tag: 0x9F16, field: 42, note: "Merchant identifier → card acceptor identification code"),
        Entry(tag: 0x9F4E, field: 43, note: "Merchant name and location → card acceptor name/location"),
        Entry(tag: 0x5F2A, field: 49, note: "Transaction currency code → currency code, transaction"),
        Entry(tag: 0x99, field: 52, note: "Transaction PIN data → PIN data"),
        Entry(tag: 0x9F03, field: 54, note: "Amount, other → additional amounts"),
    ]

    /// Disagreements between DE55 and the fields that carry the same data: amount (9F02/DE4),
    /// currency (5F2A/DE49), PAN sequence number (5F34/DE23), transaction date (9A/DE13).
    /// A host declines (or treats as a format error) a message with any.
    public static func mismatches(in message: Message) -> [String] {
        guard let icc = message.bytes(55), let items = try? TLV.decodeTree(icc) else { return [] }
        var out: [String] = []
        func digits(_ t: EMV.Tag) -> String? { items.find(t).flatMap { try? BCD.unpack($0.value) } }
        if let a = digits(0x9F02), let de4 = message[4], a != de4 { out.append("9F02 amount \(a) differs from DE4 \(de4)") }
        if let c = digits(0x5F2A), let de49 = message[49], String(c.suffix(3)) != de49 { out.append("5F2A currency \(c) differs from DE49 \(de49)") }
        if let p = digits(0x5F34), let de23 = message[23], Int(p) != Int(de23) { out.append("5F34 PSN \(p) differs from DE23 \(de23)") }
        if let d = digits(0x9A), let de13 = message[13], String(d.suffix(4)) != de13 { out.append("9A date \(d) differs from DE13 \(de13)") }
        return out
    }
}
