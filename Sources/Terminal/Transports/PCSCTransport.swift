import Foundation
import PCSC

/// A card in a PC/SC reader (a USB contactless reader, or vpcd's virtual one) through pcsc-lite.
/// Follows T=0 conventions: 61xx fetches the rest with GET RESPONSE, 6Cxx resends with Le.
public struct PCSCTransport: CardTransport {
    public let card: PCSCCard
    public let reader: String

    public init(card: PCSCCard, reader: String) {
        self.card = card
        self.reader = reader
    }

    /// Waits up to `timeout` for a card in `reader` (the phone held to the reader) and connects.
    public static func waitForCard(in reader: String, context: PCSCContext, timeout: Duration = .seconds(10)) async throws -> PCSCTransport {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            do {
                return PCSCTransport(card: try context.connect(reader: reader), reader: reader)
            } catch let error as PCSCError where error.code == PCSCError.noSmartCard || error.code == 0x8010_0017 || error.code == 0x8010_0069 {
                guard clock.now < deadline else { throw error }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    public func transmit(_ command: [UInt8]) async throws -> [UInt8] {
        var answer = try card.transmit(command)
        var data: [UInt8] = []
        for _ in 0..<16 {
            guard answer.count >= 2 else { return data + answer }
            let sw1 = answer[answer.count - 2], sw2 = answer[answer.count - 1]
            if sw1 == 0x61 {
                data += answer.dropLast(2)
                answer = try card.transmit([0x00, 0xC0, 0x00, 0x00, sw2])
            } else if sw1 == 0x6C, command.count >= 5 {
                answer = try card.transmit(Array(command.prefix(command.count - 1)) + [sw2])
            } else {
                return data + answer
            }
        }
        return data + answer
    }
}
