/// The element types TensorFlow bundles and torch storages hold, each read as a Float (integers converted, which is
/// exact for ids and counters below 2²⁴).
enum StoredScalar: Sendable {
    case float32, float64, float16, bfloat16, int32, int64

    var size: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16: return 2
        }
    }

    var isFloatingPoint: Bool { self != .int32 && self != .int64 }

    /// Element `i` of the little-endian array at `p`.
    @inline(__always) func float(_ p: UnsafeRawPointer, _ i: Int) -> Float {
        switch self {
        case .float32: return p.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
        case .float64: return Float(p.loadUnaligned(fromByteOffset: 8 * i, as: Double.self))
        case .float16: return Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
        case .bfloat16: return Float(bitPattern: UInt32(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
        case .int32: return Float(p.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
        case .int64: return Float(p.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))
        }
    }
}
