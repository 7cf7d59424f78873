import EMV
import Foundation
import PaymentCore

/// A consumer-presented QR payload (EMV QRCPS Consumer-Presented Mode): base64 of BER-TLV —
/// the payload format indicator `85 "CPV01"`, one or more application templates `61` (AID,
/// label, track 2 equivalent, PAN, the application specific transparent template `63` with the
/// cryptogram data), optionally the common data template `62` (with `64` transparent data).
/// Tags this code does not know are kept, where they were, and re-encoded unchanged.
public struct ConsumerPresentedCode: Sendable, Hashable {
    /// The top-level objects in order, `85` first.
    public var objects: [TLV]

    public static let formatIndicator = Tag(0x85)
    public static let applicationTemplate = Tag(0x61)
    public static let commonDataTemplate = Tag(0x62)
    public static let applicationTransparentTemplate = Tag(0x63)
    public static let commonTransparentTemplate = Tag(0x64)

    public init(objects: [TLV]) { self.objects = objects }

    /// A code with the format indicator `CPV01` and these templates.
    public init(applications: [[TLV]], commonData: [TLV]? = nil) {
        objects = [TLV(Self.formatIndicator, Array("CPV01".utf8))] + applications.map { TLV(Self.applicationTemplate, children: $0) }
        if let commonData { objects.append(TLV(Self.commonDataTemplate, children: commonData)) }
    }

    /// Reads a code from its base64 text: the format indicator first and `CPV01`, at least one
    /// application template, every template well-formed.
    public init(base64: String) throws(CPMError) {
        guard let data = Data(base64Encoded: base64.trimmingCharacters(in: .whitespacesAndNewlines)) else { throw CPMError.notBase64 }
        let top: [TLV]
        do { top = try TLV.decodeTree(Array(data)) } catch { throw CPMError.malformed("\(error)") }
        guard let first = top.first, first.tag == Self.formatIndicator else { throw CPMError.malformed("the payload format indicator (85) is not first") }
        guard first.value == Array("CPV01".utf8) else { throw CPMError.unsupportedVersion(String(decoding: first.value, as: UTF8.self)) }
        guard top.contains(where: { $0.tag == Self.applicationTemplate }) else { throw CPMError.malformed("no application template (61)") }
        objects = top
    }

    public var base64: String { Data(objects.encoded()).base64EncodedString() }

    public var version: String { String(decoding: objects.first { $0.tag == Self.formatIndicator }?.value ?? [], as: UTF8.self) }

    /// The children of each application template, in order.
    public var applications: [[TLV]] { objects.filter { $0.tag == Self.applicationTemplate }.compactMap { try? $0.children() } }

    /// The common data template's children.
    public var commonData: [TLV]? { objects.first { $0.tag == Self.commonDataTemplate }.flatMap { try? $0.children() } }

    /// A data object from the first application template, its transparent template (63), or
    /// the common data (62 and its 64) — in that order.
    public func value(_ tag: Tag) -> [UInt8]? {
        for app in applications {
            if let v = app.first(where: { $0.tag == tag })?.value { return v }
            if let inner = try? app.first(where: { $0.tag == Self.applicationTransparentTemplate })?.children(),
               let v = inner.first(where: { $0.tag == tag })?.value { return v }
        }
        if let common = commonData {
            if let v = common.first(where: { $0.tag == tag })?.value { return v }
            if let inner = try? common.first(where: { $0.tag == Self.commonTransparentTemplate })?.children(),
               let v = inner.first(where: { $0.tag == tag })?.value { return v }
        }
        return nil
    }
}

public enum CPMError: Error, Hashable, Sendable, CustomStringConvertible {
    case notBase64
    case malformed(String)
    case unsupportedVersion(String)

    public var description: String {
        switch self {
        case .notBase64: "the code is not base64"
        case .malformed(let why): "not a consumer-presented code: \(why)"
        case .unsupportedVersion(let v): "payload format \(v) is not CPV01"
        }
    }
}
