/// Tables for the table-driven DES of FIPS 46-3, computed once from the standard's
/// permutations and S-boxes (rather than typed in as opaque constants).
///
/// Bits are numbered as in FIPS 46-3: bit 1 is the most significant bit of the block.
enum DESTables {
    /// Initial permutation IP: output bit i comes from input bit ip[i].
    static let ip: [Int] = [
        58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
        62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
        57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3,
        61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
    ]
    /// Permutation P applied to the S-box outputs.
    static let p: [Int] = [
        16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10,
        2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
    ]
    /// Permuted choice 1 (key schedule): 56 of the 64 key bits.
    static let pc1: [Int] = [
        57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18,
        10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
        63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22,
        14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
    ]
    /// Permuted choice 2: 48 of the 56 bits of C‖D.
    static let pc2: [Int] = [
        14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10,
        23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
        41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48,
        44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
    ]
    /// Left shifts of C and D per round.
    static let shifts: [Int] = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1]
    /// S-boxes S1…S8, each 4 rows of 16.
    static let sboxes: [[UInt8]] = [
        [14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7,
         0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8,
         4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0,
         15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13],
        [15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10,
         3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5,
         0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15,
         13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9],
        [10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8,
         13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1,
         13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7,
         1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12],
        [7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15,
         13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9,
         10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4,
         3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14],
        [2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9,
         14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6,
         4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14,
         11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3],
        [12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11,
         10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8,
         9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6,
         4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13],
        [4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1,
         13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6,
         1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2,
         6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12],
        [13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7,
         1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2,
         7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8,
         2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11],
    ]

    /// Combined S-box and P tables: `sp[64 * i + v]` is P applied to S(i+1)'s output for the
    /// 6-bit input `v`, placed in its nibble. Eight tables of 64 words.
    nonisolated(unsafe) static let sp: UnsafePointer<UInt32> = {
        let table = UnsafeMutablePointer<UInt32>.allocate(capacity: 512)
        for box in 0..<8 {
            for v in 0..<64 {
                let row = ((v >> 4) & 2) | (v & 1)
                let column = (v >> 1) & 0xF
                let s = UInt32(sboxes[box][row * 16 + column])
                let placed = s << (28 - 4 * box)
                var out: UInt32 = 0
                for (i, from) in p.enumerated() where placed & (1 << (32 - from)) != 0 {
                    out |= 1 << (31 - i)
                }
                table[64 * box + v] = out
            }
        }
        return UnsafePointer(table)
    }()

    /// Byte-indexed tables for a bit permutation of an `inputBytes`-long big-endian value:
    /// `table[256 * byteIndex + byte]` is that input byte's contribution to the output.
    /// `destinations(k)` gives the output bit positions (0 = least significant) fed by input
    /// bit k, counting k from 0 at the most significant input bit.
    static func byteTable(inputBytes: Int, destinations: (Int) -> [Int]) -> UnsafePointer<UInt64> {
        let table = UnsafeMutablePointer<UInt64>.allocate(capacity: inputBytes * 256)
        for byteIndex in 0..<inputBytes {
            for byte in 0..<256 {
                var out: UInt64 = 0
                for bit in 0..<8 where (byte >> (7 - bit)) & 1 == 1 {
                    for position in destinations(8 * byteIndex + bit) { out |= 1 << position }
                }
                table[256 * byteIndex + byte] = out
            }
        }
        return UnsafePointer(table)
    }

    /// Output positions fed by input bit k under a FIPS-style table (`perm[i]` = 1-based input
    /// bit of output bit i, outputs counted from the most significant of `outputBits`).
    static func destinations(_ perm: [Int], outputBits: Int) -> (Int) -> [Int] {
        var map = [[Int]](repeating: [], count: 64)
        for (i, from) in perm.enumerated() { map[from - 1].append(outputBits - 1 - i) }
        return { map[$0] }
    }

    nonisolated(unsafe) static let ipTable: UnsafePointer<UInt64> =
        byteTable(inputBytes: 8, destinations: destinations(ip, outputBits: 64))
    nonisolated(unsafe) static let fpTable: UnsafePointer<UInt64> = {
        var inverse = [Int](repeating: 0, count: 64)
        for (i, from) in ip.enumerated() { inverse[from - 1] = i + 1 }
        return byteTable(inputBytes: 8, destinations: destinations(inverse, outputBits: 64))
    }()
    /// PC-1 from the 64-bit key to the 56-bit C‖D.
    nonisolated(unsafe) static let pc1Table: UnsafePointer<UInt64> =
        byteTable(inputBytes: 8, destinations: destinations(pc1, outputBits: 56))
    /// PC-2 from the 56-bit C‖D straight to the two packed subkey words: the 6-bit groups for
    /// S1, S3, S5, S7 in the high word's bytes 3…0 and S2, S4, S6, S8 in the low word's.
    nonisolated(unsafe) static let pc2Table: UnsafePointer<UInt64> = {
        var map = [[Int]](repeating: [], count: 56)
        for (i, from) in pc2.enumerated() {
            let group = i / 6, bitInGroup = i % 6
            let word = group % 2 == 0 ? 32 : 0
            let base = word + 24 - 8 * (group / 2)
            map[from - 1].append(base + 5 - bitInGroup)
        }
        return byteTable(inputBytes: 7, destinations: { map[$0] })
    }()
}
