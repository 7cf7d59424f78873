/// A QR code symbol (ISO/IEC 18004:2015), made from bytes: byte mode, preceded by an ECI
/// designator for UTF-8 (ECI 000026) when the text is not plain ASCII; the smallest version
/// (1–40) that holds the data at the chosen error correction level; the mask with the lowest
/// penalty score.
public struct QRCode: Sendable, Hashable {
    public enum ErrorCorrection: Int, Sendable, Hashable, CaseIterable {
        /// About 7 %, 15 %, 25 % and 30 % of codewords recoverable.
        case low = 0, medium, quartile, high

        /// The two format-information bits (L 01, M 00, Q 11, H 10).
        var formatBits: Int { [1, 0, 3, 2][rawValue] }
    }

    public let version: Int
    public let errorCorrection: ErrorCorrection
    public let mask: Int
    /// Modules on a side: 17 + 4 × version.
    public let size: Int
    /// Row-major, true for a dark module.
    public let modules: [Bool]

    public func isDark(x: Int, y: Int) -> Bool { modules[y * size + x] }

    public enum EncodingError: Error, Hashable, Sendable, CustomStringConvertible {
        case tooLong(bytes: Int, maximum: Int)
        public var description: String {
            switch self {
            case .tooLong(let n, let max): "\(n) bytes do not fit in a QR code at this error correction level (at most \(max))"
            }
        }
    }

    /// Encodes text (UTF-8; an ECI says so when it is not ASCII).
    public init(text: String, errorCorrection: ErrorCorrection = .medium, minimumVersion: Int = 1) throws(EncodingError) {
        let bytes = Array(text.utf8)
        try self.init(bytes: bytes, utf8: bytes.contains { $0 >= 0x80 }, errorCorrection: errorCorrection, minimumVersion: minimumVersion)
    }

    /// Encodes bytes in byte mode; `utf8` adds the ECI designator 26.
    public init(bytes: [UInt8], utf8: Bool, errorCorrection: ErrorCorrection = .medium, minimumVersion: Int = 1) throws(EncodingError) {
        let eciBits = utf8 ? 12 : 0
        var chosen: Int?
        for v in max(1, minimumVersion)...40 {
            let needed = eciBits + 4 + (v <= 9 ? 8 : 16) + bytes.count * 8
            if needed <= Self.dataCodewords(version: v, level: errorCorrection) * 8 { chosen = v; break }
        }
        guard let version = chosen else {
            let capacity = Self.dataCodewords(version: 40, level: errorCorrection) * 8 - eciBits - 4 - 16
            throw .tooLong(bytes: bytes.count, maximum: capacity / 8)
        }
        // The bit stream: [ECI 0111 + 00011010], byte mode 0100, count, data, terminator, pad.
        var bits = BitBuffer()
        if utf8 {
            bits.append(0b0111, count: 4)
            bits.append(26, count: 8)
        }
        bits.append(0b0100, count: 4)
        bits.append(bytes.count, count: version <= 9 ? 8 : 16)
        for b in bytes { bits.append(Int(b), count: 8) }
        let capacityBits = Self.dataCodewords(version: version, level: errorCorrection) * 8
        bits.append(0, count: min(4, capacityBits - bits.count))
        bits.append(0, count: (8 - bits.count % 8) % 8)
        var pad = 0xEC
        while bits.count < capacityBits {
            bits.append(pad, count: 8)
            pad ^= 0xEC ^ 0x11
        }
        let codewords = Self.interleaved(data: bits.bytes, version: version, level: errorCorrection)

        var matrix = Matrix(version: version)
        matrix.drawFunctionPatterns()
        matrix.drawCodewords(codewords)
        var best: (penalty: Int, mask: Int, matrix: Matrix)?
        for mask in 0..<8 {
            var candidate = matrix
            candidate.applyMask(mask)
            candidate.drawFormatBits(level: errorCorrection, mask: mask)
            let penalty = candidate.penalty()
            if best == nil || penalty < best!.penalty { best = (penalty, mask, candidate) }
        }
        self.version = version
        self.errorCorrection = errorCorrection
        self.mask = best!.mask
        self.size = best!.matrix.size
        self.modules = best!.matrix.dark
    }

    // MARK: Capacity and error correction (ISO/IEC 18004 Table 9)

