import Foundation
import Testing
import EMV
import PaymentCore
@testable import ISO8583

/// The sample messages in Samples/ were packed by pyiso8583 (scripts/pyiso8583-interop.py) with
/// specs generated from CloudTap's dialect files; the JSON beside each holds the field values.
struct Sample: Sendable, CustomStringConvertible {
    let name: String
    let dialect: String
    let bytes: [UInt8]
    let mti: String
    let fields: [String: String]
    var description: String { name }

    static let all: [Sample] = {
        let dir = Bundle.module.url(forResource: "Samples", withExtension: nil)!
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { $0.hasSuffix(".hex") }.sorted().map { file in
            let base = String(file.dropLast(4))
            let hex = try! String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            let json = try! JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent(base + ".json"))) as! [String: Any]
            return Sample(name: base, dialect: String(base.prefix { $0 != "-" }), bytes: try! [UInt8](hex: hex.trimmingCharacters(in: .whitespacesAndNewlines)),
                          mti: json["mti"] as! String, fields: json["fields"] as! [String: String])
        }
    }()
}

@Suite("Sample messages")
struct SampleTests {
    @Test("every sample decodes to its fields and encodes back byte for byte", arguments: Sample.all)
    func roundTrip(sample: Sample) throws {
        let spec = try MessageSpec.dialect(sample.dialect)
        let message = try spec.unpack(sample.bytes)
        #expect(message.mti == sample.mti)
        #expect(Set(message.fieldNumbers.map(String.init)) == Set(sample.fields.keys))
        for (key, value) in sample.fields {
            let n = Int(key)!
            let got = spec[n]!.type == .b ? message.bytes(n)!.hexString : message[n]!
            #expect(got == value, "DE\(n)")
        }
        #expect(try spec.pack(message) == sample.bytes)
    }

    @Test("there are samples for every dialect")
    func coverage() {
        #expect(Set(Sample.all.map(\.dialect)) == ["iso87ascii", "network", "terminal"])
        #expect(Sample.all.count >= 15)
    }

    @Test("the router reads MTI, PAN, STAN and terminal id without unpacking the rest", arguments: Sample.all)
    func peek(sample: Sample) throws {
        let key = try MessageSpec.dialect(sample.dialect).peek(sample.bytes)
        #expect(key.mti == sample.mti)
        #expect(key.pan == sample.fields["2"])
        #expect(key.stan == sample.fields["11"])
        #expect(key.terminalID == sample.fields["41"])
    }

    @Test("describing a message masks DE2, DE35, DE52 and DE55 card data")
    func masking() throws {
        let sample = Sample.all.first { $0.name == "network-0200-pin" }!
        let spec = MessageSpec.network
        let m = try spec.unpack(sample.bytes)
        let text = m.describe(spec: spec)
        #expect(!text.contains("6234567890123456780"))
        #expect(text.contains("623456*********6780"))
        #expect(!text.contains("3A5F1C2D4E6B7A89"))
        #expect(!text.contains("29122010000000000"))
        #expect(text.contains("9F26 Application Cryptogram"))
        #expect(!String(describing: m).contains("6234567890123456780"))
        let json = try JSONSerialization.data(withJSONObject: m.jsonObject(spec: spec))
        #expect(!String(decoding: json, as: UTF8.self).contains("6234567890123456780"))
        #expect(m.describe(spec: spec, reveal: true).contains("6234567890123456780"))
    }

    @Test("the network header carries its length and the total length")
    func networkHeader() throws {
        let sample = Sample.all.first { $0.name == "network-0800-sign-on" }!
        let m = try MessageSpec.network.unpack(sample.bytes)
        let h = m.headerFields(spec: .network)
        #expect(h["totalLength"] == String(format: "%04d", sample.bytes.count))
        #expect(h["headerLength"] == "2E")
        #expect(h["destination"] == "00010000   ")
        var wrong = sample.bytes
        wrong[5] = UInt8(ascii: "9")  // total length's last digit
        #expect(throws: ISO8583Error.self) { try MessageSpec.network.unpack(wrong) }
    }
}
