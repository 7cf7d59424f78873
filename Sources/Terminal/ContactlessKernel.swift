import EMV
import Foundation
import PaymentCore
import QR

/// What the kernel decided.
public enum KernelOutcome: Sendable, Hashable {
    /// Send an online authorization with this data.
    case onlineRequest(OnlineRequest)
    /// The card or the terminal declined offline.
    case declined(reason: String)
    /// Contactless cannot do this one (over the contactless limit, card refused qPBOC…).
    case tryAnotherInterface(reason: String)
    /// The tap failed (no supported application, malformed card data, the card went away).
    case endApplication(reason: String)
}

/// What an online authorization needs from the tap.
public struct OnlineRequest: Sendable, Hashable {
    /// Every data element the card and terminal produced, by tag.
    public var data: [UInt32: [UInt8]]
    public var pan: PAN
    /// Track 2 equivalent data (57) as the card gave it.
    public var track2: [UInt8]
    /// YYMM.
    public var expiry: String
    public var psn: String
    public var aid: [UInt8]
    /// The card asked for online PIN (CTQ byte 1 bit 8).
    public var onlinePINRequired: Bool
    /// The owner verified themselves on the phone (CTQ byte 2 bit 8).
    public var consumerDeviceCVM: Bool
    /// The fast (qPBOC) or the full path was taken.
    public var fastPath: Bool
}

extension OnlineRequest {
    /// The online request a scanned consumer-presented code stands for: the first application
    /// template's card data (57 → PAN and expiry, 5F34, 4F) and its transparent template's
    /// cryptogram data, as a tap's would be.
    public init(consumerPresented code: ConsumerPresentedCode) throws {
        guard let app = code.applications.first, let track2 = app.first(where: { $0.tag == 0x57 })?.value else {
            throw ConsumerCodeError("no application template with track 2 equivalent data (57)")
        }
        var data: [UInt32: [UInt8]] = [:]
        for tlv in app where !tlv.tag.isConstructed { data[tlv.tag.rawValue] = tlv.value }
        if let inner = try app.first(where: { $0.tag == ConsumerPresentedCode.applicationTransparentTemplate })?.children() {
            for tlv in inner { data[tlv.tag.rawValue] = tlv.value }
        }
        guard data[0x9F26]?.count == 8, data[0x9F36]?.count == 2, data[0x9F10] != nil else { throw ConsumerCodeError("no cryptogram (9F26, 9F36, 9F10)") }
        let digits = track2.hexString
        guard let separator = digits.firstIndex(of: "D") else { throw ConsumerCodeError("track 2 equivalent data has no separator") }
        let pan = try PAN(String(digits[..<separator]))
        let expiry = String(digits[digits.index(after: separator)...].prefix(4))
        guard expiry.count == 4 else { throw ConsumerCodeError("track 2 equivalent data has no expiry") }
        let psn = data[0x5F34].map { $0.hexString } ?? "01"
        self.init(data: data, pan: pan, track2: track2, expiry: expiry, psn: psn, aid: data[0x4F] ?? [], onlinePINRequired: false,
                  consumerDeviceCVM: false, fastPath: true)
    }
}

public struct ConsumerCodeError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// A contactless kernel after EMV Contactless Book C-7 / qPBOC, as a pure state machine: it
/// says which command to send, is given the card's answer, and ends with an outcome. It does
/// no I/O, so any transport (in process, vpcd, PC/SC) can drive it.
public struct ContactlessKernel: Sendable {
    public enum Step: Sendable, Hashable {
        case send(CommandAPDU)
        case finished(KernelOutcome)
    }

    enum State: Sendable {
        case start
        case selectingPPSE
        case selectingAID(candidates: [[UInt8]])
        case processingOptions(aid: [UInt8])
        case readingRecords(aid: [UInt8], queue: [(sfi: UInt8, record: UInt8)], fastPath: Bool)
        case generatingAC(aid: [UInt8])
        case finished
    }

    public let configuration: TerminalConfiguration
    public let transaction: TransactionInput
    var state: State = .start
    /// Data gathered from the card and the terminal.
    public private(set) var data: [UInt32: [UInt8]] = [:]
    /// The terminal data the PDOL and CDOL1 draw on.
    public let terminalData: [UInt32: [UInt8]]

    public init(configuration: TerminalConfiguration, transaction: TransactionInput) {
        self.configuration = configuration
        self.transaction = transaction
        terminalData = Self.terminalData(configuration, transaction)
    }

    // MARK: Steps

