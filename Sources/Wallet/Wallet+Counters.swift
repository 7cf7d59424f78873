import Foundation

/// The counters a tap changes on one card — its ATC, last online ATC and its keys' use — kept in
/// a small record of their own, so a tap stores a few dozen bytes instead of the whole state.
/// Every counter only grows, so opening the wallet merges the record into the state by taking
/// the larger of each: whichever of the two was written last, nothing goes backwards.
struct TapCounters: Equatable {
    struct KeyUse: Equatable { var generationHour: UInt32; var sequence: UInt16; var uses: UInt32; var cumulativeAmount: Int64 }
    var atc: UInt16
    var lastOnlineATC: UInt16
    var logCount: UInt64
    var keys: [KeyUse]

    static let magic: [UInt8] = Array("CTC1".utf8)

    init(card: CardState, logCount: Int) {
        atc = card.atc
        lastOnlineATC = card.lastOnlineATC
        self.logCount = UInt64(logCount)
        keys = card.keys.map { KeyUse(generationHour: $0.generationHour, sequence: $0.sequence, uses: UInt32(clamping: $0.uses), cumulativeAmount: $0.cumulativeAmount) }
    }

    /// magic, ATC, last online ATC, log count, key count, then per key: hour, sequence, uses,
    /// cumulative amount; all big-endian.
    var bytes: Data {
        var out: [UInt8] = []
        out.reserveCapacity(18 + keys.count * 18)
        out.append(contentsOf: Self.magic)
        out.appendBigEndian(atc)
        out.appendBigEndian(lastOnlineATC)
        out.appendBigEndian(logCount)
        out.appendBigEndian(UInt16(clamping: keys.count))
        for k in keys {
            out.appendBigEndian(k.generationHour)
            out.appendBigEndian(k.sequence)
            out.appendBigEndian(k.uses)
            out.appendBigEndian(UInt64(bitPattern: k.cumulativeAmount))
        }
        return Data(out)
    }

    init(_ data: Data) throws {
        var reader = BigEndianReader(bytes: [UInt8](data))
        guard Array(try reader.take(4)) == Self.magic else { throw WalletError.storage("a counter record with an unknown format") }
        atc = try reader.integer()
        lastOnlineATC = try reader.integer()
        logCount = try reader.integer()
        let count: UInt16 = try reader.integer()
        keys = try (0..<count).map { _ in
            KeyUse(generationHour: try reader.integer(), sequence: try reader.integer(), uses: try reader.integer(),
                   cumulativeAmount: Int64(bitPattern: try reader.integer() as UInt64))
        }
        guard reader.isAtEnd else { throw WalletError.storage("a counter record with bytes after its end") }
    }

    /// Raises the card's counters to these where these are larger; keys no longer held are ignored.
    func merge(into card: inout CardState) {
        card.atc = max(card.atc, atc)
        card.lastOnlineATC = max(card.lastOnlineATC, lastOnlineATC)
        for k in keys {
            guard let i = card.keys.firstIndex(where: { $0.generationHour == k.generationHour && $0.sequence == k.sequence }) else { continue }
            card.keys[i].uses = max(card.keys[i].uses, Int(k.uses))
            card.keys[i].cumulativeAmount = max(card.keys[i].cumulativeAmount, k.cumulativeAmount)
        }
    }
}

extension Wallet {
    static func countersName(_ cardID: String) -> String { "counters-\(cardID)" }

    /// As ``mutate(_:)`` for a tap on card `cardID`: the change may alter only that card's
    /// counters and append log entries. The entries are stored first, then the card's counter
    /// record — not the whole state.
    func tap<T>(cardID: String, _ change: (inout State, inout [WalletLogEntry]) throws -> T) throws -> T {
        try mutate(storing: { next in
            guard let card = next.cards.first(where: { $0.profile.id == cardID }) else { throw WalletError.unknownCard(cardID) }
            try store.save(Self.countersName(cardID), TapCounters(card: card, logCount: next.logCount).bytes)
        }, change)
    }

    /// Merges each card's counter record into a state just read.
    static func mergeCounters(into state: inout State, from store: any SecureStore) throws {
        for i in state.cards.indices {
            guard let data = try store.load(countersName(state.cards[i].profile.id)) else { continue }
            let counters = try TapCounters(data)
            counters.merge(into: &state.cards[i])
            state.logCount = max(state.logCount, Int(counters.logCount))
        }
    }
}

/// A log entry as the phone stores it on a tap: a small binary record ("CTL1") rather than
/// JSON, which cost more than the rest of the tap's storing. Entries stored as JSON by earlier
/// versions still read.
extension WalletLogEntry {
    static let magic: [UInt8] = Array("CTL1".utf8)

    /// magic, ATC, key sequence, amount, currency, date (the bits of its seconds since 2001 as a
    /// double — Foundation's own measure — so it reads back exactly), then the card id and the cryptogram type, each a
    /// length byte and UTF-8; big-endian.
    var record: Data {
        let id = Array(cardID.utf8.prefix(255)), type = Array(cryptogramType.utf8.prefix(255))
        var out: [UInt8] = []
        out.reserveCapacity(26 + id.count + type.count)
        out.append(contentsOf: Self.magic)
        out.appendBigEndian(atc)
        out.appendBigEndian(keySequence)
        out.appendBigEndian(UInt64(bitPattern: amount))
        out.appendBigEndian(currency)
        out.appendBigEndian(date.timeIntervalSinceReferenceDate.bitPattern)
        out.append(UInt8(id.count))
        out.append(contentsOf: id)
        out.append(UInt8(type.count))
        out.append(contentsOf: type)
        return Data(out)
    }

    /// Reads a stored entry: the binary record, or JSON as earlier versions stored it.
    static func stored(_ data: Data) throws -> WalletLogEntry {
        guard data.starts(with: magic) else { return try JSONDecoder().decode(WalletLogEntry.self, from: data) }
        var reader = BigEndianReader(bytes: [UInt8](data))
        _ = try reader.take(4)
        let atc: UInt16 = try reader.integer(), keySequence: UInt16 = try reader.integer()
        let amount = Int64(bitPattern: try reader.integer() as UInt64)
        let currency: UInt16 = try reader.integer()
        let seconds = Double(bitPattern: try reader.integer())
        func text() throws -> String {
            let n: UInt8 = try reader.integer()
            guard let s = String(validating: try reader.take(Int(n)), as: UTF8.self) else { throw WalletError.storage("a log record with text that is not UTF-8") }
            return s
        }
        let cardID = try text(), type = try text()
        guard reader.isAtEnd else { throw WalletError.storage("a log record with bytes after its end") }
        return WalletLogEntry(cardID: cardID, atc: atc, keySequence: keySequence, amount: amount, currency: currency, cryptogramType: type,
                              date: Date(timeIntervalSinceReferenceDate: seconds))
    }
}

extension [UInt8] {
    /// Records are written as bytes and made Data once: a Data appended to field by field
    /// goes through its storage's representation on every append (a tap's counter record was
    /// ~1 % of a load generator's CPU).
    mutating func appendBigEndian<I: FixedWidthInteger>(_ value: I) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }
}

/// Reads big-endian integers from bytes, refusing to read past the end.
struct BigEndianReader {
    let bytes: [UInt8]
    var offset = 0

    var isAtEnd: Bool { offset == bytes.count }

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n <= bytes.count - offset else { throw WalletError.storage("a stored record cut short") }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }

    mutating func integer<I: FixedWidthInteger>() throws -> I {
        try take(MemoryLayout<I>.size).reduce(I.zero) { $0 << 8 | I($1) }
    }
}
