// Inverted dropout with a counter-based mask. Shapes: n elements.
//   y_i = x_i · m_i / (1 − p),  m_i = [u_i ≥ p],  u_i = unit(word i mod 4 of rng block ⌊i/4⌋)
// The mask is a pure function of (rng, i): the backward regenerates it rather than storing it, and the result
// does not depend on how many threads ran.

public enum Dropout {
    /// `y = dropout(x)`. With `residual`, `y = residual + dropout(x)` (BERT's "dense → dropout → add").
    /// `y` may alias `x` (not `residual`). p = 0 is the identity.
    public static func forward(_ x: UnsafePointer<Float>, residual: UnsafePointer<Float>? = nil,
                               _ y: UnsafeMutablePointer<Float>, count: Int, probability p: Float, rng: CounterRNG) {
        map(x, residual, y, count, p, rng)
    }

    /// Backward of `forward` with respect to `x`: `dx = dropout(dy)` with the same mask (the residual's gradient is
    /// `dy` itself). `dx` may alias `dy`.
    public static func backward(_ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, count: Int,
                                probability p: Float, rng: CounterRNG) {
        map(dy, nil, dx, count, p, rng)
    }

    /// The keep mask itself (1 kept, 0 dropped), for tests and for kernels that fuse dropout.
    @inline(__always) public static func keeps(_ rng: CounterRNG, block: Int, probability p: Float) -> SIMD4<Float> {
        let w = rng.block(UInt64(block))
        let threshold = UInt32(p * 0x1p24)
        return SIMD4<Float>(repeating: 1).replacing(with: 0, where: (w &>> 8) .< threshold)
    }

    private static func map(_ x: UnsafePointer<Float>, _ residual: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>,
                            _ count: Int, _ p: Float, _ rng: CounterRNG) {
        Parallel.forChunks((count + 3) / 4, minimumChunk: 1024) { _, blocks in
            let range = (blocks.lowerBound * 4)..<min(count, blocks.upperBound * 4)
            if p > 0 {
                apply(x + range.lowerBound, into: y + range.lowerBound, elements: range, probability: p, rng: rng)
            } else if x != UnsafePointer(y) {
                (y + range.lowerBound).update(from: x + range.lowerBound, count: range.count)
            }
            if let residual {
                var i = range.lowerBound
                while i < range.upperBound {
                    let n = min(8, range.upperBound - i)
                    store8(load8(y + i, n) + load8(residual + i, n), y + i, n)
                    i += 8
                }
            }
        }
    }

    /// `dst[i] = src[i] · mᵢ / (1 − p)` for the stream elements `elements` (src and dst point at the first of them,
    /// and may be equal): whole 4-lane blocks where the range is block-aligned, element by element at its ends.
    public static func apply(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, elements: Range<Int>,
                             probability p: Float, rng: CounterRNG) {
        let scale = 1 / (1 - p)
        var g = elements.lowerBound
        func scalar(upTo end: Int) {
            while g < end {
                dst[g - elements.lowerBound] = src[g - elements.lowerBound] * keeps(rng, block: g >> 2, probability: p)[g & 3] * scale
                g += 1
            }
        }
        scalar(upTo: min(elements.upperBound, (g + 3) & ~3))
        while g + 4 <= elements.upperBound {
            let o = g - elements.lowerBound
            let v = UnsafeRawPointer(src + o).loadUnaligned(as: SIMD4<Float>.self) * (keeps(rng, block: g >> 2, probability: p) * scale)
            UnsafeMutableRawPointer(dst + o).storeBytes(of: v, as: SIMD4<Float>.self)
            g += 4
        }
        scalar(upTo: elements.upperBound)
    }
}
