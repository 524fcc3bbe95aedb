// Inverted dropout with a counter-based mask. Shapes: n elements.
//   y_i = x_i · m_i / (1 − p),  m_i = [u_i ≥ p],  u_i = unit(word i mod 4 of rng block ⌊i/4⌋)
// The mask is a pure function of (rng, i): the backward regenerates it rather than storing it, and the result
// does not depend on how many threads ran.

public enum Dropout {
    /// `y = dropout(x)`. With `residual`, `y = residual + dropout(x)` (BERT's "dense → dropout → add").
    /// `y` may alias `x` or `residual`. p = 0 is the identity.
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
        let scale: Float = p > 0 ? 1 / (1 - p) : 1
        Parallel.forChunks((count + 3) / 4, minimumChunk: 1024) { _, blocks in
            for block in blocks {
                let keep = p > 0 ? keeps(rng, block: block, probability: p) * scale : SIMD4(repeating: 1)
                let i = block * 4
                for lane in 0..<min(4, count - i) {
                    y[i + lane] = x[i + lane] * keep[lane] + (residual?[i + lane] ?? 0)
                }
            }
        }
    }
}
