import EMV
import PaymentCore

extension Message {
    /// The message with its card data masked as ``describe(spec:reveal:)`` shows it, in a
    /// compact binary form for storage: card numbers and track data cut to their masked text
    /// (first six and last four digits), secrets (PIN blocks, keys) replaced by zeros of the same
    /// length, sensitive subfields (DE63 TK) masked in place; the header as its field values.
    /// What it keeps is no more than the description shows, and describing the message read
    /// back gives the same text — so a trace can store this, a third of the description's size,
    /// and render the description only when somebody reads it.
    ///
    /// Nil when a field cannot be masked in place (EMV data carrying card-data tags, a composite
    /// field that does not parse): keep the description instead.
    ///
    ///     "CTM1" ‖ entries, each: field number (0 = header, as `name=value` lines) ‖ length (2
    ///     bytes, big-endian) ‖ value
    public func masked(spec: MessageSpec) -> [UInt8]? {
        var out = Message.maskedMagic
        out.reserveCapacity(512)
        if let h = spec.header {
            // name=value lines, as headerFields(spec:) gives them, written straight into the
            // entry (its length filled in after).
            out.append(0)
            let lengthAt = out.count
            out.append(contentsOf: [0, 0])
            var offset = 0
            for i in h.fields.indices {
                if i > 0 { out.append(0x0A) }
                out.append(contentsOf: h.fields[i].name.utf8)
                out.append(0x3D)
                appendHeaderValue(h.fields[i], at: offset, to: &out)
                offset += h.fields[i].length
            }
            let length = out.count - lengthAt - 2
            guard length <= 0xFFFF else { return nil }
            out[lengthAt] = UInt8(length >> 8)
            out[lengthAt + 1] = UInt8(length & 0xFF)
        }
        for n in spans.indices where spans[n].isPresent {
            guard let slice = self.value(n) else { continue }
            let masking = n < spec.maskings.count ? spec.maskings[n] : .asIs
            // Kept as they are, without a copy of their own.
            switch masking {
            case .asIs:
                guard Message.appendEntry(n, slice, to: &out) else { return nil }
                continue
            case .tlv:
                // EMV data is kept as it is unless it carries the card number or track data.
                guard Message.carriesCardData(slice) == false, Message.appendEntry(n, slice, to: &out) else { return nil }
                continue
            default: break
            }
            let value = Array(slice)
            let masked: [UInt8]?
            switch masking {
            case .asIs, .tlv: masked = value
            case .secret: masked = [UInt8](repeating: 0, count: value.count)
            case .pan: masked = Message.maskedDigits(value) ?? spec[n].map { Array(Message.display(value, spec: $0, reveal: false).utf8) }
            case .track:
                // The card number before the separator masked, everything after it starred.
                if let sep = value.firstIndex(where: { $0 == 0x3D || $0 == 0x44 || $0 == 0x5E }), let pan = Message.maskedDigits(value[..<sep]) {
                    masked = pan + [value[sep]] + [UInt8](repeating: 0x2A, count: value.count - sep - 1)
                } else {
                    masked = spec[n].map { Array(Message.display(value, spec: $0, reveal: false).utf8) }
                }
            case .positional(let composite):
                masked = (try? Positional.split(value, composite, path: "DE\(n)")).map { $0.flatMap { sub, part in Message.maskedSubfield(part, sub.sensitivity) } }
            case .tagged(let composite): masked = Message.maskedTagged(value, composite)
            }
            guard let masked, Message.appendEntry(n, masked, to: &out) else { return nil }
        }
        return out
    }

    /// A message read back from ``masked(spec:)``: describe it with the same spec.
    public init(mti: String, masked record: [UInt8]) throws(ISO8583Error) {
        self.init(mti: mti)
        guard record.count >= 4, Array(record[0..<4]) == Message.maskedMagic else {
            throw ISO8583Error(.badCharacter("not a masked message record"), path: "record", offset: 0)
        }
        var i = 4
        while i < record.count {
            guard i + 3 <= record.count else { throw ISO8583Error(.truncated(needed: 3, available: record.count - i), path: "record", offset: i) }
            let n = Int(record[i]), length = Int(record[i + 1]) << 8 | Int(record[i + 2])
            guard i + 3 + length <= record.count else {
                throw ISO8583Error(.truncated(needed: length, available: record.count - i - 3), path: "record.DE\(n)", offset: i + 3)
            }
            let value = Array(record[(i + 3)..<(i + 3 + length)])
            if n == 0 {
                for line in String(decoding: value, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true) {
                    guard let eq = line.firstIndex(of: "=") else { continue }
                    header[String(line[..<eq])] = String(line[line.index(after: eq)...])
                }
            } else {
                guard n <= 192 else { throw ISO8583Error(.badCharacter("field \(n) out of range"), path: "record", offset: i) }
                set(n, bytes: value)
            }
            i += 3 + length
        }
    }

    static let maskedMagic: [UInt8] = Array("CTM1".utf8)

