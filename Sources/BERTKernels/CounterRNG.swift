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

    /// Blocks `first ..< first + 8` at once, one block per SIMD lane: `words.j[k]` is word j of block `first + k`.
    /// Equal to eight `block(_:)` calls (the dropout kernels draw their masks this way). `first` is a multiple of 8.
    @inline(__always) public func blocks8(_ first: UInt64)
        -> (SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>) {
        var c0 = SIMD8<UInt32>(repeating: UInt32(truncatingIfNeeded: first)) &+ SIMD8<UInt32>(0, 1, 2, 3, 4, 5, 6, 7)
        var c1 = SIMD8<UInt32>(repeating: UInt32(truncatingIfNeeded: first >> 32))
        var c2 = SIMD8<UInt32>(repeating: UInt32(truncatingIfNeeded: stream))
        var c3 = SIMD8<UInt32>(repeating: UInt32(truncatingIfNeeded: stream >> 32))
        var k0 = UInt32(truncatingIfNeeded: seed), k1 = UInt32(truncatingIfNeeded: seed >> 32)
        for _ in 0..<10 {
            let (hi0, lo0) = CounterRNG.multiplyFullWidth(c0, 0xD251_1F53)
            let (hi1, lo1) = CounterRNG.multiplyFullWidth(c2, 0xCD9E_8D57)
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
            k0 &+= 0x9E37_79B9
            k1 &+= 0xBB67_AE85
        }
        return (c0, c1, c2, c3)
    }

    /// The 64-bit products `a · m` per lane as (high, low) words, from 16-bit halves so that it stays in 32-bit vector
    /// lanes (AVX2 has no 8-lane 32×32→64 multiply; widening to 64-bit lanes does not vectorise in Swift).
    @inline(__always) static func multiplyFullWidth(_ a: SIMD8<UInt32>, _ m: UInt32) -> (SIMD8<UInt32>, SIMD8<UInt32>) {
        let al = a & 0xFFFF, ah = a &>> 16, ml = m & 0xFFFF, mh = m >> 16
        let ll = al &* ml, lh = al &* mh, hl = ah &* ml, hh = ah &* mh
        let middle = (ll &>> 16) &+ (lh & 0xFFFF) &+ (hl & 0xFFFF)
        return (hh &+ (lh &>> 16) &+ (hl &>> 16) &+ (middle &>> 16), a &* m)
    }

    /// A uniform Float in [0, 1) from the top 24 bits of a word.
    @inline(__always) public static func unit(_ word: UInt32) -> Float { Float(word >> 8) * 0x1p-24 }

    /// Standard normal sample `index` (Box–Muller: block ⌊index/2⌋'s first two words give the pair, its cosine
    /// branch for even indices and sine branch for odd ones).
    public func normal(_ index: UInt64) -> Float {
        let w = block(index >> 1)
        let radius = (-2 * log(max(CounterRNG.unit(w[0]), 0x1p-24))).squareRoot()
        let angle = 2 * Float.pi * CounterRNG.unit(w[1])
        return radius * (index & 1 == 0 ? cos(angle) : sin(angle))
    }

    /// Fills `out[0 ..< count]` with normal samples `0 ..< count` times `scale`, split over the kernels' threads.
    public func fillNormal(_ out: UnsafeMutablePointer<Float>, count: Int, scale: Float) {
        Parallel.forChunks((count + 1) / 2, minimumChunk: 4096) { _, pairs in
            for pair in pairs {
                let w = block(UInt64(pair))
                let radius = scale * (-2 * log(max(CounterRNG.unit(w[0]), 0x1p-24))).squareRoot()
                let angle = 2 * Float.pi * CounterRNG.unit(w[1])
                out[2 * pair] = radius * cos(angle)
                if 2 * pair + 1 < count { out[2 * pair + 1] = radius * sin(angle) }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
