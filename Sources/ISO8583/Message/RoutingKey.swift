import PaymentCore

/// What a router needs from a message — MTI, card number, STAN, terminal id — read without
/// unpacking the other fields.
public struct RoutingKey: Sendable, Hashable, CustomStringConvertible {
    public var mti: String
    public var pan: String?
    public var stan: String?
    public var terminalID: String?

    public var description: String {
        "RoutingKey(\(mti), PAN \(pan.map { maskCardNumbers(in: $0) } ?? "-"), STAN \(stan ?? "-"), TID \(terminalID ?? "-"))"
    }
}

extension MessageSpec {
    /// Reads MTI, DE2, DE11 and DE41, skipping every other field by its length alone.
    public func peek(_ bytes: [UInt8]) throws(ISO8583Error) -> RoutingKey {
        var r = Reader(bytes)
        if let header { _ = try r.take(header.length, path: "header") }
        var key = RoutingKey(mti: try unpackMTI(from: &r))
        let maps = try unpackBitmaps(from: &r)
        for n in 2...maxField where isSet(n, maps) {
            if tertiaryBitmap && n == 65 { continue }
            guard let codec = codecs[n] else { throw ISO8583Error(.missingSpec, path: "DE\(n)", offset: r.offset) }
            switch n {
            case 2, 11, 41:
                let text = String(decoding: try unpackField(n, codec: codec, from: &r), as: UTF8.self)
                if n == 2 { key.pan = text } else if n == 11 { key.stan = text } else { key.terminalID = text }
                if n == 41 { return key }
            default:
                let units = codec.isFixed ? codec.length : try r.readPrefix(digits: codec.prefixDigits, encoding: codec.prefixEncoding, path: "DE\(n)")
                guard units <= codec.length else { throw ISO8583Error(.tooLong(length: units, maximum: codec.length), path: "DE\(n)", offset: r.offset) }
                _ = try r.take(codec.encoding.byteCount(units: units), path: "DE\(n)")
            }
        }
        return key
    }
}
