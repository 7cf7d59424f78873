extension QRCode {
    /// The symbol for a terminal: two module rows per text line with Unicode half blocks,
    /// a quiet zone of `border` modules. `inverted` draws light modules as blocks, for a light
    /// symbol on a dark terminal background.
    public func terminalText(border: Int = 2, inverted: Bool = false) -> String {
        func darkAt(_ x: Int, _ y: Int) -> Bool {
            let inside = x >= 0 && y >= 0 && x < size && y < size && isDark(x: x, y: y)
            return inside != inverted
        }
        var lines: [String] = []
        for y in stride(from: -border, to: size + border, by: 2) {
            var line = ""
            for x in -border..<(size + border) {
                switch (darkAt(x, y), darkAt(x, y + 1)) {
                case (true, true): line += "█"
                case (true, false): line += "▀"
                case (false, true): line += "▄"
                case (false, false): line += " "
                }
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    /// The symbol as SVG: one path of unit squares on a white background, `moduleSize` user
    /// units each, with a quiet zone of `border` modules.
    public func svg(moduleSize: Int = 4, border: Int = 4) -> String {
        let total = (size + 2 * border) * moduleSize
        var path = ""
        for y in 0..<size {
            var x = 0
            while x < size {
                guard isDark(x: x, y: y) else { x += 1; continue }
                var run = 1
                while x + run < size && isDark(x: x + run, y: y) { run += 1 }
                path += "M\(x + border),\(y + border)h\(run)v1h-\(run)z"
                x += run
            }
        }
        return """
            <svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="\(total)" height="\(total)" viewBox="0 0 \(size + 2 * border) \(size + 2 * border)" shape-rendering="crispEdges">
            <rect width="100%" height="100%" fill="#FFFFFF"/><path fill="#000000" d="\(path)"/></svg>
            """
    }

    /// The symbol as a PNG: 1-bit greyscale, `scale` pixels a module, a quiet zone of `border`
    /// modules; the image data is a zlib stream of stored (uncompressed) deflate blocks, which
    /// every PNG reader accepts and which needs no compression library.
    public func png(scale: Int = 4, border: Int = 4) -> [UInt8] {
        let side = (size + 2 * border) * scale
        let rowBytes = (side + 7) / 8
        var raw: [UInt8] = []
        raw.reserveCapacity((rowBytes + 1) * side)
        for py in 0..<side {
            raw.append(0)  // filter: none
            var row = [UInt8](repeating: 0xFF, count: rowBytes)
            let y = py / scale - border
            if y >= 0 && y < size {
                for px in 0..<side {
                    let x = px / scale - border
                    if x >= 0 && x < size && isDark(x: x, y: y) { row[px / 8] &= ~(0x80 >> UInt8(px % 8)) }
                }
            }
            raw += row
        }
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        func chunk(_ type: String, _ data: [UInt8]) {
            out += PNG.bigEndian(UInt32(data.count))
            let body = Array(type.utf8) + data
            out += body
            out += PNG.bigEndian(PNG.crc32(body))
        }
        chunk("IHDR", PNG.bigEndian(UInt32(side)) + PNG.bigEndian(UInt32(side)) + [1, 0, 0, 0, 0])
        chunk("IDAT", PNG.zlibStored(raw))
        chunk("IEND", [])
        return out
    }
}

enum PNG {
    static func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// CRC-32 (ISO 3309) over a chunk's type and data.
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    /// A zlib stream (RFC 1950) of stored deflate blocks (RFC 1951 §3.2.4) and its Adler-32.
    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let n = min(65_535, data.count - offset)
            let final: UInt8 = offset + n == data.count ? 1 : 0
            out.append(final)
            out += [UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            out += data[offset..<offset + n]
            offset += n
        } while offset < data.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in data {
            a = (a + UInt32(byte)) % 65_521
            b = (b + a) % 65_521
        }
        out += bigEndian(b << 16 | a)
        return out
    }
}
