/// The two table-driven CRC-32s checkpoint containers carry: zip's (IEEE 802.3, reflected polynomial `0xEDB88320`,
/// what `torch.save`'s archive records hold) and CRC-32C (Castagnoli, `0x82F63B78`, what TensorFlow's tensor bundles
/// and LevelDB tables hold, stored "masked").
public struct CRC32: Sendable {
    private let table: [UInt32]

    /// zip / zlib / PNG.
    public static let ieee = CRC32(reflectedPolynomial: 0xEDB8_8320)
    /// iSCSI / LevelDB / TensorFlow.
    public static let castagnoli = CRC32(reflectedPolynomial: 0x82F6_3B78)

    private init(reflectedPolynomial: UInt32) {
        table = (0..<256).map { (byte: UInt32) in
            (0..<8).reduce(byte) { c, _ in c & 1 == 1 ? reflectedPolynomial ^ (c >> 1) : c >> 1 }
        }
    }

    /// The checksum of `bytes`, continuing `crc` (the checksum of the bytes before them; 0 to start).
    public func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        var c = ~crc
        table.withUnsafeBufferPointer { t in
            for b in bytes { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        }
        return ~c
    }

    public func checksum(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { checksum($0) } }

    /// LevelDB's masking of a stored CRC-32C (rotate right 15, add a constant), so that a CRC computed over data that
    /// itself holds CRCs is not degenerate.
    public static func mask(_ crc: UInt32) -> UInt32 { ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8 }
    public static func unmask(_ masked: UInt32) -> UInt32 { let r = masked &- 0xA282_EAD8; return (r >> 17) | (r << 15) }
}
