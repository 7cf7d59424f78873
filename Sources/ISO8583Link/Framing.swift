/// How messages are delimited on a TCP link.
public enum Framing: String, Sendable, Hashable, CaseIterable {
    /// A 2-byte big-endian binary length, then the message (POS links: the TPDU follows the
    /// length as part of the terminal dialect's message).
    case binaryLength2
    /// Four ASCII digits of length, then the message.
    case asciiLength4
    /// No separate prefix: the network dialect's 46-byte header carries the total length
    /// (byte 0 the header length, 46; bytes 2–5 the total length in ASCII, header included).
    case networkHeader
}

/// Why the bytes on a link cannot be framed. The link closes after any of these.
public enum FrameError: Error, Hashable, Sendable, CustomStringConvertible {
    case oversize(length: Int, maximum: Int)
    case garbage(String)

    public var description: String {
        switch self {
        case .oversize(let l, let m): return "frame of \(l) bytes exceeds the maximum \(m)"
        case .garbage(let why): return "not a frame: \(why)"
        }
    }
}

/// Finds frames in a byte stream and adds the prefix to outgoing messages. Pure: the NIO
/// decoder calls it with whatever bytes have arrived.
public struct FrameParser: Sendable {
    public let framing: Framing
    public let maximumLength: Int

    public init(framing: Framing, maximumLength: Int = 8192) {
        self.framing = framing
        self.maximumLength = maximumLength
    }

    /// Bytes before the message.
    public var prefixLength: Int {
        switch framing {
        case .binaryLength2: return 2
        case .asciiLength4: return 4
        case .networkHeader: return 0
        }
    }

    /// Looks at the start of `bytes`: nil when more bytes are needed, else how many bytes the
    /// next frame takes and where its message lies within them.
    public func nextFrame(in bytes: some Collection<UInt8>) throws(FrameError) -> (frameLength: Int, message: Range<Int>)? {
        var it = bytes.makeIterator()
        func byte() -> UInt8? { it.next() }
        switch framing {
        case .binaryLength2:
            guard let hi = byte(), let lo = byte() else { return nil }
            let length = Int(hi) << 8 | Int(lo)
            guard length > 0 else { throw .garbage("zero-length frame") }
            guard length <= maximumLength else { throw .oversize(length: length, maximum: maximumLength) }
            guard bytes.count >= 2 + length else { return nil }
            return (2 + length, 2..<2 + length)
        case .asciiLength4:
            var length = 0
            for _ in 0..<4 {
                guard let c = byte() else { return nil }
                guard c >= 48, c <= 57 else { throw .garbage("length prefix is not 4 ASCII digits") }
                length = length * 10 + Int(c - 48)
            }
            guard length > 0 else { throw .garbage("zero-length frame") }
            guard length <= maximumLength else { throw .oversize(length: length, maximum: maximumLength) }
            guard bytes.count >= 4 + length else { return nil }
            return (4 + length, 4..<4 + length)
        case .networkHeader:
            guard let headerLength = byte() else { return nil }
            guard headerLength == 46 else { throw .garbage("header length byte is \(headerLength), not 46") }
            guard byte() != nil else { return nil }
            var length = 0
            for _ in 0..<4 {
                guard let c = byte() else { return nil }
                guard c >= 48, c <= 57 else { throw .garbage("header total length is not 4 ASCII digits") }
                length = length * 10 + Int(c - 48)
            }
            guard length >= 46 + 4 else { throw .garbage("total length \(length) is shorter than header and MTI") }
            guard length <= maximumLength else { throw .oversize(length: length, maximum: maximumLength) }
            guard bytes.count >= length else { return nil }
            return (length, 0..<length)
        }
    }

    /// The bytes to send for a packed message.
    public func frame(_ message: [UInt8]) throws(FrameError) -> [UInt8] {
        guard message.count <= maximumLength else { throw .oversize(length: message.count, maximum: maximumLength) }
        switch framing {
        case .binaryLength2:
            return [UInt8(message.count >> 8), UInt8(message.count & 0xFF)] + message
        case .asciiLength4:
            let digits = String(message.count)
            return Array((String(repeating: "0", count: 4 - digits.count) + digits).utf8) + message
        case .networkHeader:
            return message
        }
    }
}
