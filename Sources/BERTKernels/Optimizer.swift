// Optimizer updates on the flat parameter buffer. Shapes: the flat buffer, cut into named tensors (`segments`).
// All norms are sums of squares accumulated in Double over fixed 4096-element blocks and then added in order, so
// an update is bit-identical whatever the thread count.
//
//   LAMB (NVIDIA apex FusedLAMB, csrc/multi_tensor_lamb.cu; You et al. 2019):
//     g ← g · max_norm / max(‖g‖_global, max_norm)
//     m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²
//     u = (m / (1−β1ᵗ)) / (√(v / (1−β2ᵗ)) + ε) + λ w
//     w ← w − lr · r · u,   r = ‖w‖/‖u‖ for tensors with weight decay (every tensor with NVLAMB), else 1
//   LANS (Habana's lans.py; Zheng et al. 2020), per tensor:
//     ĝ = g / (‖g‖ + ε);  m ← β1 m + (1−β1) ĝ;  v ← β2 v + (1−β2) ĝ²
//     r = m̂ / (√v̂ + ε) + λ w;  c = ĝ / (√v̂ + ε) + λ w
//     w ← w − lr β1 (‖w‖/‖r‖) r − lr (1−β1) (‖w‖/‖c‖) c        (trust ratios on every tensor)
//   AdamW (torch.optim.AdamW):
//     w ← w (1 − lr λ);  m, v as above;  w ← w − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε)
//   AdamW without bias correction (Google BERT's AdamWeightDecayOptimizer):
//     w ← w − lr · (m / (√v + ε) + λ w)
// λ is 0 for tensors without weight decay (biases, LayerNorm). Each clips the global norm as its source does:
// apex g·max/‖g‖ when ‖g‖ > max; torch clip_grad_norm_ g·min(1, max/(‖g‖ + 1e-6)); Google's and LANS's
// g·max/max(‖g‖, max).

/// One tensor (or, under ZeRO, the part of one a rank owns) of the flat buffer.
public struct OptimizerSegment: Sendable, Equatable {
    /// Offset in the parameter / gradient buffers.
    public var offset: Int
    public var count: Int
    public var weightDecay: Bool
    /// The tensor this is (part of): per-tensor norms are summed by it, across ranks under ZeRO.
    public var tensor: Int

    public init(offset: Int, count: Int, weightDecay: Bool, tensor: Int) {
        self.offset = offset
        self.count = count
        self.weightDecay = weightDecay
        self.tensor = tensor
    }
}

public enum OptimizerKind: String, Sendable, CaseIterable {
    case lamb, nvlamb, lans, adamw
    /// AdamW without bias correction (Google BERT's fine-tuning optimizer).
    case adamwNoBiasCorrection = "adamw-nobc"
}

public struct OptimizerSettings: Sendable, Equatable {
    public var kind: OptimizerKind
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var epsilon: Float = 1e-6
    public var weightDecay: Float = 0.01
    /// Clip the global gradient norm to this before the moments; nil for no clipping.
    public var maxGradNorm: Float? = 1.0

    public init(kind: OptimizerKind) { self.kind = kind }
}

/// An optimizer's state (first and second moments, in buffers laid out like the parameters from `base`) and its step.
public final class Optimizer {
    public let settings: OptimizerSettings
    public let segments: [OptimizerSegment]
    /// The first parameter offset the moment buffers cover (0 unless sharded).
    public let base: Int
    public let m: UnsafeMutablePointer<Float>
    public let v: UnsafeMutablePointer<Float>
    public let count: Int
    /// The number of tensors in the whole model (the length of per-tensor sum vectors, the same on every rank).
    public let tensorCount: Int

    static let block = 4096

    /// - Parameter tensorCount: tensors in the whole model (default: one more than the segments' largest index, right
    ///   when the segments cover the model; a ZeRO rank holding a slice must pass the model's count).
    public init(settings: OptimizerSettings, segments: [OptimizerSegment], tensorCount: Int? = nil) {
        self.settings = settings
        self.segments = segments
        base = segments.map(\.offset).min() ?? 0
        count = (segments.map { $0.offset + $0.count }.max() ?? base) - base
        self.tensorCount = tensorCount ?? (segments.map(\.tensor).max() ?? -1) + 1
        m = .allocate(capacity: max(1, count))
        v = .allocate(capacity: max(1, count))
        m.initialize(repeating: 0, count: max(1, count))
        v.initialize(repeating: 0, count: max(1, count))
    }

    /// The moments addressed like the parameters (pointer + a tensor's offset), for code that works by layout offsets.
    public var layoutAddressed: (m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>) { (m - base, v - base) }

