import Foundation

/// A one-dimensional array bound to a PostgreSQL statement that works on many rows at once
/// (`unnest($1::int8[], $2::text[], …) WITH ORDINALITY`): one statement and one commit for a
/// batch instead of one each. Its elements are integers, text, bytes or booleans; an element
/// may be NULL.
///
/// Such a statement is always prepared (``PreparingPostgresDatabase``): the array travels as one
/// literal in PostgreSQL's array syntax, which keeps one plan whatever the batch's size. Text
/// holding a NUL has no literal form (nor a place in PostgreSQL's text), and the statement then
/// fails with a ``StorageError`` rather than going another way: a caller batching rows checks
/// its text (``PostgresArray/isLiteral(_:)``) and takes such a row the single-row way.
public struct PostgresArray: Encodable, Sendable {
    enum Elements: Sendable {
        case int8([Int64?])
        case text([String?])
        case bytea([Data?])
        case bool([Bool?])
    }

    let elements: Elements

    public init(_ values: [Int64?]) { elements = .int8(values) }
    public init(_ values: [Int64]) { elements = .int8(values) }
    public init(_ values: [String?]) { elements = .text(values) }
    public init(_ values: [String]) { elements = .text(values) }
    public init(_ values: [Data?]) { elements = .bytea(values) }
    public init(_ values: [Data]) { elements = .bytea(values) }
    public init(_ values: [Bool]) { elements = .bool(values) }

    /// Whether `text` can travel in an array literal: anything but a NUL, which PostgreSQL's
    /// text cannot hold.
    public static func isLiteral(_ text: String) -> Bool { !text.utf8.contains(0) }

    /// The array as one string literal in PostgreSQL's array syntax, cast to its type
    /// (`'{1,2,NULL}'::int8[]`; text and bytes in an escape string, `E'{"a","b"}'::text[]`,
    /// whose reading does not depend on `standard_conforming_strings`), and that type; nil when
    /// an element has no literal form. One string, not an `ARRAY[…]` of constants: the server
    /// parses a token and reads the array in C, where a constant per element cost the parser
    /// and the executor each.
    var literal: (literal: String, type: String)? {
        var out: [UInt8] = []
        /// The elements between the braces, comma-separated, NULL for nil; false when `append`
        /// finds one without a literal form.
        func list<T>(_ values: [T?], _ append: (T, inout [UInt8]) -> Bool) -> Bool {
            for (i, value) in values.enumerated() {
                if i > 0 { out.append(0x2C) }
                guard let value else { out.append(contentsOf: "NULL".utf8); continue }
                guard append(value, &out) else { return false }
            }
            return true
        }
        let type: String, listed: Bool
        switch elements {
        case .int8(let values):
            type = "int8"
            out.reserveCapacity(values.count * 8 + 16)
            out.append(contentsOf: "'{".utf8)
            listed = list(values) { value, out in Self.appendDecimal(value, to: &out); return true }
        case .bool(let values):
            type = "bool"
            out.append(contentsOf: "'{".utf8)
            listed = list(values) { value, out in out.append(value ? 0x74 : 0x66); return true }  // t, f
        case .text(let values):
            type = "text"
            out.reserveCapacity(values.count * 24 + 16)
            out.append(contentsOf: "E'{".utf8)
            listed = list(values) { value, out in
                out.append(0x22)
                for c in value.utf8 {
                    switch c {
                    case 0: return false
                    // In the element a backslash or a double quote is escaped by a backslash; in
                    // the escape string each backslash is doubled and a quote is doubled.
                    case 0x5C: out.append(contentsOf: [0x5C, 0x5C, 0x5C, 0x5C])
                    case 0x22: out.append(contentsOf: [0x5C, 0x5C, 0x22])
                    case 0x27: out.append(contentsOf: [0x27, 0x27])
                    default: out.append(c)
                    }
                }
                out.append(0x22)
                return true
            }
        case .bytea(let values):
            type = "bytea"
            let digits = Array("0123456789abcdef".utf8)
            out.reserveCapacity(values.reduce(16) { $0 + 10 + 2 * ($1?.count ?? 0) })
            out.append(contentsOf: "E'{".utf8)
            listed = list(values) { value, out in
                // bytea's hex input, \x…, its backslash escaped in the element and doubled in
                // the escape string.
                out.append(contentsOf: [0x22, 0x5C, 0x5C, 0x5C, 0x5C, 0x78])
                value.withUnsafeBytes { bytes in
                    for b in bytes {
                        out.append(digits[Int(b >> 4)])
                        out.append(digits[Int(b & 0x0F)])
                    }
                }
                out.append(0x22)
                return true
            }
        }
        guard listed else { return nil }
        out.append(contentsOf: "}'::".utf8)
        out.append(contentsOf: type.utf8)
        out.append(contentsOf: "[]".utf8)
        return (String(decoding: out, as: UTF8.self), type + "[]")
    }

    static func appendDecimal(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 { out.append(0x2D) }
        var magnitude = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[count] = UInt8(truncatingIfNeeded: magnitude % 10) + 0x30
                magnitude /= 10
                count += 1
            } while magnitude > 0
            for i in stride(from: count - 1, through: 0, by: -1) { out.append(buffer[i]) }
        }
    }

    /// Never sent as a protocol-level bind (see above).
    public func encode(to encoder: any Encoder) throws {
        throw EncodingError.invalidValue(self, .init(codingPath: encoder.codingPath, debugDescription: "a PostgresArray travels only in a prepared statement"))
    }
}
