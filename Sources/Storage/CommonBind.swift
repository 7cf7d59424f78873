import Foundation

/// A bind of one of the types CloudTap's statements bind, read out of SQLKit's
/// `any Encodable & Sendable`. Asking the existential for each candidate type in turn (`as?
/// String`, `as? Int`, …, then `as? any OptionalBind`) goes through the runtime's general cast
/// once per candidate, and the optional check through a conformance look-up; on SQLite's writer
/// thread that was ~1.5 % of a load run's CPU. Here the existential is opened and its type
/// compared with each candidate's metadata, which is a pointer comparison.
enum CommonBind {
    case null
    case text(String)
    /// An integer, with the PostgreSQL type an unnamed statement would have declared for it.
    case integer(Int64, postgresType: String)
    case bool(Bool)
    case double(Double)
    case bytes([UInt8])
    case data(Data)

    /// Nil when the bind is of none of the types above (nor an optional of one).
    init?(_ bind: any Encodable & Sendable) {
        self.init(opened: bind)
    }

    private init?<T>(opened value: T) {
        // After the type check, the bit cast reads the value as the type it is.
        let type = ObjectIdentifier(T.self)
        if type == ObjectIdentifier(String.self) { self = .text(unsafeBitCast(value, to: String.self)) }
        else if type == ObjectIdentifier(Int.self) { self = .integer(Int64(unsafeBitCast(value, to: Int.self)), postgresType: "int8") }
        else if type == ObjectIdentifier(Int64.self) { self = .integer(unsafeBitCast(value, to: Int64.self), postgresType: "int8") }
        else if type == ObjectIdentifier(Data.self) { self = .data(unsafeBitCast(value, to: Data.self)) }
        else if type == ObjectIdentifier([UInt8].self) { self = .bytes(unsafeBitCast(value, to: [UInt8].self)) }
        else if type == ObjectIdentifier(Int32.self) { self = .integer(Int64(unsafeBitCast(value, to: Int32.self)), postgresType: "int4") }
        else if type == ObjectIdentifier(Int16.self) { self = .integer(Int64(unsafeBitCast(value, to: Int16.self)), postgresType: "int2") }
        else if type == ObjectIdentifier(UInt32.self) { self = .integer(Int64(unsafeBitCast(value, to: UInt32.self)), postgresType: "int8") }
        else if type == ObjectIdentifier(UInt16.self) { self = .integer(Int64(unsafeBitCast(value, to: UInt16.self)), postgresType: "int4") }
        else if type == ObjectIdentifier(UInt8.self) { self = .integer(Int64(unsafeBitCast(value, to: UInt8.self)), postgresType: "int2") }
        else if type == ObjectIdentifier(Bool.self) { self = .bool(unsafeBitCast(value, to: Bool.self)) }
        else if type == ObjectIdentifier(Double.self) { self = .double(unsafeBitCast(value, to: Double.self)) }
        else {
            guard let optional = value as? any OptionalBind else { return nil }
            guard let wrapped = optional.wrappedBind else { self = .null; return }
            self.init(opened: wrapped)
        }
    }
}

/// An optional bind, to tell `nil` apart whatever the wrapped type.
protocol OptionalBind {
    /// The wrapped value, when there is one.
    var wrappedBind: Any? { get }
}

extension Optional: OptionalBind {
    var wrappedBind: Any? {
        guard case .some(let wrapped) = self else { return nil }
        return wrapped
    }
}
