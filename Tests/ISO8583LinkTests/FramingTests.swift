import NIOCore
import NIOEmbedded
import Testing
@testable import ISO8583Link

@Suite("Framing")
struct FramingTests {
    @Test("each framing finds whole frames, waits for partial ones, and frames outgoing messages", arguments: Framing.allCases)
    func frames(framing: Framing) throws {
        let parser = FrameParser(framing: framing)
        var message: [UInt8] = [46, 0x02] + Array("0063".utf8) + [UInt8](repeating: 0x41, count: 57)  // a 63-byte "network" message
        if framing != .networkHeader { message = [UInt8](repeating: 0x42, count: 63) }
        let framed = try parser.frame(message)
        for cut in 0..<framed.count {
            #expect(try parser.nextFrame(in: framed.prefix(cut)) == nil, "cut at \(cut)")
        }
        let found = try #require(try parser.nextFrame(in: framed + [1, 2, 3]))
        #expect(found.frameLength == framed.count)
        #expect(Array(framed[found.message]) == message)
    }

    @Test("garbage and oversize frames are errors")
    func bad() {
        #expect(throws: FrameError.oversize(length: 9000, maximum: 8192)) { try FrameParser(framing: .binaryLength2).nextFrame(in: [0x23, 0x28]) }
        #expect(throws: FrameError.self) { try FrameParser(framing: .asciiLength4).nextFrame(in: Array("00A1".utf8)) }
        #expect(throws: FrameError.self) { try FrameParser(framing: .networkHeader).nextFrame(in: [45, 2]) }
        #expect(throws: FrameError.self) { try FrameParser(framing: .networkHeader).nextFrame(in: [46, 2] + Array("0010".utf8)) }
        #expect(throws: FrameError.self) { try FrameParser(framing: .binaryLength2).nextFrame(in: [0, 0]) }
    }

    @Test("the NIO decoder handles bytes arriving one at a time, then closes on garbage")
    func embedded() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(parser: FrameParser(framing: .binaryLength2))))
        for b: UInt8 in [0, 3, 0x61, 0x62] {
            try channel.writeInbound(ByteBuffer(bytes: [b]))
            #expect(try channel.readInbound(as: [UInt8].self) == nil)
        }
        try channel.writeInbound(ByteBuffer(bytes: [0x63, 0, 1, 0x64]))
        #expect(try channel.readInbound(as: [UInt8].self) == [0x61, 0x62, 0x63])
        #expect(try channel.readInbound(as: [UInt8].self) == [0x64])
        #expect(throws: (any Error).self) { try channel.writeInbound(ByteBuffer(bytes: [0xFF, 0xFF, 0])) }
        _ = try? channel.finish()
    }
}