    deinit {
        m.deallocate()
        v.deallocate()
    }

    /// Sum of squares of `x[0 ..< n]`, block by block (deterministic for any thread count).
    static func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
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

    /// One update at step `t` (1-based) with learning rate `lr`. Gradients are consumed (overwritten).
    /// - Parameter allReduce: sums a vector of partial sums across the ranks that share this update (ZeRO, where each
    ///   rank holds a slice of the tensors); the identity in one process. It receives `[Σg²]` once, then per-tensor
    ///   sums indexed by `OptimizerSegment.tensor` (`[Σw², Σu²]` per tensor for LAMB; `Σg²`, then `[Σw², Σr², Σc²]`
    ///   for LANS).
    /// - Returns: the global gradient norm before clipping. When it is not finite (NaN or Inf in a gradient), nothing
    ///   is updated: the parameters and moments are left as they were, and the caller decides what to do.
    @discardableResult
    public func step(parameters w: UnsafeMutablePointer<Float>, gradients g: UnsafeMutablePointer<Float>,
                     learningRate lr: Float, step t: Int, allReduce reduceAcrossRanks: (([Double]) throws -> [Double])? = nil)
        throws -> Float {
        func allReduce(_ sums: [Double]) throws -> [Double] { try reduceAcrossRanks?(sums) ?? sums }
        let s = settings
        let localSquares = segments.reduce(0.0) { $0 + Optimizer.sumOfSquares(g + $1.offset, $1.count) }
        let gradNorm = Float(try allReduce([localSquares])[0].squareRoot())
        guard gradNorm.isFinite else { return gradNorm }
        let clip: Float = s.maxGradNorm.map { limit in
            switch s.kind {
            case .lamb, .nvlamb: return gradNorm > limit ? limit / gradNorm : 1
            case .adamw: return min(1, limit / (gradNorm + 1e-6))
            case .lans, .adamwNoBiasCorrection: return limit / max(gradNorm, limit)
            }
        } ?? 1
        // The scalar coefficients as each source computes them: apex's CUDA kernel in float (1 − β1 of the float β1),
        // the torch and TensorFlow optimizers in double, rounded once (1 − 0.999 → 0.001f, not 0.00100002).
        let apex = s.kind == .lamb || s.kind == .nvlamb
        let (b1, b2) = (Float(s.beta1), Float(s.beta2))
        let (c1, c2) = apex ? (1 - b1, 1 - b2) : (Float(1 - s.beta1), Float(1 - s.beta2))
        let (bc1, bc2) = apex ? (1 - pow(b1, Float(t)), 1 - pow(b2, Float(t)))
                              : (Float(1 - pow(s.beta1, Double(t))), Float(1 - pow(s.beta2, Double(t))))

        switch s.kind {
        case .lamb, .nvlamb:
            for seg in segments {
                let lambda = seg.weightDecay ? s.weightDecay : 0
                elementwise(seg) { i, mi, vi in
                    let gi = g[i] * clip
                    mi.pointee = b1 * mi.pointee + c1 * gi
                    vi.pointee = b2 * vi.pointee + c2 * gi * gi
                    g[i] = (mi.pointee / bc1) / ((vi.pointee / bc2).squareRoot() + s.epsilon) + lambda * w[i]
                }
            }
            let sums = try allReduce(perTensor(2) { seg in [Optimizer.sumOfSquares(w + seg.offset, seg.count),
                                                            Optimizer.sumOfSquares(g + seg.offset, seg.count)] })
            for seg in segments {
                let wNorm = Float(sums[2 * seg.tensor].squareRoot()), uNorm = Float(sums[2 * seg.tensor + 1].squareRoot())
                let trusted = (seg.weightDecay && s.weightDecay != 0) || s.kind == .nvlamb
                let ratio: Float = trusted && wNorm > 0 && uNorm > 0 ? wNorm / uNorm : 1
                let scale = lr * ratio
                elementwise(seg) { i, _, _ in w[i] -= scale * g[i] }
            }
        case .adamw:
            let stepSize = lr / bc1, bc2Root = bc2.squareRoot()
            for seg in segments {
                let decay = 1 - lr * (seg.weightDecay ? s.weightDecay : 0)
                elementwise(seg) { i, mi, vi in
                    let gi = g[i] * clip
                    w[i] *= decay
                    mi.pointee = b1 * mi.pointee + c1 * gi
                    vi.pointee = b2 * vi.pointee + c2 * gi * gi
                    w[i] -= stepSize * mi.pointee / (vi.pointee.squareRoot() / bc2Root + s.epsilon)
                }
            }
        case .adamwNoBiasCorrection:
            for seg in segments {
                let lambda = seg.weightDecay ? s.weightDecay : 0
                elementwise(seg) { i, mi, vi in
                    let gi = g[i] * clip
                    mi.pointee = b1 * mi.pointee + c1 * gi
                    vi.pointee = b2 * vi.pointee + c2 * gi * gi
                    w[i] -= lr * (mi.pointee / (vi.pointee.squareRoot() + s.epsilon) + lambda * w[i])
                }
            }
        case .lans:
            // Per-tensor gradient norms (of the clipped gradient), then the moments of the normalised gradient.
            let gradSums = try allReduce(perTensor(1) { [Optimizer.sumOfSquares(g + $0.offset, $0.count)] })
            var normalised = [Float](repeating: 0, count: segments.count)
            for (k, seg) in segments.enumerated() {
                let norm = clip * Float(gradSums[seg.tensor].squareRoot())
                let scale: Float = norm > 0 ? clip / (norm + s.epsilon) : clip
                normalised[k] = scale
                elementwise(seg) { i, mi, vi in
                    let gi = g[i] * scale
                    mi.pointee = b1 * mi.pointee + c1 * gi
                    vi.pointee = b2 * vi.pointee + c2 * gi * gi
                }
            }
            // ‖w‖, ‖r‖, ‖c‖ per tensor, with r and c computed on the fly (not stored).
            let scales = Dictionary(uniqueKeysWithValues: zip(segments.map(\.offset), normalised))
            let sums = try allReduce(perTensor(3) { seg -> [Double] in
                let lambda = seg.weightDecay ? s.weightDecay : 0
                var rr = 0.0, cc = 0.0
                lansTerms(seg, scales[seg.offset]!, lambda, bc1, bc2, w, g) { r, c in rr += Double(r * r); cc += Double(c * c) }
                return [Optimizer.sumOfSquares(w + seg.offset, seg.count), rr, cc]
            })
            for (k, seg) in segments.enumerated() {
                let lambda = seg.weightDecay ? s.weightDecay : 0
                let wNorm = Float(sums[3 * seg.tensor].squareRoot()), rNorm = Float(sums[3 * seg.tensor + 1].squareRoot())
                let cNorm = Float(sums[3 * seg.tensor + 2].squareRoot())
                let rScale = lr * b1 * (wNorm > 0 && rNorm > 0 ? wNorm / rNorm : 1)
                let cScale = lr * c1 * (wNorm > 0 && cNorm > 0 ? wNorm / cNorm : 1)
                let scale = normalised[k], m = self.m, v = self.v, base = self.base
                for j in 0..<seg.count {
                    let i = seg.offset + j, vHat = v[i - base] / bc2
                    let denominator = vHat.squareRoot() + s.epsilon
                    let r = (m[i - base] / bc1) / denominator + lambda * w[i]
                    let c = g[i] * scale / denominator + lambda * w[i]
                    w[i] -= rScale * r + cScale * c
                }
            }
        }
        return gradNorm
    }

