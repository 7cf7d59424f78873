/// CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR):
/// the checksum of EMV merchant-presented QR codes (ID 63). Check value: "123456789" → 29B1.
public enum CRC16 {
    private static let table: [UInt16] = (0..<256).map { byte in
        var crc = UInt16(byte) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }

    public static func ccittFalse(_ bytes: some Sequence<UInt8>, initial: UInt16 = 0xFFFF) -> UInt16 {
        var crc = initial
        for b in bytes { crc = (crc << 8) ^ table[Int((crc >> 8) ^ UInt16(b))] }
        return crc
    }
}
