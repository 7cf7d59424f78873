import PaymentCore

/// Positional subfields: fixed lengths one after another; trailing subfields may be absent.
enum Positional {
    static func split(_ value: [UInt8], _ spec: CompositeSpec, path: String) throws(ISO8583Error) -> [(SubfieldSpec, [UInt8])] {
        var out: [(SubfieldSpec, [UInt8])] = []
        var i = 0
        for sub in spec.subfields where i < value.count {
            guard i + sub.length <= value.count else {
                throw ISO8583Error(.badLength("subfield \(sub.id) needs \(sub.length) characters, \(value.count - i) remain"), path: "\(path).\(sub.id)", offset: i)
            }
            let part = Array(value[i..<i + sub.length])
            if sub.type == .n, part.contains(where: { $0 < 48 || $0 > 57 }) {
                throw ISO8583Error(.badCharacter("subfield \(sub.id) is not numeric"), path: "\(path).\(sub.id)", offset: i)
            }
            out.append((sub, part))
            i += sub.length
        }
        guard i == value.count else { throw ISO8583Error(.trailingBytes(value.count - i), path: path, offset: i) }
        return out
    }
}

/// Tagged subfields: `tag ‖ length ‖ value`, repeated (DE48, DE63).
enum Tagged {
    static func parse(_ value: [UInt8], _ spec: CompositeSpec, path: String) throws(ISO8583Error) -> [(String, [UInt8])] {
        let tagLength = spec.tagLength ?? 2, lengthDigits = spec.lengthDigits ?? 3
        var out: [(String, [UInt8])] = []
        var i = 0
        while i < value.count {
            guard i + tagLength + lengthDigits <= value.count else {
                throw ISO8583Error(.truncated(needed: tagLength + lengthDigits, available: value.count - i), path: path, offset: i)
            }
            let tag = String(decoding: value[i..<i + tagLength], as: UTF8.self)
            var length = 0
            for c in value[(i + tagLength)..<(i + tagLength + lengthDigits)] {
                guard c >= 48, c <= 57 else { throw ISO8583Error(.badLength("tag \(tag) length is not digits"), path: "\(path).\(tag)", offset: i + tagLength) }
                length = length * 10 + Int(c - 48)
            }
            let start = i + tagLength + lengthDigits
            guard start + length <= value.count else {
                throw ISO8583Error(.truncated(needed: length, available: value.count - start), path: "\(path).\(tag)", offset: start)
            }
            if let sub = spec.subfields.first(where: { $0.id == tag }), length > sub.length {
                throw ISO8583Error(.tooLong(length: length, maximum: sub.length), path: "\(path).\(tag)", offset: start)
            }
            out.append((tag, Array(value[start..<start + length])))
            i = start + length
        }
        return out
    }

    static func build(_ items: [(String, String)], _ spec: CompositeSpec) -> String {
        let digits = spec.lengthDigits ?? 3
        return items.map { tag, value in
            let n = String(value.utf8.count)
            return tag + String(repeating: "0", count: max(0, digits - n.count)) + n + value
        }.joined()
    }
}