    /// Error correction codewords per block, by level then version (index 0 unused).
    static let eccPerBlock: [[Int]] = [
        [-1, 7, 10, 15, 20, 26, 18, 20, 24, 30, 18, 20, 24, 26, 30, 22, 24, 28, 30, 28, 28, 28, 28, 30, 30, 26, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30],
        [-1, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26, 26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28],
        [-1, 13, 22, 18, 26, 18, 24, 18, 22, 20, 24, 28, 26, 24, 20, 30, 24, 28, 28, 26, 30, 28, 30, 30, 30, 30, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30],
        [-1, 17, 28, 22, 16, 22, 28, 26, 26, 24, 28, 24, 28, 22, 24, 24, 30, 28, 28, 26, 28, 30, 24, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30],
    ]
    /// Error correction blocks, by level then version.
    static let blocks: [[Int]] = [
        [-1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 6, 6, 6, 6, 7, 8, 8, 9, 9, 10, 12, 12, 12, 13, 14, 15, 16, 17, 18, 19, 19, 20, 21, 22, 24, 25],
        [-1, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49],
        [-1, 1, 1, 2, 2, 4, 4, 6, 6, 8, 8, 8, 10, 12, 16, 12, 17, 16, 18, 21, 20, 23, 23, 25, 27, 29, 34, 34, 35, 38, 40, 43, 45, 48, 51, 53, 56, 59, 62, 65, 68],
        [-1, 1, 1, 2, 4, 4, 4, 5, 6, 8, 8, 11, 11, 16, 16, 18, 16, 19, 21, 25, 25, 25, 34, 30, 32, 35, 37, 40, 42, 45, 48, 51, 54, 57, 60, 63, 66, 70, 74, 77, 81],
    ]

    /// Modules left for data and error correction once the function patterns are placed.
    static func rawDataModules(version v: Int) -> Int {
        var n = (16 * v + 128) * v + 64
        if v >= 2 {
            let align = v / 7 + 2
            n -= (25 * align - 10) * align - 55
            if v >= 7 { n -= 36 }
        }
        return n
    }

    static func dataCodewords(version v: Int, level: ErrorCorrection) -> Int {
        rawDataModules(version: v) / 8 - eccPerBlock[level.rawValue][v] * blocks[level.rawValue][v]
    }

    /// Splits the data into blocks, adds each block's Reed–Solomon codewords, interleaves.
    static func interleaved(data: [UInt8], version: Int, level: ErrorCorrection) -> [UInt8] {
        let count = blocks[level.rawValue][version], ecc = eccPerBlock[level.rawValue][version]
        let raw = rawDataModules(version: version) / 8
        let shortBlocks = count - raw % count, shortLength = raw / count
        let divisor = ReedSolomon.generator(degree: ecc)
        var dataBlocks: [[UInt8]] = [], eccBlocks: [[UInt8]] = []
        var k = 0
        for i in 0..<count {
            let length = shortLength - ecc + (i < shortBlocks ? 0 : 1)
            let block = Array(data[k..<k + length])
            k += length
            dataBlocks.append(block)
            eccBlocks.append(ReedSolomon.remainder(block, divisor: divisor))
        }
        var out: [UInt8] = []
        out.reserveCapacity(raw)
        for i in 0..<(shortLength - ecc + 1) {
            for block in dataBlocks where i < block.count { out.append(block[i]) }
        }
        for i in 0..<ecc {
            for block in eccBlocks { out.append(block[i]) }
        }
        return out
    }
}

/// Bits appended most significant first.
struct BitBuffer {
    private(set) var bytes: [UInt8] = []
    private(set) var count = 0

    mutating func append(_ value: Int, count n: Int) {
        for i in stride(from: n - 1, through: 0, by: -1) {
            if count % 8 == 0 { bytes.append(0) }
            if (value >> i) & 1 == 1 { bytes[count / 8] |= 0x80 >> UInt8(count % 8) }
            count += 1
        }
    }
}