    static func appendEntry<C: Collection>(_ n: Int, _ value: C, to out: inout [UInt8]) -> Bool where C.Element == UInt8 {
        guard n <= 255, value.count <= 0xFFFF else { return false }
        out.append(UInt8(n))
        out.append(UInt8(value.count >> 8))
        out.append(UInt8(value.count & 0xFF))
        out.append(contentsOf: value)
        return true
    }

    /// All digits: masked as ``maskCardNumbers(in:)`` masks them (first six and last four of
    /// 12–19 digits, the rest starred; other lengths as they are). Nil when not all digits.
    static func maskedDigits<C: Collection>(_ digits: C) -> [UInt8]? where C.Element == UInt8 {
        guard digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return maskCardNumbers(utf8: Array(digits))
    }

    /// A tagged composite with its sensitive subfields masked in place, lengths unchanged; nil
    /// when it does not parse.
    static func maskedTagged(_ value: [UInt8], _ composite: CompositeSpec) -> [UInt8]? {
        let tagLength = composite.tagLength ?? 2, lengthDigits = composite.lengthDigits ?? 3
        var out = value
        var i = 0
        while i < value.count {
            guard i + tagLength + lengthDigits <= value.count else { return nil }
            var length = 0
            for c in value[(i + tagLength)..<(i + tagLength + lengthDigits)] {
                guard c >= 0x30, c <= 0x39 else { return nil }
                length = length * 10 + Int(c - 0x30)
            }
            let start = i + tagLength + lengthDigits
            guard start + length <= value.count else { return nil }
            let tag = value[i..<i + tagLength]
            if let sub = composite.subfields.first(where: { $0.sensitivity != nil && $0.id.utf8.elementsEqual(tag) }) {
                let masked = maskedSubfield(Array(value[start..<start + length]), sub.sensitivity)
                guard masked.count == length else { return nil }
                out.replaceSubrange(start..<start + length, with: masked)
            }
            i = start + length
        }
        return out
    }

    /// A subfield masked to the same length: card numbers as in descriptions, secrets as stars.
    static func maskedSubfield(_ value: [UInt8], _ sensitivity: Sensitivity?) -> [UInt8] {
        switch sensitivity {
        case nil, .emv?: return value
        case .pan?, .track?: return maskCardNumbers(utf8: value)
        case .secret?: return [UInt8](repeating: 0x2A, count: value.count)
        }
    }

    /// Whether BER-TLV data carries a card-data tag (``TLVPrinter/cardDataTags``) at any depth,
    /// read in place without building the tree; nil when it is not well-formed TLV. Padding
    /// bytes 00 and FF between objects are skipped, as the TLV decoder does.
    static func carriesCardData(_ bytes: ArraySlice<UInt8>, depth: Int = 0) -> Bool? {
        guard depth < 8 else { return nil }
        var i = bytes.startIndex
        while i < bytes.endIndex {
            if bytes[i] == 0x00 || bytes[i] == 0xFF { i += 1; continue }
            let first = bytes[i]
            var tag = UInt32(first)
            i += 1
            if first & 0x1F == 0x1F {
                repeat {
                    guard i < bytes.endIndex, tag <= 0xFF_FFFF else { return nil }
                    tag = tag << 8 | UInt32(bytes[i])
                    i += 1
                } while bytes[i - 1] & 0x80 != 0
            }
            guard i < bytes.endIndex else { return nil }
            var length = Int(bytes[i])
            i += 1
            if length & 0x80 != 0 {
                let count = length & 0x7F
                guard (1...3).contains(count), i + count <= bytes.endIndex else { return nil }
                length = bytes[i..<i + count].reduce(0) { $0 << 8 | Int($1) }
                i += count
            }
            guard length <= bytes.endIndex - i else { return nil }
            if TLVPrinter.cardDataTags.contains(Tag(tag)) { return true }
            if first & 0x20 != 0 {
                guard let inner = carriesCardData(bytes[i..<i + length], depth: depth + 1) else { return nil }
                if inner { return true }
            }
            i += length
        }
        return false
    }
}

/// How a field is masked for a stored record, decided once per dialect from its spec.
enum FieldMasking: Sendable {
    /// Kept as it is: no spec, or nothing sensitive in it.
    case asIs
    /// Zeros of the same length.
    case secret
    /// BER-TLV kept as it is unless it carries card data (then the record cannot be made).
    case tlv
    /// A card number: first six and last four digits.
    case pan
    /// Track data: the card number masked, everything after the separator starred.
    case track
    /// Composites with sensitive subfields, masked in place.
    case positional(CompositeSpec)
    case tagged(CompositeSpec)

    init(_ spec: FieldSpec?) {
        guard let spec else { self = .asIs; return }
        if let composite = spec.composite {
            let sensitive = composite.subfields.contains(where: { $0.sensitivity != nil })
            switch composite.kind {
            case .tlv: self = .tlv
            case .positional: self = sensitive ? .positional(composite) : .asIs
            case .tagged: self = sensitive ? .tagged(composite) : .asIs
            }
            return
        }
        switch spec.sensitivity {
        case nil: self = .asIs
        case .secret?: self = .secret
        case .emv?: self = .tlv
        case .pan?: self = .pan
        case .track?: self = .track
        }
    }
}
