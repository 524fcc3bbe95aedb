/// The float coefficients of one update, computed once on the host by `Optimizer.step`'s recipe and handed to every
/// elementwise pass (see Optimizer.swift for where each comes from).
public struct MomentCoefficients: Sendable, Equatable {
    public var b1: Float, b2: Float
    /// 1 − β1 and 1 − β2, rounded as the optimizer's source rounds them.
    public var c1: Float, c2: Float
    /// The bias corrections 1 − β1ᵗ and 1 − β2ᵗ (unused by AdamW without bias correction).
    public var bc1: Float, bc2: Float
    public var epsilon: Float
}

/// Which of the two flat buffers a sum of squares reads.
public enum OptimizerOperand: Sendable { case parameters, gradients }

/// The memory-bound half of an optimizer step: the elementwise passes over the parameters, gradients and moments of a
/// fixed list of segments, and their per-segment sums of squares. `Optimizer.step` keeps the scalar half (clipping,
/// bias corrections, trust ratios, the cross-rank sums) and calls these, so the recipe is written once whether the
/// buffers are host memory (`HostOptimizerPasses`) or a device's. Per-segment arrays are in the segments' order; λ is
/// the settings' weight decay on segments with `weightDecay`, else 0.
public protocol OptimizerPasses {
    /// Σx² over each segment of `operand` (a synchronising crossing of one Double per segment on a device).
    func sumsOfSquares(_ operand: OptimizerOperand) -> [Double]
    /// LAMB stage 1: g ← clip·g; m, v updated; g ← (m / bc1) / (√(v / bc2) + ε) + λ w (the direction over the gradient).
    func lambMoments(_ k: MomentCoefficients, clip: Float)
    /// LAMB stage 2: w ← w − scales[segment] · g.
    func scaledUpdate(scales: [Float])
    /// torch.optim.AdamW: w ← w (1 − lr λ); m, v of clip·g; w ← w − stepSize · m / (√v / bc2Root + ε).
    func adamw(_ k: MomentCoefficients, clip: Float, learningRate: Float, stepSize: Float, bc2Root: Float)
    /// Google's AdamWeightDecayOptimizer: m, v of clip·g; w ← w − lr (m / (√v + ε) + λ w).
    func adamwNoBiasCorrection(_ k: MomentCoefficients, clip: Float, learningRate: Float)
    /// LANS: m, v of ĝ = g · scales[segment].
    func lansMoments(_ k: MomentCoefficients, scales: [Float])
    /// LANS: (Σr², Σc²) per segment, r = m̂ / (√v̂ + ε) + λ w and c = ĝ / (√v̂ + ε) + λ w.
    func lansDirectionSums(_ k: MomentCoefficients, scales: [Float]) -> [(r: Double, c: Double)]
    /// LANS: w ← w − rScales[segment] · r − cScales[segment] · c.
    func lansUpdate(_ k: MomentCoefficients, scales: [Float], rScales: [Float], cScales: [Float])
}

/// The passes on host memory: the CPU's loops, split over threads, with norms summed in Double over fixed 4096-element
/// blocks and then added in order, so an update is bit-identical whatever the thread count.
public struct HostOptimizerPasses: OptimizerPasses {
    public let segments: [OptimizerSegment]
    public let weightDecay: Float
    public let w: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>
    /// The moments, addressed from `base` (the first parameter offset they cover).
    public let m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
    public let base: Int

    public init(segments: [OptimizerSegment], weightDecay: Float, parameters w: UnsafeMutablePointer<Float>,
                gradients g: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                base: Int) {
        (self.segments, self.weightDecay, self.w, self.g, self.m, self.v, self.base) = (segments, weightDecay, w, g, m, v, base)
    }

    static let block = 4096

