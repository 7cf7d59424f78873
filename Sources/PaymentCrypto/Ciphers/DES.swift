import PaymentCore

/// Ciphers that payment systems still depend on but that are weak by today's standards:
/// single DES (56-bit) and Triple DES (two- and three-key). Use them for interoperability
/// with EMV, ISO 9564 and ISO 9797, never for new designs.
public enum Legacy {}

extension Legacy {
    /// DES and Triple DES (FIPS 46-3, NIST SP 800-67 TDEA, keying options 1–3).
    ///
    /// An 8-byte key is single DES; 16 bytes is two-key 3DES (K1‖K2, K3 = K1); 24 bytes is
    /// three-key 3DES. Parity bits are ignored. The encryption is table-driven: the eight
    /// S-boxes are merged with permutation P into 64-entry word tables, IP and FP are byte
    /// tables, and in 3DES the FP/IP pairs between stages cancel and are skipped.
    public struct TripleDES: BlockCipher, CustomStringConvertible {
        private let schedule: KeySchedule
        public var blockSize: Int { 8 }
        /// 8, 16 or 24.
        public let keyLength: Int

        public init(key: [UInt8]) throws(CryptoError) {
            guard [8, 16, 24].contains(key.count) else { throw .keyLength("DES/3DES", "8, 16 or 24", key.count) }
            keyLength = key.count
            func part(_ i: Int) -> UInt64 {
                guard 8 * i < key.count else { return 0 }
                var k: UInt64 = 0
                for j in 0..<8 { k = k << 8 | UInt64(key[8 * i + j]) }
                return k
            }
            schedule = KeySchedule(keys: (part(0), part(1), part(2)), keyCount: key.count / 8)
        }

        /// A two-key 3DES key from its halves as big-endian integers (no byte arrays: the
        /// cryptogram hot path derives keys this way).
        public init(k1: UInt64, k2: UInt64) {
            keyLength = 16
            schedule = KeySchedule(keys: (k1, k2, 0), keyCount: 2)
        }

        /// Encrypts a block held as a big-endian 64-bit integer.
        @inlinable @inline(__always)
        public func encrypt(_ block: UInt64) -> UInt64 { _run(block, true) }
        /// Decrypts a block held as a big-endian 64-bit integer.
        @inlinable @inline(__always)
        public func decrypt(_ block: UInt64) -> UInt64 { _run(block, false) }

        @usableFromInline
        func _run(_ block: UInt64, _ encrypt: Bool) -> UInt64 { schedule.run(block, encrypt: encrypt) }

        /// Single DES under K1 only (for a 16- or 24-byte key): the chaining steps of ISO 9797-1
        /// MAC algorithm 3.
        public func encryptUnderFirstKey(_ block: UInt64) -> UInt64 { schedule.runFirstStage(block) }

        public func encrypt(block: [UInt8]) -> [UInt8] {
            precondition(block.count == 8, "DES block must be 8 bytes")
            return encrypt(block.bigEndianUInt64).bigEndianBytes()
        }

        public func decrypt(block: [UInt8]) -> [UInt8] {
            precondition(block.count == 8, "DES block must be 8 bytes")
            return decrypt(block.bigEndianUInt64).bigEndianBytes()
        }

        /// The key is never printed; its check value identifies it.
        public var description: String {
            "TripleDES(\(keyLength * 8)-bit, KCV \(encrypt(0).bigEndianBytes().prefix(3).hexString))"
        }
    }
}

/// The expanded key: per stage, 16 rounds of two 32-bit subkey words laid out for the SP
/// tables. Immutable after init and shared by value semantics of the owning struct.
final class KeySchedule: @unchecked Sendable {
    /// Forward subkeys (32 words per stage) followed by the backward ones.
    private let words: UnsafeMutablePointer<UInt32>
    private var forward: UnsafeMutablePointer<UInt32> { words }
    private var backward: UnsafeMutablePointer<UInt32> { words + 32 * stageCount }
    private let stageCount: Int

    /// EDE stages for one key (single DES), two keys (K1 K2 K1) and three keys.
    private static let stagesByKeyCount: [[(key: Int, decrypt: Bool)]] = [
        [], [(0, false)], [(0, false), (1, true), (0, false)], [(0, false), (1, true), (2, false)],
    ]

