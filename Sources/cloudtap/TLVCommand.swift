import ArgumentParser
import EMV
import Foundation
import PaymentCore

struct TLVCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tlv", abstract: "BER-TLV tools (EMV 4.4 Book 3 Annex B).", subcommands: [Decode.self])

    struct Decode: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decode BER-TLV hex into a named tree.",
            discussion: "Card data (PAN, track 2, cardholder name) is masked unless --reveal is given.")

        @Argument(help: "The TLV bytes in hex, e.g. 770A9F2701809F3602002A.")
        var hex: String
        @Flag(help: "Show card numbers and track data in full.")
        var reveal = false
        @OptionGroup var output: OutputOptions

        func run() throws {
            let bytes = try parseHex(hex, option: "hex")
            let items: [TLV]
            do { items = try TLV.decodeTree(bytes) } catch { throw ToolError("\(error)") }
            let printer = TLVPrinter(revealCardData: reveal)
            if output.json {
                let object = items.map { json($0, printer: printer) }
                let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(printer.render(items))
            }
        }

        private func json(_ item: TLV, printer: TLVPrinter) -> [String: Any] {
            let info = printer.dictionary[item.tag]
            var out: [String: Any] = ["tag": item.tag.description, "length": item.value.count, "name": info?.name ?? "unknown"]
            if item.tag.isConstructed, let kids = try? item.children() {
                out["children"] = kids.map { json($0, printer: printer) }
            } else {
                out["value"] = printer.show(item, info: info)
            }
            return out
        }
    }
}
