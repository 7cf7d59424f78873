import Foundation
import NIOCore
import NIOPosix

/// A card (here: the phone's applet) plugged into vpcd, the virtual smart-card reader of
/// vsmartcard, so that PC/SC software sees it in the reader "Virtual PCD 00 00".
///
/// The card side connects to vpcd (TCP 35963 for the first reader). Each message both ways is a
/// 2-byte big-endian length and the payload. A 1-byte message from vpcd is a control code:
/// 00 power off, 01 power on, 02 reset, 04 get ATR (answered with the ATR); anything longer is
/// a command APDU, answered with the response APDU.
public final class VirtualCard: Sendable {
    /// An ATR offering T=0 and T=1 (PC/SC tools insist on T=0), historical bytes "CLOUDTAP".
    public static let atr: [UInt8] = {
        var atr: [UInt8] = [0x3B, 0x88, 0x80, 0x01] + Array("CLOUDTAP".utf8)
        atr.append(atr.dropFirst().reduce(0, ^))  // TCK: XOR from T0 on is zero
        return atr
    }()

    let channel: any Channel

    /// Connects to vpcd. `process` answers each command APDU; `reset` is called on power off and
    /// reset (the field went away: the next tap starts afresh).
    public static func connect(host: String = "127.0.0.1", port: Int = 35963, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                               process: @escaping @Sendable ([UInt8]) -> [UInt8], reset: @escaping @Sendable () -> Void) async throws -> VirtualCard {
        let channel = try await ClientBootstrap(group: group)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(VPCDFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(VPCDCardHandler(process: process, reset: reset))
                }
            }
            .connect(host: host, port: port).get()
        return VirtualCard(channel: channel)
    }

    init(channel: any Channel) { self.channel = channel }

    /// Takes the card out of the reader.
    public func remove() async throws {
        try await channel.close()
    }

    /// Completes when vpcd closes the connection.
    public var closed: EventLoopFuture<Void> { channel.closeFuture }
}

/// Splits the stream into vpcd messages.
struct VPCDFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self), buffer.readableBytes >= 2 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }
}

final class VPCDCardHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let process: @Sendable ([UInt8]) -> [UInt8]
    let reset: @Sendable () -> Void

    init(process: @escaping @Sendable ([UInt8]) -> [UInt8], reset: @escaping @Sendable () -> Void) {
        self.process = process
        self.reset = reset
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = Array(buffer: unwrapInboundIn(data))
        var reply: [UInt8]?
        if message.count == 1 {
            switch message[0] {
            case 0x00, 0x02: reset()
            case 0x04: reply = VirtualCard.atr
            default: break
            }
        } else if !message.isEmpty {
            reply = process(message)
        }
        if let reply {
            var out = context.channel.allocator.buffer(capacity: reply.count + 2)
            out.writeInteger(UInt16(reply.count))
            out.writeBytes(reply)
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        }
        Self.acknowledgeQuickly(context.channel)
    }

    func channelActive(context: ChannelHandlerContext) {
        Self.acknowledgeQuickly(context.channel)
        context.fireChannelActive()
    }

    /// vpcd writes a message's length and its payload in two writes, and Nagle's algorithm holds
    /// the payload until the length is acknowledged; a delayed ACK here would hold every exchange
    /// up by ~40 ms. Linux turns quick ACKs off again whenever the socket sends, so this is set
    /// after every reply (TCP_QUICKACK = 12).
    static func acknowledgeQuickly(_ channel: any Channel) {
        #if os(Linux)
        _ = channel.setOption(ChannelOptions.tcpOption(NIOBSDSocket.Option(rawValue: 12)), value: 1)
        #endif
    }
}
