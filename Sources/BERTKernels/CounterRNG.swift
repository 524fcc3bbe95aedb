/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a counter-based
/// generator. Output block `i` of stream `s` is a pure function of (seed, s, i), so
///  - a kernel split over any number of threads draws exactly the same numbers (each element asks for its own block),
///  - dropout's backward regenerates the forward's mask instead of storing it,
///  - a resumed run continues exactly, given only the seed and the step.
public struct CounterRNG: Sendable, Equatable {
    public let seed: UInt64
    /// Identifies the stream: callers mix the step and the call site in here.
    public let stream: UInt64

    public init(seed: UInt64, stream: UInt64) {
        self.seed = seed
        self.stream = stream
    }

    /// Four 32-bit random words for block `index`.
    @inline(__always) public func block(_ index: UInt64) -> SIMD4<UInt32> {
        var c = SIMD4<UInt32>(UInt32(truncatingIfNeeded: index), UInt32(truncatingIfNeeded: index >> 32),
                              UInt32(truncatingIfNeeded: stream), UInt32(truncatingIfNeeded: stream >> 32))
        var k0 = UInt32(truncatingIfNeeded: seed), k1 = UInt32(truncatingIfNeeded: seed >> 32)
        for _ in 0..<10 {
            let p0 = UInt64(0xD251_1F53) &* UInt64(c[0])
            let p1 = UInt64(0xCD9E_8D57) &* UInt64(c[2])
            c = SIMD4(UInt32(truncatingIfNeeded: p1 >> 32) ^ c[1] ^ k0, UInt32(truncatingIfNeeded: p1),
                      UInt32(truncatingIfNeeded: p0 >> 32) ^ c[3] ^ k1, UInt32(truncatingIfNeeded: p0))
            k0 &+= 0x9E37_79B9
            k1 &+= 0xBB67_AE85
        }
        return c
    }

    /// A uniform Float in [0, 1) from the top 24 bits of a word.
    @inline(__always) public static func unit(_ word: UInt32) -> Float { Float(word >> 8) * 0x1p-24 }

    /// A standard normal sample from words `2i` and `2i + 1` (Box–Muller), used for weight initialisation.
    public func normal(_ index: UInt64) -> Float {
        let w = block(index)
        let u1 = max(CounterRNG.unit(w[0]), 0x1p-24)
        let u2 = CounterRNG.unit(w[1])
        return (-2 * log(u1)).squareRoot() * cos(2 * Float.pi * u2)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