/// Reed–Solomon over GF(2⁸) with the QR polynomial x⁸ + x⁴ + x³ + x² + 1.
enum ReedSolomon {
    /// Powers of the generator 2 (twice over, so a sum of logs indexes without a modulo) and
    /// their logarithms.
    static let tables: (exp: [UInt8], log: [Int]) = {
        var exp = [UInt8](repeating: 0, count: 512), log = [Int](repeating: 0, count: 256)
        var x = 1
        for i in 0..<255 {
            exp[i] = UInt8(x)
            log[x] = i
            x <<= 1
            if x & 0x100 != 0 { x ^= 0x11D }
        }
        for i in 255..<512 { exp[i] = exp[i - 255] }
        return (exp, log)
    }()

    static func multiply(_ x: UInt8, _ y: UInt8) -> UInt8 {
        guard x != 0, y != 0 else { return 0 }
        return tables.exp[tables.log[Int(x)] + tables.log[Int(y)]]
    }

    /// The generator polynomial's coefficients (highest power first, the leading 1 left out).
    static func generator(degree: Int) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: degree)
        result[degree - 1] = 1
        var root: UInt8 = 1
        for _ in 0..<degree {
            for j in 0..<degree {
                result[j] = multiply(result[j], root)
                if j + 1 < degree { result[j] ^= result[j + 1] }
            }
            root = multiply(root, 0x02)
        }
        return result
    }

    static func remainder(_ data: [UInt8], divisor: [UInt8]) -> [UInt8] {
        let n = divisor.count
        var result = [UInt8](repeating: 0, count: n)
        let (exp, log) = tables
        let divisorLogs = divisor.map { $0 == 0 ? -1 : log[Int($0)] }
        for b in data {
            let factor = b ^ result[0]
            for i in 0..<(n - 1) { result[i] = result[i + 1] }
            result[n - 1] = 0
            guard factor != 0 else { continue }
            let f = log[Int(factor)]
            for i in 0..<n where divisorLogs[i] >= 0 { result[i] ^= exp[divisorLogs[i] + f] }
        }
        return result
    }
}

/// The symbol being built: modules and which of them belong to function patterns.
struct Matrix {
    let version: Int
    let size: Int
    var dark: [Bool]
    var function: [Bool]

    init(version: Int) {
        self.version = version
        size = 17 + 4 * version
        dark = [Bool](repeating: false, count: size * size)
        function = [Bool](repeating: false, count: size * size)
    }

    mutating func set(_ x: Int, _ y: Int, _ isDark: Bool) {
        dark[y * size + x] = isDark
        function[y * size + x] = true
    }

    /// Alignment pattern centres (the same list for rows and columns).
    var alignmentPositions: [Int] {
        guard version > 1 else { return [] }
        let count = version / 7 + 2
        let step = (version * 8 + count * 3 + 5) / (count * 4 - 4) * 2
        var positions = [6]
        var pos = size - 7
        var tail: [Int] = []
        for _ in 0..<(count - 1) {
            tail.insert(pos, at: 0)
            pos -= step
        }
        positions += tail
        return positions
    }

    mutating func drawFunctionPatterns() {
        for i in 0..<size {
            set(6, i, i % 2 == 0)
            set(i, 6, i % 2 == 0)
        }
        for (cx, cy) in [(3, 3), (size - 4, 3), (3, size - 4)] {
            for dy in -4...4 {
                for dx in -4...4 {
                    let x = cx + dx, y = cy + dy
                    guard x >= 0, x < size, y >= 0, y < size else { continue }
                    let d = max(abs(dx), abs(dy))
                    set(x, y, d != 2 && d != 4)
                }
            }
        }
        let positions = alignmentPositions
        let last = positions.count - 1
        for (i, cy) in positions.enumerated() {
            for (j, cx) in positions.enumerated() {
                if (i == 0 && j == 0) || (i == 0 && j == last) || (i == last && j == 0) { continue }
                for dy in -2...2 {
                    for dx in -2...2 { set(cx + dx, cy + dy, max(abs(dx), abs(dy)) != 1) }
                }
            }
        }
        // Reserve the format areas now (written after masking) and write the version.
        drawFormatBits(level: .medium, mask: 0)
        if version >= 7 {
            var rem = version
            for _ in 0..<12 { rem = (rem << 1) ^ ((rem >> 11) * 0x1F25) }
            let bits = version << 12 | rem
            for i in 0..<18 {
                let bit = (bits >> i) & 1 == 1
                let a = size - 11 + i % 3, b = i / 3
                set(a, b, bit)
                set(b, a, bit)
            }
        }
    }