    /// - Parameters:
    ///   - keys: K1, K2, K3 as big-endian integers; the first `keyCount` are used, each expanded once.
    init(keys: (UInt64, UInt64, UInt64), keyCount: Int) {
        let stages = KeySchedule.stagesByKeyCount[keyCount]
        stageCount = stages.count
        words = .allocate(capacity: 64 * stages.count)
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 96) { expanded in
            let base = expanded.baseAddress!
            KeySchedule.expand(keys.0, into: base)
            if keyCount > 1 { KeySchedule.expand(keys.1, into: base + 32) }
            if keyCount > 2 { KeySchedule.expand(keys.2, into: base + 64) }
            // Decryption runs the stages in reverse order, each in the opposite direction.
            for (s, stage) in stages.enumerated() {
                KeySchedule.copy(base + 32 * stage.key, reversed: stage.decrypt, to: words + 32 * s)
                KeySchedule.copy(base + 32 * stage.key, reversed: !stage.decrypt, to: words + 32 * (2 * stages.count - 1 - s))
            }
            expanded.update(repeating: 0)
        }
    }

    deinit {
        // Clear the subkeys before giving the memory back.
        words.update(repeating: 0, count: 64 * stageCount)
        words.deallocate()
    }

    /// Copies 16 rounds of subkeys, in reverse round order for decryption.
    private static func copy(_ from: UnsafeMutablePointer<UInt32>, reversed: Bool, to out: UnsafeMutablePointer<UInt32>) {
        for round in 0..<16 {
            let source = reversed ? 15 - round : round
            out[2 * round] = from[2 * source]
            out[2 * round + 1] = from[2 * source + 1]
        }
    }


    /// FIPS 46-3 key schedule: PC-1, the rotations, PC-2; each 48-bit subkey stored as two
    /// words of four 6-bit groups, (S1,S3,S5,S7) and (S2,S4,S6,S8), ready for the SP tables.
    static func expand(_ key: UInt64, into out: UnsafeMutablePointer<UInt32>) {
        let cd = permute(key, DESTables.pc1Table)
        var c = UInt32(truncatingIfNeeded: cd >> 28) & 0x0FFF_FFFF
        var d = UInt32(truncatingIfNeeded: cd) & 0x0FFF_FFFF
        let pc2 = DESTables.pc2Table
        for (round, shift) in DESTables.shifts.enumerated() {
            c = ((c << shift) | (c >> (28 - shift))) & 0x0FFF_FFFF
            d = ((d << shift) | (d >> (28 - shift))) & 0x0FFF_FFFF
            let x = UInt64(c) << 28 | UInt64(d)
            let packed = pc2[Int((x >> 48) & 0xFF)]
                | pc2[256 + Int((x >> 40) & 0xFF)]
                | pc2[512 + Int((x >> 32) & 0xFF)]
                | pc2[768 + Int((x >> 24) & 0xFF)]
                | pc2[1024 + Int((x >> 16) & 0xFF)]
                | pc2[1280 + Int((x >> 8) & 0xFF)]
                | pc2[1536 + Int(x & 0xFF)]
            out[2 * round] = UInt32(truncatingIfNeeded: packed >> 32)
            out[2 * round + 1] = UInt32(truncatingIfNeeded: packed)
        }
    }

    @inline(__always)
    private static func f(_ r: UInt32, _ k: UnsafeMutablePointer<UInt32>, _ sp: UnsafePointer<UInt32>) -> UInt32 {
        let w1 = ((r >> 3) | (r << 29)) ^ k[0]
        let w2 = ((r << 1) | (r >> 31)) ^ k[1]
        return sp[Int((w1 >> 24) & 0x3F)]
            | sp[128 + Int((w1 >> 16) & 0x3F)]
            | sp[256 + Int((w1 >> 8) & 0x3F)]
            | sp[384 + Int(w1 & 0x3F)]
            | sp[64 + Int((w2 >> 24) & 0x3F)]
            | sp[192 + Int((w2 >> 16) & 0x3F)]
            | sp[320 + Int((w2 >> 8) & 0x3F)]
            | sp[448 + Int(w2 & 0x3F)]
    }

    @inline(__always)
    private static func permute(_ x: UInt64, _ table: UnsafePointer<UInt64>) -> UInt64 {
        table[Int(x >> 56)]
            | table[256 + Int((x >> 48) & 0xFF)]
            | table[512 + Int((x >> 40) & 0xFF)]
            | table[768 + Int((x >> 32) & 0xFF)]
            | table[1024 + Int((x >> 24) & 0xFF)]
            | table[1280 + Int((x >> 16) & 0xFF)]
            | table[1536 + Int((x >> 8) & 0xFF)]
            | table[1792 + Int(x & 0xFF)]
    }

    func run(_ block: UInt64, encrypt: Bool) -> UInt64 {
        run(block, schedule: encrypt ? forward : backward, stages: stageCount)
    }

    /// Single DES under the first key (K1) alone: the inner steps of the retail MAC.
    func runFirstStage(_ block: UInt64) -> UInt64 {
        run(block, schedule: forward, stages: 1)
    }

    @inline(__always)
    private func run(_ block: UInt64, schedule: UnsafeMutablePointer<UInt32>, stages: Int) -> UInt64 {
        let sp = DESTables.sp
        var k = schedule
        let x = KeySchedule.permute(block, DESTables.ipTable)
        var l = UInt32(truncatingIfNeeded: x >> 32)
        var r = UInt32(truncatingIfNeeded: x)
        for stage in 0..<stages {
            if stage > 0 { swap(&l, &r) }
            for _ in 0..<8 {
                l ^= KeySchedule.f(r, k, sp)
                r ^= KeySchedule.f(l, k + 2, sp)
                k += 4
            }
        }
        return KeySchedule.permute(UInt64(r) << 32 | UInt64(l), DESTables.fpTable)
    }
}