    /// Per-tensor partial sums, `width` values per tensor, laid out by `OptimizerSegment.tensor` (zeros for the
    /// tensors this optimizer holds no part of), ready to be summed across ranks.
    private func perTensor(_ width: Int, _ sums: (OptimizerSegment) -> [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: width * tensorCount)
        for seg in segments {
            for (j, value) in sums(seg).enumerated() { out[width * seg.tensor + j] += value }
        }
        return out
    }

    /// LANS's two update directions r and c for every element of a segment (serial: the sums must be ordered).
    private func lansTerms(_ seg: OptimizerSegment, _ scale: Float, _ lambda: Float, _ bc1: Float, _ bc2: Float,
                           _ w: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ body: (Float, Float) -> Void) {
        for j in 0..<seg.count {
            let i = seg.offset + j
            let denominator = (v[i - base] / bc2).squareRoot() + settings.epsilon
            body((m[i - base] / bc1) / denominator + lambda * w[i], g[i] * scale / denominator + lambda * w[i])
        }
    }

    /// Runs `body(index, &m, &v)` over a segment, split over threads.
    private func elementwise(_ seg: OptimizerSegment,
                             _ body: (Int, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        let m = self.m, v = self.v, base = self.base
        Parallel.forChunks(seg.count, minimumChunk: 16_384) { _, range in
            for j in range {
                let i = seg.offset + j
                body(i, m + (i - base), v + (i - base))
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