    /// Pre-processing, then the first command.
    public mutating func start() -> Step {
        let amount = transaction.amount
        if amount >= configuration.contactlessLimit { return finish(.tryAnotherInterface(reason: "amount at or above the contactless limit")) }
        if amount == 0 && !configuration.allowsZeroAmount { return finish(.tryAnotherInterface(reason: "zero amount not allowed contactless")) }
        state = .selectingPPSE
        return .send(.selectPPSE)
    }

    /// The card's answer to the last command.
    public mutating func receive(_ response: ResponseAPDU) -> Step {
        switch state {
        case .start, .finished:
            return finish(.endApplication(reason: "no command outstanding"))
        case .selectingPPSE:
            return afterPPSE(response)
        case .selectingAID(let candidates):
            return afterSelect(response, candidates: candidates)
        case .processingOptions(let aid):
            return afterGPO(response, aid: aid)
        case .readingRecords(let aid, let queue, let fastPath):
            return afterRecord(response, aid: aid, queue: queue, fastPath: fastPath)
        case .generatingAC(let aid):
            guard response.statusWord == .success, let fields = Self.template(response.data, 0x77) else {
                return finish(.endApplication(reason: "GENERATE AC failed: \(response.statusWord)"))
            }
            data.merge(fields) { _, new in new }
            return conclude(aid: aid, fastPath: false)
        }
    }

    mutating func finish(_ outcome: KernelOutcome) -> Step {
        state = .finished
        return .finished(outcome)
    }

    mutating func afterPPSE(_ response: ResponseAPDU) -> Step {
        guard response.statusWord == .success else { return finish(.endApplication(reason: "PPSE not found (\(response.statusWord))")) }
        guard let fci = try? TLV.decodeTree(response.data).first, fci.tag == 0x6F, let directory = fci.find(0xBF0C),
              let entries = try? directory.children() else { return finish(.endApplication(reason: "malformed PPSE FCI")) }
        // Candidates: entries whose AID the terminal supports, by priority (1 first; none last).
        var candidates: [(aid: [UInt8], priority: Int, order: Int)] = []
        for (order, entry) in entries.enumerated() where entry.tag == 0x61 {
            guard let aid = entry.find(0x4F)?.value, configuration.supportedAIDs.contains(where: { aid.starts(with: $0) }) else { continue }
            let p = Int(entry.find(0x87)?.value.first ?? 0) & 0x0F
            candidates.append((aid, p == 0 ? 16 : p, order))
        }
        guard !candidates.isEmpty else { return finish(.endApplication(reason: "no supported application on the card")) }
        let ordered = candidates.sorted { ($0.priority, $0.order) < ($1.priority, $1.order) }.map(\.aid)
        state = .selectingAID(candidates: ordered)
        return .send(.select(aid: ordered[0]))
    }

    mutating func afterSelect(_ response: ResponseAPDU, candidates: [[UInt8]]) -> Step {
        let aid = candidates[0]
        guard response.statusWord == .success, let fci = try? TLV.decodeTree(response.data).first, fci.tag == 0x6F else {
            let rest = Array(candidates.dropFirst())
            guard let next = rest.first else { return finish(.endApplication(reason: "no application could be selected")) }
            state = .selectingAID(candidates: rest)
            return .send(.select(aid: next))
        }
        let pdol = fci.find(0x9F38).flatMap { try? DOL($0.value) } ?? DOL([])
        // GPO's data is `83 L` and the PDOL data in one short APDU.
        guard pdol.dataLength <= 252 else { return finish(.endApplication(reason: "the PDOL asks for more data than a GPO command carries")) }
        data[0x84] = fci.find(0x84)?.value ?? aid
        state = .processingOptions(aid: aid)
        let pdolData = pdol.build(from: Dictionary(uniqueKeysWithValues: terminalData.map { (Tag($0.key), $0.value) }))
        return .send(.getProcessingOptions(pdolData: pdolData))
    }

