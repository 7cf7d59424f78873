import Foundation
import PostgresNIO
import SQLKit

/// A row kept after its statement: its cells copied out as values, readable as any ``SQLRow``
/// is, and changed a column at a time (``setting(_:to:)``). A caller that decides from rows it
/// read before — and checks, when it writes, that what it decided from still holds — keeps them
/// as these (the switch's warm sales, ``SaleBatcher``).
///
/// Only integers, text, booleans and bytes are kept; a row with a cell of another type is not
/// captured (``init(capturing:)`` is nil), and neither is a row of an engine other than
/// PostgreSQL's prepared statements.
public struct CapturedRow: SQLRow, Sendable {
    public enum Value: Sendable, Equatable {
        case null
        case integer(Int64)
        case text(String)
        case bool(Bool)
        case bytes(Data)
    }

    private var values: [String: Value]

    public init(_ values: [String: Value]) { self.values = values }

    /// The row's cells (only those of `columns`, when given), when each is NULL or one of the
    /// kinds kept.
    public init?(capturing row: any SQLRow, columns: Set<String>? = nil) {
        guard let row = row as? PostgresResultRow else { return nil }
        var values: [String: Value] = [:]
        values.reserveCapacity(columns?.count ?? row.cells.count)
        for cell in row.cells where columns?.contains(cell.columnName) ?? true {
            guard let value = try? Self.value(cell) else { return nil }
            values[cell.columnName] = value
        }
        self.values = values
    }

    private static func value(_ cell: PostgresCell) throws -> Value? {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int8, .int4, .int2: return .integer(try cell.decode(Int64.self))
        case .text, .varchar, .bpchar, .name: return .text(try cell.decode(String.self))
        case .bool: return .bool(try cell.decode(Bool.self))
        case .bytea: return .bytes(try cell.decode(Data.self))
        default: return nil
        }
    }

    /// The row with `column` set to `value` (added when it has no such column).
    public func setting(_ column: String, to value: Value) -> CapturedRow { setting([column: value]) }

    /// The row with each of `changes`' columns set to its value.
    public func setting(_ changes: [String: Value]) -> CapturedRow {
        var copy = self
        copy.values.merge(changes) { _, new in new }
        return copy
    }

    public subscript(column: String) -> Value? { values[column] }

    public var allColumns: [String] { Array(values.keys) }
    public func contains(column: String) -> Bool { values[column] != nil }
    public func decodeNil(column: String) throws -> Bool { (values[column] ?? .null) == .null }

    public func decode<D: Decodable>(column: String, as type: D.Type) throws -> D {
        guard let value = values[column] else { throw StorageError("no column \(column) in the row") }
        let decoded: Any
        switch (value, D.self) {
        case (.integer(let n), is Int64.Type), (.integer(let n), is Int64?.Type): decoded = n
        case (.integer(let n), is Int.Type), (.integer(let n), is Int?.Type): decoded = Int(n)
        case (.text(let s), is String.Type), (.text(let s), is String?.Type): decoded = s
        case (.bool(let b), is Bool.Type), (.bool(let b), is Bool?.Type): decoded = b
        case (.bytes(let d), is Data.Type), (.bytes(let d), is Data?.Type): decoded = d
        case (.null, _):
            guard let none = (D.self as? any OptionalNone.Type)?.nothing else { throw StorageError("column \(column) is NULL") }
            decoded = none as Any
        default: throw StorageError("column \(column) is not a \(D.self)")
        }
        guard let typed = decoded as? D else { throw StorageError("column \(column) is not a \(D.self)") }
        return typed
    }
}

/// Described by its columns' names only: a kept row may hold a sealed card number or a PIN
/// verification value, and neither goes into a log line.
extension CapturedRow: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "CapturedRow(\(values.keys.sorted().joined(separator: ", ")))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}

/// An optional's `nil`, for a NULL cell read as an optional type.
private protocol OptionalNone { static var nothing: Self { get } }
extension Optional: OptionalNone { static var nothing: Self { nil } }
