import EMV
import Foundation
import PaymentCore
import PaymentCrypto

/// The phone as a UnionPay qPBOC contactless card (host card emulation): it answers ISO 7816-4
/// command APDUs with response APDUs, one tap at a time.
///
/// SELECT PPSE → SELECT AID → GET PROCESSING OPTIONS → (READ RECORD per the AFL). With the
/// terminal's TTQ asking for qPBOC, the GPO answer is the fast path (template 77 with the
/// cryptogram); with contactless PBOC only, it is the full path (template 80: AIP and AFL) and
/// the cryptogram comes from GENERATE AC. GET DATA gives the ATC and the last online ATC.
/// Every malformed or out-of-order command gets its status word and changes nothing.
public struct CardApplet: Sendable {
    enum Stage: Sendable, Equatable {
        case idle
        case ppseSelected
        case selected(cardID: String)
        /// After GPO: records readable; `awaitingAC` on the full path until GENERATE AC.
        case processing(cardID: String, awaitingAC: Bool)
        case done(cardID: String)
    }

    let wallet: Wallet
    var stage: Stage = .idle
    /// The card this tap uses (the default card unless the app chose another).
    public var cardID: String?

    init(wallet: Wallet) {
        self.wallet = wallet
        self.cardID = wallet.defaultCardID
    }

    static let ppse = Array("2PAY.SYS.DDF01".utf8)
    /// The PDOL: 9F66 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 (DESIGN §2).
    static let pdol = DOL([.init(tag: 0x9F66, length: 4), .init(tag: 0x9F02, length: 6), .init(tag: 0x9F03, length: 6), .init(tag: 0x9F1A, length: 2),
                           .init(tag: 0x95, length: 5), .init(tag: 0x5F2A, length: 2), .init(tag: 0x9A, length: 3), .init(tag: 0x9C, length: 1),
                           .init(tag: 0x9F37, length: 4)])
    /// CDOL1 of the full path: the PDOL without the TTQ.
    static let cdol1 = DOL(Array(pdol.entries.dropFirst()))
    /// One record in SFI 1.
    static let afl: [UInt8] = [0x08, 0x01, 0x01, 0x00]

    /// The field went away (or the reader powered the card off): the next tap starts afresh.
    public mutating func reset() {
        stage = .idle
        cardID = wallet.defaultCardID
    }

    /// Answers one command APDU.
    public mutating func process(_ bytes: [UInt8], now: Date = Date()) -> [UInt8] {
        respond(bytes, now: now).encoded
    }

    mutating func respond(_ bytes: [UInt8], now: Date) -> ResponseAPDU {
        let command: CommandAPDU
        do { command = try CommandAPDU(bytes: bytes) } catch { return ResponseAPDU(statusWord: error.statusWord) }
        switch command.ins {
        case 0xA4: return command.cla == 0x00 ? select(command) : ResponseAPDU(statusWord: .classNotSupported)
        case 0xA8: return command.cla == 0x80 ? getProcessingOptions(command, now: now) : ResponseAPDU(statusWord: .classNotSupported)
        case 0xB2: return command.cla == 0x00 ? readRecord(command) : ResponseAPDU(statusWord: .classNotSupported)
        case 0xCA: return command.cla == 0x80 ? getData(command) : ResponseAPDU(statusWord: .classNotSupported)
        case 0xAE: return command.cla == 0x80 ? generateAC(command, now: now) : ResponseAPDU(statusWord: .classNotSupported)
        default:
            return [0x00, 0x80, 0x84].contains(command.cla) ? ResponseAPDU(statusWord: .instructionNotSupported) : ResponseAPDU(statusWord: .classNotSupported)
        }
    }

    // MARK: SELECT

    mutating func select(_ c: CommandAPDU) -> ResponseAPDU {
        guard c.p1 == 0x04 else { return ResponseAPDU(statusWord: .incorrectP1P2) }
        guard c.p2 == 0x00 || c.p2 == 0x02 else { return ResponseAPDU(statusWord: .incorrectP1P2) }
        guard !c.data.isEmpty else { return ResponseAPDU(statusWord: .wrongLength) }
        guard c.p2 == 0x00 else { return ResponseAPDU(statusWord: .fileNotFound) }  // no next occurrence
        guard let id = cardID, let card = wallet.card(id) else {
            stage = .idle
            return ResponseAPDU(statusWord: .fileNotFound)
        }
        if c.data == Self.ppse {
            stage = .ppseSelected
            let entry = TLV(0x61, children: [TLV(0x4F, card.profile.aid), TLV(0x50, Array(card.profile.label.utf8)), TLV(0x87, [card.profile.priority])])
            return ResponseAPDU(data: TLV(0x6F, children: [TLV(0x84, Self.ppse), TLV(0xA5, children: [TLV(0xBF0C, children: [entry])])]).encoded)
        }
        // A partial AID selects the card whose AID starts with it (EMV Book 1 §12.2.2).
        guard c.data.count >= 5, card.profile.aid.starts(with: c.data) else {
            stage = .idle
            return ResponseAPDU(statusWord: .fileNotFound)
        }
        stage = .selected(cardID: id)
        let proprietary = TLV(0xA5, children: [TLV(0x50, Array(card.profile.label.utf8)), TLV(0x87, [card.profile.priority]),
                                               TLV(0x9F38, Self.pdol.encoded), TLV(0x5F2D, Array("zhen".utf8))])
        return ResponseAPDU(data: TLV(0x6F, children: [TLV(0x84, card.profile.aid), proprietary]).encoded)
    }

