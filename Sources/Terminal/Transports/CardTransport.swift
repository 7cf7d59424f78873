import EMV
import Foundation

/// Carries command APDUs to a card and its answers back: in process, through vpcd, or PC/SC.
public protocol CardTransport: Sendable {
    /// Sends one command APDU and returns the card's response APDU (data ‖ SW1 SW2).
    func transmit(_ command: [UInt8]) async throws -> [UInt8]
}

/// A transport that calls a function: a card object in the same process.
public struct InProcessTransport: CardTransport {
    let exchange: @Sendable ([UInt8]) async throws -> [UInt8]
    public init(_ exchange: @escaping @Sendable ([UInt8]) async throws -> [UInt8]) { self.exchange = exchange }
    public func transmit(_ command: [UInt8]) async throws -> [UInt8] { try await exchange(command) }
}

/// One command and its answer, as the trace shows them.
public struct APDUExchange: Sendable, Hashable {
    public let command: [UInt8]
    public let response: [UInt8]
}

/// Runs a kernel over a transport until it reaches an outcome.
public enum Reader {
    public static func tap(_ kernel: inout ContactlessKernel, over transport: any CardTransport) async -> (KernelOutcome, [APDUExchange]) {
        var trace: [APDUExchange] = []
        var step = kernel.start()
        while true {
            switch step {
            case .finished(let outcome):
                return (outcome, trace)
            case .send(let command):
                let bytes = command.encoded
                let answer: [UInt8]
                do {
                    answer = try await transport.transmit(bytes)
                } catch {
                    return (.endApplication(reason: "the card went away: \(error)"), trace)
                }
                trace.append(APDUExchange(command: bytes, response: answer))
                guard let response = try? ResponseAPDU(bytes: answer) else {
                    return (.endApplication(reason: "malformed response APDU"), trace)
                }
                step = kernel.receive(response)
            }
        }
    }
}
