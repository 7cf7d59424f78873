import Foundation
import PaymentCore

extension Message {
    /// The message as a JSON-ready object: `{"mti", "header", "fields": {"2": …}}`. Binary
    /// fields are hex; text fields are their characters. Card data is masked unless `reveal`
    /// (a masked object will not encode back: its card data is gone).
    public func jsonObject(spec: MessageSpec, reveal: Bool = false) -> [String: Any] {
        var fields: [String: Any] = [:]
        for n in fieldNumbers {
            guard let fs = spec[n] else { continue }
            let value = bytes(n)!
            if reveal || fs.sensitivity == nil {
                fields[String(n)] = fs.type == .b ? value.hexString : String(decoding: value, as: UTF8.self)
            } else {
                fields[String(n)] = Message.display(value, spec: fs, reveal: false)
            }
        }
        var out: [String: Any] = ["mti": mti, "fields": fields]
        if spec.header != nil { out["header"] = headerFields(spec: spec) }
        return out
    }

    /// Builds a message from the object ``jsonObject(spec:reveal:)`` makes (with `reveal`).
    public init(jsonObject object: [String: Any], spec: MessageSpec) throws(ISO8583Error) {
        guard let mti = object["mti"] as? String else { throw ISO8583Error(.invalidValue("JSON has no \"mti\" string"), path: "MTI", offset: 0) }
        self.init(mti: mti, header: (object["header"] as? [String: String]) ?? [:])
        guard let fields = object["fields"] as? [String: Any] else { return }
        for (key, raw) in fields {
            guard let n = Int(key), (2...192).contains(n) else { throw ISO8583Error(.invalidValue("'\(key)' is not a field number"), path: "fields", offset: 0) }
            guard let fs = spec[n] else { throw ISO8583Error(.missingSpec, path: "DE\(n)", offset: 0) }
            guard let text = raw as? String else { throw ISO8583Error(.invalidValue("value must be a string"), path: "DE\(n)", offset: 0) }
            if fs.type == .b {
                do { set(n, bytes: try [UInt8](hex: text)) } catch { throw ISO8583Error(.invalidValue("\(error)"), path: "DE\(n)", offset: 0) }
            } else {
                set(n, bytes: Array(text.utf8))
            }
        }
    }
}
