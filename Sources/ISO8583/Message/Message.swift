import PaymentCore

/// An ISO 8583 message: MTI, header values (for dialects with a header) and data elements.
///
/// Each field holds its *value*: the characters for text and numeric fields (digits, with `=`
/// as the track-2 separator), the raw bytes for binary fields — independent of how a dialect
/// writes them on the wire. `description` masks card data; see ``describe(spec:reveal:)``.
public struct Message: Sendable, Hashable, CustomStringConvertible {
    /// Message type indicator, four digits ("0200").
    public var mti: String
    /// Header values by the header spec's field names; computed ones are filled on unpack.
    public var header: [String: String]
    var values: [[UInt8]?]

    public init(mti: String, header: [String: String] = [:]) {
        self.mti = mti
        self.header = header
        self.values = [[UInt8]?](repeating: nil, count: 193)
    }

    /// A field's value as text (nil when absent).
    public subscript(field: Int) -> String? {
        get { values[field].map { String(decoding: $0, as: UTF8.self) } }
        set { values[field] = newValue.map { Array($0.utf8) } }
    }

    /// A field's value as bytes: raw for binary fields, the characters' bytes for the rest.
    public func bytes(_ field: Int) -> [UInt8]? { values[field] }

    /// Sets a field's value from bytes (binary fields), or removes it with nil.
    public mutating func set(_ field: Int, bytes: [UInt8]?) { values[field] = bytes }

    /// Numbers of the fields present, ascending.
    public var fieldNumbers: [Int] { values.indices.filter { values[$0] != nil } }

    public func has(_ field: Int) -> Bool { values[field] != nil }

    /// MTI and field numbers only: values may be card data.
    public var description: String {
        "ISO8583(\(mti), fields \(fieldNumbers.map(String.init).joined(separator: " ")))"
    }
}
