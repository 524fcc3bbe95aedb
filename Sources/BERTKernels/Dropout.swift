import CAVX512Kernels

// Inverted dropout with a counter-based mask. Shapes: n elements.
//   y_i = x_i · m_i / (1 − p),  m_i = [u_i ≥ p],  u_i = unit(word ⌊r/8⌋ of rng block 8·⌊i/32⌋ + r mod 8), r = i mod 32
// i.e. each run of 32 elements draws one word from each of 8 consecutive blocks, so eight adjacent elements come
// from one 8-lane Philox evaluation. The mask is a pure function of (rng, i): the backward regenerates it rather than
// storing it, and the result does not depend on how many threads ran.
// A tensor cut from a longer one (a batch trimmed to its longest real sequence) keeps the bits it had: its layout
// (`DropoutLayout`) places element i at stream element ι(i) of the untrimmed tensor, and the mask is m at ι(i).

/// Where the elements of a `[T, S, W]` tensor sit in their dropout stream, laid out as `[T, streamS, streamW]` (the
/// untrimmed sizes): element (t, s, w) draws stream element `(t·streamS + s)·streamW + w`. Per-token sites are
/// `[B, S, H]` over `[B, S_full, H]`, attention probabilities `[B·A, S, S]` over `[B·A, S_full, S_full]`.
public struct DropoutLayout: Sendable, Equatable {
    public var S: Int, W: Int, streamS: Int, streamW: Int

    public init(S: Int, W: Int, streamS: Int, streamW: Int) {
        precondition(S <= streamS && W <= streamW, "a trimmed tensor lies inside its stream's layout")
        (self.S, self.W, self.streamS, self.streamW) = (S, W, streamS, streamW)
    }

    /// Every element at its own index (an untrimmed tensor of `count` elements).
    public static func flat(_ count: Int) -> DropoutLayout { DropoutLayout(S: 1, W: max(count, 1), streamS: 1, streamW: max(count, 1)) }

    /// True when element i is stream element i.
    public var isIdentity: Bool { S == streamS && W == streamW }

    /// The stream element of buffer element `i`.
    @inline(__always) public func streamIndex(_ i: Int) -> Int {
        let w = i % W, r = i / W
        return ((r / S) * streamS + r % S) * streamW + w
    }

    /// The stream elements of the contiguous buffer elements `i..<end`, cut at the first row end where the two differ.
    @inline(__always) func run(from i: Int, to end: Int) -> (stream: Int, count: Int) {
        isIdentity ? (i, end - i) : (streamIndex(i), min(end, (i / W + 1) * W) - i)
    }
}

public enum Dropout {
    /// `y = dropout(x)`. With `residual`, `y = residual + dropout(x)` (BERT's "dense → dropout → add").
    /// `y` may alias `x` (not `residual`). p = 0 is the identity. `layout` nil is `.flat(count)`.
    public static func forward(_ x: UnsafePointer<Float>, residual: UnsafePointer<Float>? = nil,
                               _ y: UnsafeMutablePointer<Float>, count: Int, layout: DropoutLayout? = nil,
                               probability p: Float, rng: CounterRNG) {
        map(x, residual, y, count, layout ?? .flat(count), p, rng)
    }

    /// Backward of `forward` with respect to `x`: `dx = dropout(dy)` with the same mask (the residual's gradient is
    /// `dy` itself). `dx` may alias `dy`.
    public static func backward(_ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, count: Int,
                                layout: DropoutLayout? = nil, probability p: Float, rng: CounterRNG) {
        map(dy, nil, dx, count, layout ?? .flat(count), p, rng)
    }

    /// Element i's keep factor (1 kept, 0 dropped), by the definition above.
    @inline(__always) public static func keep(_ rng: CounterRNG, element i: Int, probability p: Float) -> Float {
        let r = i & 31
        let word = rng.block(UInt64((i >> 5) * 8 + (r & 7)))[r >> 3]
        return word >> 8 < UInt32(p * 0x1p24) ? 0 : 1
    }

    private static func map(_ x: UnsafePointer<Float>, _ residual: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>,
                            _ count: Int, _ layout: DropoutLayout, _ p: Float, _ rng: CounterRNG) {
        Parallel.forChunks((count + 31) / 32, minimumChunk: 128) { _, runs in
            let range = (runs.lowerBound * 32)..<min(count, runs.upperBound * 32)
            if p > 0 {
                var i = range.lowerBound
                while i < range.upperBound {
                    let (first, n) = layout.run(from: i, to: range.upperBound)
                    apply(x + i, into: y + i, elements: first..<(first + n), probability: p, rng: rng)
                    i += n
                }
            } else if residual == nil, x != UnsafePointer(y) {
                (y + range.lowerBound).update(from: x + range.lowerBound, count: range.count)
            }
            if let residual {
                // Without dropout, x is added straight from its own buffer (one pass, no copy).
                let source = p > 0 ? UnsafePointer(y) : x
                var i = range.lowerBound
                while i < range.upperBound {
                    let n = min(8, range.upperBound - i)
                    store8(load8(source + i, n) + load8(residual + i, n), y + i, n)
                    i += 8
                }
            }
        }
    }

    /// `dst[i] = src[i] · mᵢ / (1 − p)` for the stream elements `elements` (src and dst point at the first of them,
    /// and may be equal): whole runs of 32 where the range is aligned to them, element by element at its ends. The
    /// runs go 16 Philox blocks at a time on AVX-512 where the CPU has it (`avx512` false: the 8-lane kernel), with
    /// the same bits.
    public static func apply(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, elements: Range<Int>,
                             probability p: Float, rng: CounterRNG, avx512: Bool = AVX512.available) {
        let scale = 1 / (1 - p), threshold = SIMD8<UInt32>(repeating: UInt32(p * 0x1p24))
        let kept = Vec8(repeating: scale)
        var g = elements.lowerBound
        func scalar(upTo end: Int) {
            while g < end {
                let o = g - elements.lowerBound
                dst[o] = src[o] * keep(rng, element: g, probability: p) * scale
                g += 1
            }
        }
        scalar(upTo: min(elements.upperBound, (g + 31) & ~31))
        if avx512, g + 32 <= elements.upperBound {
            let o = g - elements.lowerBound, runs = (elements.upperBound - g) & ~31
            ak_dropout_runs(src + o, dst + o, g, runs, p, rng.seed, rng.stream)
            g += runs
        }
        while g + 32 <= elements.upperBound {
            let words = rng.blocks8(UInt64(g >> 5) * 8)
            let o = g - elements.lowerBound
            func lanes(_ j: Int, _ word: SIMD8<UInt32>) {
                let factor = kept.replacing(with: 0, where: (word &>> 8) .< threshold)
                store8(load8(src + o + 8 * j) * factor, dst + o + 8 * j)
            }
            lanes(0, words.0)
            lanes(1, words.1)
            lanes(2, words.2)
            lanes(3, words.3)
            g += 32
        }
        scalar(upTo: elements.upperBound)
    }
}
