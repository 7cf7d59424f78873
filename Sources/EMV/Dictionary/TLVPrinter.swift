import PaymentCore

/// Renders decoded TLV as an indented tree with the dictionary's names, the way a payments
/// engineer reads a trace:
///
///     77 Response Message Template Format 2 (len 24)
///        82 Application Interchange Profile (AIP) (len 2): 0000
///
/// Card data (PAN, track 1 and 2, cardholder name) is masked unless `revealCardData` is set.
public struct TLVPrinter: Sendable {
    public var dictionary: TagDictionary
    public var revealCardData: Bool
    public var indent: String

    /// Tags whose values carry the card number or track data.
    public static let cardDataTags: Set<Tag> = [0x5A, 0x57, 0x56, 0x9F6B, 0x9F1F, 0x9F20, 0x5F20, 0x9F0B, 0x99]

    public init(dictionary: TagDictionary = .standard, revealCardData: Bool = false, indent: String = "   ") {
        self.dictionary = dictionary
        self.revealCardData = revealCardData
        self.indent = indent
    }

    public func render(_ items: [TLV]) -> String {
        var out = ""
        render(items, into: &out, lineStart: "\n")
        return String(out.dropFirst())
    }

    /// Appends the tree to `out`, each line begun with `lineStart` (which carries the line break).
    public func render(_ items: [TLV], into out: inout String, lineStart: String) {
        render(items, depth: 0, lineStart: lineStart, into: &out)
    }

    private func render(_ items: [TLV], depth: Int, lineStart: String, into out: inout String) {
        for item in items {
            let info = dictionary[item.tag]
            out += lineStart
            for _ in 0..<depth { out += indent }
            out += item.tag.description
            out += " "
            out += info?.name ?? "(unknown tag)"
            out += " (len "
            out += String(item.value.count)
            if item.tag.isConstructed, let kids = try? item.children() {
                out += ")"
                render(kids, depth: depth + 1, lineStart: lineStart, into: &out)
            } else {
                out += "): "
                out += show(item, info: info)
            }
        }
    }

    /// The value as text: hex, plus the decoded reading for text and numeric formats.
    public func show(_ item: TLV, info: TagInfo?) -> String {
        if !revealCardData && TLVPrinter.cardDataTags.contains(item.tag) {
            return maskedCardData(item)
        }
        let hex = item.value.hexString
        switch info?.format {
        case .a?, .an?, .ans?:
            if item.value.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
                return "\(hex) \"\(String(decoding: item.value, as: UTF8.self))\""
            }
            return hex
        default:
            return hex
        }
    }

    private func maskedCardData(_ item: TLV) -> String {
        // Show the shape, not the number: keep the first 6 and last 4 digits of any PAN.
        let hex = item.value.hexString
        switch item.tag {
        case 0x5A, 0x57, 0x9F6B:
            return maskCardNumbers(in: hex.replacingFirstSeparator()) + " (masked)"
        default:
            return String(repeating: "*", count: hex.count) + " (masked)"
        }
    }
}

extension String {
    /// Track 2 hex uses `D` as separator; mask the digits before it as a PAN and hide the rest.
    fileprivate func replacingFirstSeparator() -> String {
        guard let d = firstIndex(of: "D") else { return self }
        let pan = self[..<d]
        let rest = self[index(after: d)...]
        return pan + "D" + String(repeating: "*", count: rest.count)
    }
}
