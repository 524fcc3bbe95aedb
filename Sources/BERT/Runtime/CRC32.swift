/// The two table-driven CRC-32s checkpoint containers carry: zip's (IEEE 802.3, reflected polynomial `0xEDB88320`,
/// what `torch.save`'s archive records hold) and CRC-32C (Castagnoli, `0x82F63B78`, what TensorFlow's tensor bundles
/// and LevelDB tables hold, stored "masked").
public struct CRC32: Sendable {
    /// Eight 256-entry tables, flat: table k maps a byte to its CRC contribution k bytes further on, so the loop folds
    /// eight bytes per step ("slicing-by-8"; a gigabyte checkpoint is checked in about a second instead of five).
    private let tables: [UInt32]

    /// zip / zlib / PNG.
    public static let ieee = CRC32(reflectedPolynomial: 0xEDB8_8320)
    /// iSCSI / LevelDB / TensorFlow.
    public static let castagnoli = CRC32(reflectedPolynomial: 0x82F6_3B78)

    private init(reflectedPolynomial: UInt32) {
        var t = (0..<256).map { (byte: UInt32) in
            (0..<8).reduce(byte) { c, _ in c & 1 == 1 ? reflectedPolynomial ^ (c >> 1) : c >> 1 }
        }
        for k in 1..<8 { t += (0..<256).map { t[(k - 1) * 256 + $0] >> 8 ^ t[Int(t[(k - 1) * 256 + $0] & 0xFF)] } }
        tables = t
    }

    /// The checksum of `bytes`, continuing `crc` (the checksum of the bytes before them; 0 to start).
    public func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        var c = ~crc
        tables.withUnsafeBufferPointer { t in
            var i = 0
            while i + 8 <= bytes.count {
                let w = bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self).littleEndian ^ UInt64(c)
                c = t[7 * 256 + Int(w & 0xFF)] ^ t[6 * 256 + Int(w >> 8 & 0xFF)] ^ t[5 * 256 + Int(w >> 16 & 0xFF)]
                    ^ t[4 * 256 + Int(w >> 24 & 0xFF)] ^ t[3 * 256 + Int(w >> 32 & 0xFF)] ^ t[2 * 256 + Int(w >> 40 & 0xFF)]
                    ^ t[256 + Int(w >> 48 & 0xFF)] ^ t[Int(w >> 56)]
                i += 8
            }
            for b in bytes[i...] { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        }
        return ~c
    }

    public func checksum(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { checksum($0) } }

    /// LevelDB's masking of a stored CRC-32C (rotate right 15, add a constant), so that a CRC computed over data that
    /// itself holds CRCs is not degenerate.
    public static func mask(_ crc: UInt32) -> UInt32 { ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8 }
    public static func unmask(_ masked: UInt32) -> UInt32 { let r = masked &- 0xA282_EAD8; return (r >> 17) | (r << 15) }
}
