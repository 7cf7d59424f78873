import Foundation
import NIOCore
import PostgresNIO
import SQLKit

/// A one-dimensional array bound to a PostgreSQL statement that works on many rows at once
/// (`unnest($1, $2, …) WITH ORDINALITY`, or ``rows(_:)`` for many columns): one statement and
/// one commit for a batch instead of one each. Its elements are integers, text, bytes or
/// booleans; an element may be NULL.
///
/// Such a statement is always prepared (``PreparingPostgresDatabase``), which keeps one plan
/// whatever the batch's size; the array travels in PostgreSQL's binary array format. Text
/// holding a NUL has no place in PostgreSQL's text, and the statement then fails with a
/// ``StorageError`` rather than reaching the server: a caller batching rows checks its text
/// (``PostgresArray/canHold(_:)``) and takes such a row the single-row way.
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

    /// Whether `text` can travel in an array: anything but a NUL, which PostgreSQL's text
    /// cannot hold.
    public static func canHold(_ text: String) -> Bool { !text.utf8.contains(0) }

    /// The array in PostgreSQL's binary array format (`array_recv`), and its type's name; nil
    /// when a text element holds a NUL. The format: the number of dimensions (1, or 0 for an
    /// empty array), whether any element is NULL, the element type's OID, then per dimension
    /// its length and lower bound (1); then each element as a 32-bit length (-1 for NULL) and
    /// its bytes in the element type's binary form.
    var binary: (data: PostgresData, type: String)? {
        var out = ByteBuffer()
        /// Writes the header and the elements; false when `append` finds one it cannot send.
        func write<T>(_ values: [T?], element: PostgresDataType, _ append: (T, inout ByteBuffer) -> Bool) -> Bool {
            out.writeInteger(Int32(values.isEmpty ? 0 : 1))
            out.writeInteger(Int32(values.contains { $0 == nil } ? 1 : 0))
            out.writeInteger(Int32(bitPattern: element.rawValue))
            if !values.isEmpty {
                out.writeInteger(Int32(values.count))
                out.writeInteger(Int32(1))
            }
            for value in values {
                guard let value else { out.writeInteger(Int32(-1)); continue }
                guard append(value, &out) else { return false }
            }
            return true
        }
        let type: String, arrayType: PostgresDataType, written: Bool
        switch elements {
        case .int8(let values):
            (type, arrayType) = ("int8", .int8Array)
            out.reserveCapacity(20 + values.count * 12)
            written = write(values, element: .int8) { value, out in
                out.writeInteger(Int32(8))
                out.writeInteger(value)
                return true
            }
        case .bool(let values):
            (type, arrayType) = ("bool", .boolArray)
            written = write(values, element: .bool) { value, out in
                out.writeInteger(Int32(1))
                out.writeInteger(UInt8(value ? 1 : 0))
                return true
            }
        case .text(let values):
            (type, arrayType) = ("text", .textArray)
            written = write(values, element: .text) { value, out in
                guard Self.canHold(value) else { return false }
                out.writeInteger(Int32(value.utf8.count))
                out.writeString(value)
                return true
            }
        case .bytea(let values):
            (type, arrayType) = ("bytea", .byteaArray)
            out.reserveCapacity(values.reduce(20) { $0 + 4 + ($1?.count ?? 0) })
            written = write(values, element: .bytea) { value, out in
                out.writeInteger(Int32(value.count))
                out.writeBytes(value)
                return true
            }
        }
        guard written else { return nil }
        return (PostgresData(type: arrayType, formatCode: .binary, value: out), type + "[]")
    }

    /// Never encoded through Codable: it is bound only to a prepared statement, in its binary
    /// form (``binary``), by ``PreparingPostgresDatabase``.
    public func encode(to encoder: any Encoder) throws {
        throw EncodingError.invalidValue(self, .init(codingPath: encoder.codingPath, debugDescription: "a PostgresArray travels only in a prepared statement"))
    }
}

extension PostgresArray {
    /// A SELECT of one row per element of `columns`' arrays, which are of one length: row `n`
    /// holds each array's `n`th element under its column's name. For a batch of many columns,
    /// in place of `unnest` over all the arrays, which runs a function a column and keeps each
    /// one's results in a tuple store of its own: for 36 arrays of a dozen elements, 0.33–0.40 ms
    /// a run against 0.11–0.12 ms this way, measured alone; the switch's batch statement as a
    /// whole runs about 3 % shorter (`docs/benchmarks.md`). The first array is unnested
    /// with its ordinality, which keeps the planner's estimate of an unnest's rows (a generic
    /// plan's joins are chosen by it), and the others are read by that index. The arrays are
    /// bound once each. A ``Statement``: the column names are text of the caller's code (never
    /// a value), so its text is rendered once for each set of names.
    public static func rows(_ columns: [(name: String, array: PostgresArray)]) -> Statement {
        precondition(!columns.isEmpty)
        // Built piece by piece (a text between each two binds): a batch builds it every time.
        var select = "SELECT u.v AS " + columns[0].name
        for (i, column) in columns.enumerated().dropFirst() {
            select += ", (a.a" + String(i) + ")[u.n] AS " + column.name
        }
        var rows = Statement()
        rows.pieces.reserveCapacity(2 * columns.count + 1)
        rows.binds.reserveCapacity(columns.count)
        rows.pieces.append(.text(select + " FROM (SELECT "))
        for (i, column) in columns.enumerated() {
            rows.pieces.append(.bind)
            rows.binds.append(.other(column.array))
            let name = " AS a" + String(i)
            rows.pieces.append(.text(i == columns.count - 1 ? name + ") a, unnest(a.a0) WITH ORDINALITY AS u(v, n)" : name + ", "))
        }
        return rows
    }
}
