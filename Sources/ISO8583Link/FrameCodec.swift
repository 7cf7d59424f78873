import NIOCore

/// Cuts the inbound byte stream into messages (the frame's prefix removed).
final class FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = [UInt8]
    let parser: FrameParser

    init(parser: FrameParser) { self.parser = parser }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let found = try buffer.withUnsafeReadableBytes { raw throws(FrameError) in try parser.nextFrame(in: raw) }
        guard let frame = found, let bytes = buffer.readBytes(length: frame.frameLength) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(Array(bytes[frame.message])))
        return .continue
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// Adds the frame's prefix to outbound packed messages.
final class FrameEncoder: MessageToByteEncoder {
    typealias OutboundIn = [UInt8]
    let parser: FrameParser

    init(parser: FrameParser) { self.parser = parser }

    func encode(data: [UInt8], out: inout ByteBuffer) throws {
        out.writeBytes(try parser.frame(data))
    }
}