    /// The 15 format bits (level and mask, BCH-protected, masked with 0x5412), twice.
    mutating func drawFormatBits(level: QRCode.ErrorCorrection, mask: Int) {
        let data = level.formatBits << 3 | mask
        var rem = data
        for _ in 0..<10 { rem = (rem << 1) ^ ((rem >> 9) * 0x537) }
        let bits = (data << 10 | rem) ^ 0x5412
        func bit(_ i: Int) -> Bool { (bits >> i) & 1 == 1 }
        for i in 0...5 { set(8, i, bit(i)) }
        set(8, 7, bit(6))
        set(8, 8, bit(7))
        set(7, 8, bit(8))
        for i in 9..<15 { set(14 - i, 8, bit(i)) }
        for i in 0..<8 { set(size - 1 - i, 8, bit(i)) }
        for i in 8..<15 { set(8, size - 15 + i, bit(i)) }
        set(8, size - 8, true)  // the dark module
    }

    /// Places the codewords in the two-column zigzag from the bottom right.
    mutating func drawCodewords(_ codewords: [UInt8]) {
        var i = 0
        var right = size - 1
        while right >= 1 {
            if right == 6 { right = 5 }
            for vertical in 0..<size {
                for j in 0..<2 {
                    let x = right - j
                    let upward = (right + 1) & 2 == 0
                    let y = upward ? size - 1 - vertical : vertical
                    if !function[y * size + x] && i < codewords.count * 8 {
                        dark[y * size + x] = (codewords[i >> 3] >> (7 - UInt8(i & 7))) & 1 == 1
                        i += 1
                    }
                }
            }
            right -= 2
        }
    }

    mutating func applyMask(_ mask: Int) {
        for y in 0..<size {
            for x in 0..<size where !function[y * size + x] {
                let flip: Bool = switch mask {
                case 0: (x + y) % 2 == 0
                case 1: y % 2 == 0
                case 2: x % 3 == 0
                case 3: (x + y) % 3 == 0
                case 4: (x / 3 + y / 2) % 2 == 0
                case 5: x * y % 2 + x * y % 3 == 0
                case 6: (x * y % 2 + x * y % 3) % 2 == 0
                default: ((x + y) % 2 + x * y % 3) % 2 == 0
                }
                if flip { dark[y * size + x].toggle() }
            }
        }
    }

    /// The penalty of ISO/IEC 18004 §7.8.3: runs, 2×2 blocks, finder-like patterns, balance.
    func penalty() -> Int {
        let n = size
        var score = 0
        var line = [UInt8](repeating: 0, count: n)
        // The finder-like pattern 1011101 with four light modules on one side (outside is light).
        let pattern: [UInt8] = [1, 0, 1, 1, 1, 0, 1]
        for horizontal in [true, false] {
            for a in 0..<n {
                for b in 0..<n { line[b] = (horizontal ? dark[a * n + b] : dark[b * n + a]) ? 1 : 0 }
                var run = 1
                for b in 1..<n {
                    if line[b] == line[b - 1] {
                        run += 1
                    } else {
                        if run >= 5 { score += run - 2 }
                        run = 1
                    }
                }
                if run >= 5 { score += run - 2 }
                var b = 0
                while b + 7 <= n {
                    var match = true
                    for k in 0..<7 where line[b + k] != pattern[k] { match = false; break }
                    if match {
                        var lightBefore = true, lightAfter = true
                        for k in max(b - 4, 0)..<b where line[k] == 1 { lightBefore = false; break }
                        for k in (b + 7)..<min(b + 11, n) where line[k] == 1 { lightAfter = false; break }
                        if lightBefore || lightAfter { score += 40 }
                    }
                    b += 1
                }
            }
        }
        var darkCount = 0
        for y in 0..<n {
            for x in 0..<n {
                let c = dark[y * n + x]
                if c { darkCount += 1 }
                if x + 1 < n, y + 1 < n, c == dark[y * n + x + 1], c == dark[(y + 1) * n + x], c == dark[(y + 1) * n + x + 1] { score += 3 }
            }
        }
        score += abs(darkCount * 20 - n * n * 10) / (n * n) * 10
        return score
    }
}