    mutating func afterGPO(_ response: ResponseAPDU, aid: [UInt8]) -> Step {
        guard response.statusWord == .success else {
            if response.statusWord == .conditionsOfUseNotSatisfied { return finish(.tryAnotherInterface(reason: "the card refused contactless (6985)")) }
            return finish(.endApplication(reason: "GET PROCESSING OPTIONS failed: \(response.statusWord)"))
        }
        guard let top = try? TLV.decodeTree(response.data).first else { return finish(.endApplication(reason: "malformed GPO response")) }
        var fastPath = true
        if top.tag == 0x80 {
            // Format 1: AIP ‖ AFL — the full path.
            guard top.value.count >= 6, (top.value.count - 2) % 4 == 0 else { return finish(.endApplication(reason: "malformed format 1 GPO response")) }
            data[0x82] = Array(top.value.prefix(2))
            data[0x94] = Array(top.value.dropFirst(2))
            fastPath = false
        } else if top.tag == 0x77, let fields = Self.template(response.data, 0x77) {
            data.merge(fields) { _, new in new }
        } else {
            return finish(.endApplication(reason: "GPO response is neither template 77 nor 80"))
        }
        guard let afl = data[0x94], afl.count % 4 == 0 else { return finish(.endApplication(reason: "AFL missing or malformed")) }
        var queue: [(UInt8, UInt8)] = []
        for i in stride(from: 0, to: afl.count, by: 4) {
            let sfi = afl[i] >> 3, first = afl[i + 1], last = afl[i + 2]
            guard sfi >= 1, sfi <= 30, first >= 1, last >= first else { return finish(.endApplication(reason: "malformed AFL entry")) }
            for r in first...last { queue.append((sfi, r)) }
        }
        return nextRecord(aid: aid, queue: queue, fastPath: fastPath)
    }

    mutating func nextRecord(aid: [UInt8], queue: [(sfi: UInt8, record: UInt8)], fastPath: Bool) -> Step {
        guard let (sfi, record) = queue.first else {
            if fastPath { return conclude(aid: aid, fastPath: true) }
            // Full path: ask for an ARQC with the CDOL1 data.
            guard let cdol = data[0x8C].flatMap({ try? DOL($0) }) else { return finish(.endApplication(reason: "CDOL1 missing on the full path")) }
            guard cdol.dataLength <= 255 else { return finish(.endApplication(reason: "CDOL1 asks for more data than a command carries")) }
            state = .generatingAC(aid: aid)
            return .send(.generateAC(referenceControl: 0x80, cdolData: cdol.build(from: Dictionary(uniqueKeysWithValues: terminalData.map { (Tag($0.key), $0.value) }))))
        }
        state = .readingRecords(aid: aid, queue: Array(queue.dropFirst()), fastPath: fastPath)
        return .send(.readRecord(sfi: sfi, record: record))
    }

    mutating func afterRecord(_ response: ResponseAPDU, aid: [UInt8], queue: [(sfi: UInt8, record: UInt8)], fastPath: Bool) -> Step {
        guard response.statusWord == .success, let fields = Self.template(response.data, 0x70) else {
            return finish(.endApplication(reason: "READ RECORD failed: \(response.statusWord)"))
        }
        // Data from records never overrides what the GPO response gave.
        data.merge(fields) { old, _ in old }
        return nextRecord(aid: aid, queue: queue, fastPath: fastPath)
    }

    // MARK: The decision

    mutating func conclude(aid: [UInt8], fastPath: Bool) -> Step {
        for tag: UInt32 in [0x57, 0x82, 0x9F10, 0x9F26, 0x9F27, 0x9F36] where data[tag] == nil {
            return finish(.endApplication(reason: "card data missing: \(String(tag, radix: 16, uppercase: true))"))
        }
        guard let track2 = data[0x57], let parsed = Self.parseTrack2(track2) else { return finish(.endApplication(reason: "malformed track 2 equivalent data")) }
        if let pan = data[0x5A], Self.digits(pan) != parsed.pan.digits { return finish(.endApplication(reason: "5A and track 2 disagree")) }
        if Self.yymm(transaction.date) > parsed.expiry { return finish(.declined(reason: "card expired")) }
        let cid = data[0x9F27]?.first ?? 0
        switch cid & 0xC0 {
        case 0x80: break
        case 0x00: return finish(.declined(reason: "declined by the card (AAC)"))
        default: return finish(.declined(reason: "the card answered offline (TC) to an online-only terminal"))
        }
        let ctq = data[0x9F6C] ?? [0, 0]
        let cvmRequired = transaction.amount >= configuration.cvmLimit
        let pinRequired = configuration.supportsOnlinePIN && (ctq[0] & 0x80 != 0 || (!fastPath && cvmRequired))
        var all = terminalData
        all.merge(data) { _, card in card }
        all[0x84] = data[0x84] ?? aid
        let psn = data[0x5F34].map { [$0.first ?? 0].hexString } ?? "00"
        return finish(.onlineRequest(OnlineRequest(
            data: all, pan: parsed.pan, track2: track2, expiry: parsed.expiry, psn: psn, aid: aid, onlinePINRequired: pinRequired,
            consumerDeviceCVM: ctq.count > 1 && ctq[1] & 0x80 != 0, fastPath: fastPath)))
    }
}