    /// Sum of squares of `x[0 ..< n]`, block by block (deterministic for any thread count).
    public static func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
        let blocks = (n + block - 1) / block
        var partial = [Double](repeating: 0, count: blocks)
        partial.withUnsafeMutableBufferPointer { partial in
            Parallel.forChunks(blocks, minimumChunk: 4) { _, range in
                for b in range {
                    var acc = Vec8(), i = b * block
                    let end = min(n, i + block)
                    var total = 0.0
                    while i < end {
                        let k = min(8, end - i), x8 = load8(x + i, k)
                        acc += x8 * x8
                        i += 8
                        if i & 255 == 0 { total += Double(hsum(acc)); acc = Vec8() }   // keep Float partials short
                    }
                    partial[b] = total + Double(hsum(acc))
                }
            }
        }
        return partial.reduce(0, +)
    }

    /// Adam's moments of `n` (≤ 8) elements: m ← β1 m + (1−β1) g, v ← β2 v + (1−β2) g²; returns the new m and v.
    @inline(__always) private static func updateMoments(_ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>,
                                                        _ n: Int, _ g: Vec8, _ k: MomentCoefficients) -> (m: Vec8, v: Vec8) {
        let m1: Vec8 = k.b1 * load8(m, n) + k.c1 * g
        let v1: Vec8 = k.b2 * load8(v, n) + k.c2 * g * g
        store8(m1, m, n)
        store8(v1, v, n)
        return (m1, v1)
    }

    private func decay(of seg: OptimizerSegment) -> Float { seg.weightDecay ? weightDecay : 0 }

    public func sumsOfSquares(_ operand: OptimizerOperand) -> [Double] {
        let x = operand == .parameters ? w : g
        return segments.map { Self.sumOfSquares(x + $0.offset, $0.count) }
    }

    public func lambMoments(_ k: MomentCoefficients, clip: Float) {
        let (w, g) = (self.w, self.g)
        for seg in segments {
            let lambda = decay(of: seg)
            elementwise(seg) { i, n, mi, vi in
                let (m1, v1) = Self.updateMoments(mi, vi, n, load8(g + i, n) * clip, k)
                let direction: Vec8 = (m1 / k.bc1) / ((v1 / k.bc2).squareRoot() + k.epsilon) + lambda * load8(w + i, n)
                store8(direction, g + i, n)
            }
        }
    }

    public func scaledUpdate(scales: [Float]) {
        let (w, g) = (self.w, self.g)
        for (seg, scale) in zip(segments, scales) {
            elementwise(seg) { i, n, _, _ in store8(load8(w + i, n) - scale * load8(g + i, n), w + i, n) }
        }
    }

    public func adamw(_ k: MomentCoefficients, clip: Float, learningRate lr: Float, stepSize: Float, bc2Root: Float) {
        let (w, g) = (self.w, self.g)
        for seg in segments {
            let shrink = 1 - lr * decay(of: seg)
            elementwise(seg) { i, n, mi, vi in
                let shrunk = load8(w + i, n) * shrink
                let (m1, v1) = Self.updateMoments(mi, vi, n, load8(g + i, n) * clip, k)
                store8(shrunk - stepSize * m1 / (v1.squareRoot() / bc2Root + k.epsilon), w + i, n)
            }
        }
    }

    public func adamwNoBiasCorrection(_ k: MomentCoefficients, clip: Float, learningRate lr: Float) {
        let (w, g) = (self.w, self.g)
        for seg in segments {
            let lambda = decay(of: seg)
            elementwise(seg) { i, n, mi, vi in
                let (m1, v1) = Self.updateMoments(mi, vi, n, load8(g + i, n) * clip, k)
                let wi = load8(w + i, n)
                store8(wi - lr * (m1 / (v1.squareRoot() + k.epsilon) + lambda * wi), w + i, n)
            }
        }
    }

    public func lansMoments(_ k: MomentCoefficients, scales: [Float]) {
        let g = self.g
        for (seg, scale) in zip(segments, scales) {
            elementwise(seg) { i, n, mi, vi in
                _ = Self.updateMoments(mi, vi, n, load8(g + i, n) * scale, k)
            }
        }
    }

    /// Serial: the sums must be ordered.
    public func lansDirectionSums(_ k: MomentCoefficients, scales: [Float]) -> [(r: Double, c: Double)] {
        zip(segments, scales).map { seg, scale in
            var rr = 0.0, cc = 0.0
            lansDirections(seg, scale, k) { _, r, c in rr += Double(r * r); cc += Double(c * c) }
            return (rr, cc)
        }
    }

    public func lansUpdate(_ k: MomentCoefficients, scales: [Float], rScales: [Float], cScales: [Float]) {
        let w = self.w
        for (j, seg) in segments.enumerated() {
            let (rScale, cScale) = (rScales[j], cScales[j])
            lansDirections(seg, scales[j], k) { i, r, c in w[i] -= rScale * r + cScale * c }
        }
    }

    /// `body(index, r, c)` with LANS's two update directions for every element of a segment, in order.
    private func lansDirections(_ seg: OptimizerSegment, _ scale: Float, _ k: MomentCoefficients,
                                _ body: (Int, Float, Float) -> Void) {
        let lambda = decay(of: seg)
        for j in 0..<seg.count {
            let i = seg.offset + j
            let denominator = (v[i - base] / k.bc2).squareRoot() + k.epsilon
            body(i, (m[i - base] / k.bc1) / denominator + lambda * w[i], g[i] * scale / denominator + lambda * w[i])
        }
    }

    /// Runs `body(index, n, m, v)` over a segment 8 elements at a time (`n` of them, fewer only at its end; `m` and `v`
    /// point at the index's moments), split over threads. Each lane's arithmetic is its own element's, so the result
    /// has the bits of an element-by-element loop.
    private func elementwise(_ seg: OptimizerSegment,
                             _ body: (Int, Int, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        let m = self.m, v = self.v, base = self.base
        Parallel.forChunks((seg.count + 7) / 8, minimumChunk: 2_048) { _, blocks in
            for block in blocks {
                let i = seg.offset + 8 * block
                body(i, min(8, seg.count - 8 * block), m + (i - base), v + (i - base))
            }
        }
    }
}
