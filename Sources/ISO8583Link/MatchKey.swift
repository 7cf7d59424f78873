import ISO8583

/// How a response is paired with its request: the MTI's class (the first two digits, so 0210
/// answers 0200) and the values of some fields — by default terminal id (DE41) and STAN
/// (DE11), with overrides per MTI class for messages without DE41 (network management).
public struct MatchRule: Sendable, Hashable {
    public var defaultFields: [Int]
    /// Overrides by MTI class ("08" for 0800/0810).
    public var overrides: [String: [Int]]

    public init(defaultFields: [Int] = [41, 11], overrides: [String: [Int]] = ["08": [11]]) {
        self.defaultFields = defaultFields
        self.overrides = overrides
    }

    public func key(for message: Message) -> MatchKey {
        let mtiClass = String(message.mti.prefix(2))
        let fields = overrides[mtiClass] ?? defaultFields
        return MatchKey(mtiClass: mtiClass, values: fields.map { message[$0] ?? "" })
    }
}

public struct MatchKey: Sendable, Hashable, CustomStringConvertible {
    public var mtiClass: String
    public var values: [String]
    public var description: String { "\(mtiClass)xx/" + values.joined(separator: "/") }
}