    // MARK: GET PROCESSING OPTIONS

    mutating func getProcessingOptions(_ c: CommandAPDU, now: Date) -> ResponseAPDU {
        guard case .selected(let id) = stage else { return ResponseAPDU(statusWord: .conditionsOfUseNotSatisfied) }
        guard c.p1 == 0x00, c.p2 == 0x00 else { return ResponseAPDU(statusWord: .incorrectP1P2) }
        guard c.data.count >= 2, c.data[0] == 0x83, Int(c.data[1]) == c.data.count - 2 else { return ResponseAPDU(statusWord: .wrongData) }
        guard c.data.count - 2 == Self.pdol.dataLength, let values = try? Self.pdol.split(Array(c.data.dropFirst(2))) else {
            return ResponseAPDU(statusWord: .wrongLength)
        }
        let terminal = Dictionary(uniqueKeysWithValues: values.map { ($0.key.rawValue, $0.value) })
        let ttq = terminal[0x9F66] ?? [0, 0, 0, 0]
        if ttq[0] & 0x20 == 0 {
            // Not qPBOC: the full path, if the terminal speaks contactless PBOC at all.
            guard ttq[0] & 0x40 != 0 else { return ResponseAPDU(statusWord: .conditionsOfUseNotSatisfied) }
            stage = .processing(cardID: id, awaitingAC: true)
            return ResponseAPDU(data: TLV(0x80, Wallet.aip + Self.afl).encoded)
        }
        guard let card = wallet.card(id) else { return ResponseAPDU(statusWord: .fileNotFound) }
        let answer: CardAnswer
        do { answer = try wallet.answer(cardID: id, terminal: terminal, now: now) } catch { return ResponseAPDU(statusWord: 0x6581) }  // memory failure
        stage = .processing(cardID: id, awaitingAC: false)
        return ResponseAPDU(data: TLV(0x77, children: [
            TLV(0x82, Wallet.aip), TLV(0x94, Self.afl), TLV(0x57, Self.track2(card.profile)), TLV(0x5F34, (try? BCD.pack(card.profile.psn, byteCount: 1)) ?? [0x01]),
            TLV(0x9F10, answer.iad), TLV(0x9F26, answer.cryptogram), TLV(0x9F27, [answer.cid]),
            TLV(0x9F36, [UInt8(answer.atc >> 8), UInt8(answer.atc & 0xFF)]), TLV(0x9F6C, answer.ctq),
        ]).encoded)
    }

    // MARK: GENERATE AC (full path)

    mutating func generateAC(_ c: CommandAPDU, now: Date) -> ResponseAPDU {
        guard case .processing(let id, true) = stage else { return ResponseAPDU(statusWord: .conditionsOfUseNotSatisfied) }
        guard c.p2 == 0x00, c.p1 & 0x3F == 0 else { return ResponseAPDU(statusWord: .incorrectP1P2) }
        guard let values = try? Self.cdol1.split(c.data) else { return ResponseAPDU(statusWord: .wrongLength) }
        var terminal = Dictionary(uniqueKeysWithValues: values.map { ($0.key.rawValue, $0.value) })
        // The full path has no TTQ; the card treats the terminal as needing online PIN above its CVM limit
        // only through the CVM list, which CloudTap's cards do not carry.
        terminal[0x9F66] = [0x40, 0x00, 0x00, 0x00]
        let answer: CardAnswer
        do { answer = try wallet.answer(cardID: id, terminal: terminal, now: now) } catch { return ResponseAPDU(statusWord: 0x6581) }
        stage = .done(cardID: id)
        return ResponseAPDU(data: TLV(0x77, children: [
            TLV(0x9F27, [answer.cid]), TLV(0x9F36, [UInt8(answer.atc >> 8), UInt8(answer.atc & 0xFF)]), TLV(0x9F26, answer.cryptogram), TLV(0x9F10, answer.iad),
        ]).encoded)
    }

    // MARK: READ RECORD, GET DATA

