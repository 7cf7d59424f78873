import PaymentCore

/// An ISO 8583 message: MTI, header values (for dialects with a header) and data elements.
///
/// Each field holds its *value*: the characters for text and numeric fields (digits, with `=`
/// as the track-2 separator), the raw bytes for binary fields — independent of how a dialect
/// writes them on the wire. `description` masks card data; see ``describe(spec:reveal:)``.
public struct Message: Sendable, Hashable, CustomStringConvertible {
    /// Message type indicator, four digits ("0200").
    public var mti: String
    /// Header values to send, by the header spec's field names; fields not given take the
    /// spec's defaults (or, for a message that was unpacked, the values it arrived with).
    /// Read a received header with ``headerFields(spec:)``.
    public var header: [String: String]
    /// The header bytes as received, kept so a relayed message keeps its header unchanged.
    var receivedHeader: [UInt8]?
    /// Every field's value, one after another; `spans` says where each lies. One buffer for the
    /// whole message keeps unpacking to two allocations.
    var storage: [UInt8]
    var spans: [Span]

    struct Span: Sendable, Hashable {
        var start: Int32
        var count: Int32
        static let absent = Span(start: -1, count: 0)
        var isPresent: Bool { start >= 0 }
    }

    public init(mti: String, header: [String: String] = [:]) {
        self.mti = mti
        self.header = header
        self.receivedHeader = nil
        self.storage = []
        self.spans = [Span](repeating: .absent, count: 193)
    }

    /// A field's value without copying it.
    @inline(__always)
    func value(_ field: Int) -> ArraySlice<UInt8>? {
        let span = spans[field]
        guard span.isPresent else { return nil }
        return storage[Int(span.start)..<Int(span.start + span.count)]
    }

    /// A field's value as text (nil when absent).
    public subscript(field: Int) -> String? {
        get { value(field).map { String(decoding: $0, as: UTF8.self) } }
        set { set(field, bytes: newValue.map { Array($0.utf8) }) }
    }

    /// A field's value as bytes: raw for binary fields, the characters' bytes for the rest.
    public func bytes(_ field: Int) -> [UInt8]? { value(field).map(Array.init) }

    /// Sets a field's value from bytes (binary fields), or removes it with nil.
    public mutating func set(_ field: Int, bytes: [UInt8]?) {
        guard let bytes else { spans[field] = .absent; return }
        spans[field] = Span(start: Int32(storage.count), count: Int32(bytes.count))
        storage.append(contentsOf: bytes)
    }

    /// Records a value already appended to `storage` at `start`.
    @inline(__always)
    mutating func setSpan(_ field: Int, start: Int, count: Int) {
        spans[field] = Span(start: Int32(start), count: Int32(count))
    }

    /// Numbers of the fields present, ascending.
    public var fieldNumbers: [Int] { spans.indices.filter { spans[$0].isPresent } }

    public func has(_ field: Int) -> Bool { spans[field].isPresent }

    /// Messages are equal when MTI, header and every field's value are; storage layout does not count.
    public static func == (a: Message, b: Message) -> Bool {
        guard a.mti == b.mti, a.header == b.header, a.receivedHeader == b.receivedHeader else { return false }
        for n in 0..<193 where a.value(n) != b.value(n) { return false }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(mti)
        for n in 0..<193 { hasher.combine(value(n)) }
    }

    /// MTI and field numbers only: values may be card data.
    public var description: String {
        "ISO8583(\(mti), fields \(fieldNumbers.map(String.init).joined(separator: " ")))"
    }
}