    func readRecord(_ c: CommandAPDU) -> ResponseAPDU {
        guard c.p2 & 0x07 == 0x04, c.p1 != 0 else { return ResponseAPDU(statusWord: .incorrectP1P2) }
        let id: String
        switch stage {
        case .processing(let card, _), .done(let card): id = card
        default: return ResponseAPDU(statusWord: .conditionsOfUseNotSatisfied)
        }
        guard c.p2 >> 3 == 1, c.p1 == 1, let card = wallet.card(id) else { return ResponseAPDU(statusWord: .recordNotFound) }
        let p = card.profile
        var record = [
            TLV(0x57, Self.track2(p)), TLV(0x5A, Self.panBytes(p.pan)), TLV(0x5F24, Self.expiryDate(p.expiry)), TLV(0x5F25, [0x20, 0x01, 0x01]),
            TLV(0x5F28, [UInt8(p.country / 100 % 10), UInt8((p.country / 10 % 10) << 4 | p.country % 10)]),
            TLV(0x5F34, (try? BCD.pack(p.psn, byteCount: 1)) ?? [0x01]), TLV(0x9F07, [0xFF, 0x00]), TLV(0x9F08, [0x00, 0x30]),
            TLV(0x8C, Self.cdol1.encoded),
        ]
        if !p.holderName.isEmpty { record.append(TLV(0x5F20, Array(p.holderName.prefix(26).utf8))) }
        return ResponseAPDU(data: TLV(0x70, children: record).encoded)
    }

    func getData(_ c: CommandAPDU) -> ResponseAPDU {
        let tag = UInt32(c.p1) << 8 | UInt32(c.p2)
        let id: String? = switch stage {
        case .idle, .ppseSelected: nil
        case .selected(let card), .processing(let card, _), .done(let card): card
        }
        guard let id, let card = wallet.card(id) else { return ResponseAPDU(statusWord: .conditionsOfUseNotSatisfied) }
        switch tag {
        case 0x9F36: return ResponseAPDU(data: TLV(0x9F36, [UInt8(card.atc >> 8), UInt8(card.atc & 0xFF)]).encoded)
        case 0x9F13: return ResponseAPDU(data: TLV(0x9F13, [UInt8(card.lastOnlineATC >> 8), UInt8(card.lastOnlineATC & 0xFF)]).encoded)
        default: return ResponseAPDU(statusWord: .referencedDataNotFound)
        }
    }

    // MARK: Card data

    /// Track 2 equivalent data: PAN ‖ D ‖ YYMM ‖ service code 220 ‖ discretionary data, F-padded
    /// (every character a hex digit, so the nibbles are its hex).
    /// Track 2 equivalent data (57): the card number, separator D, expiry YYMM, service code
    /// 220 and seven zeros of discretionary data, F-padded to whole bytes. Empty when the card
    /// number or expiry is not all digits.
    static func track2(_ p: CardProfile) -> [UInt8] {
        guard let pan = digits(p.pan), let expiry = digits(p.expiry) else { return [] }
        return packed(pan + [0xD] + expiry + [2, 2, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    /// The card number (5A), F-padded to whole bytes; empty when not all digits.
    static func panBytes(_ pan: String) -> [UInt8] {
        digits(pan).map(packed) ?? []
    }

    static func digits(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for c in text.utf8 {
            guard c >= 0x30, c <= 0x39 else { return nil }
            out.append(c &- 0x30)
        }
        return out
    }

    /// Nibbles two to a byte, a trailing F when there is an odd number.
    static func packed(_ nibbles: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity((nibbles.count + 1) / 2)
        var i = 0
        while i < nibbles.count {
            out.append(nibbles[i] << 4 | (i + 1 < nibbles.count ? nibbles[i + 1] : 0xF))
            i += 2
        }
        return out
    }

    /// 5F24 as YYMMDD, the last day of the expiry month.
    static func expiryDate(_ yymm: String) -> [UInt8] {
        let yy = Int(yymm.prefix(2)) ?? 0, mm = Int(yymm.suffix(2)) ?? 1
        let days = [31, (2000 + yy) % 4 == 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][max(0, min(11, mm - 1))]
        return [yy % 100, mm, days].map { UInt8($0 / 10) << 4 | UInt8($0 % 10) }
    }
}

/// A card applet behind a lock, for transports that call it from their own threads (the vpcd
/// connection's event loop, a test's POS).
public final class SharedCardApplet: @unchecked Sendable {
    private var applet: CardApplet
    private let lock = NSLock()

    public init(_ applet: CardApplet) { self.applet = applet }

    public func process(_ command: [UInt8]) -> [UInt8] { lock.withLock { applet.process(command) } }

    /// The field went away: the next tap starts afresh.
    public func reset() { lock.withLock { applet.reset() } }
}
