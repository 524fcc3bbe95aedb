// Optimizer updates on the flat parameter buffer. Shapes: the flat buffer, cut into named tensors (`segments`).
// The recipe (`OptimizerRecipe`) is the scalar logic, written once; the elementwise passes and per-segment sums it
// calls are `OptimizerPasses` on host memory (OptimizerPasses.swift) or on a backend's device memory.
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

/// The scalar half of an optimizer step, written once for every place the buffers live: the global norm and its
/// clipping factor, the bias corrections, the per-tensor sums across ranks and the trust ratios, between the passes of
/// an `OptimizerPasses` that do the elementwise work.
public struct OptimizerRecipe: Sendable {
    public let settings: OptimizerSettings
    public let segments: [OptimizerSegment]
    /// The number of tensors in the whole model (the length of per-tensor sum vectors, the same on every rank).
    public let tensorCount: Int

    /// - Parameter tensorCount: tensors in the whole model (default: one more than the segments' largest index, right
    ///   when the segments cover the model; a ZeRO rank holding a slice must pass the model's count).
    public init(settings: OptimizerSettings, segments: [OptimizerSegment], tensorCount: Int? = nil) {
        self.settings = settings
        self.segments = segments
        self.tensorCount = tensorCount ?? (segments.map(\.tensor).max() ?? -1) + 1
    }

    /// The first parameter offset the segments cover and the length from there (the extent of the moments).
    public var extent: (base: Int, count: Int) {
        let base = segments.map(\.offset).min() ?? 0
        return (base, (segments.map { $0.offset + $0.count }.max() ?? base) - base)
    }

    /// One update at step `t` (1-based) with learning rate `lr` through `passes`. Gradients are consumed (overwritten).
    /// - Parameter allReduce: sums a vector of partial sums across the ranks that share this update (ZeRO, where each
    ///   rank holds a slice of the tensors); the identity in one process. It receives `[Σg²]` once, then per-tensor
    ///   sums indexed by `OptimizerSegment.tensor` (`[Σw², Σu²]` per tensor for LAMB; `Σg²`, then `[Σw², Σr², Σc²]`
    ///   for LANS).
    /// - Returns: the global gradient norm before clipping. When it is not finite (NaN or Inf in a gradient), nothing
    ///   is updated: the parameters and moments are left as they were, and the caller decides what to do.
    public func step(_ passes: some OptimizerPasses, learningRate lr: Float, step t: Int,
                     allReduce reduceAcrossRanks: (([Double]) throws -> [Double])? = nil) throws -> Float {
        func allReduce(_ sums: [Double]) throws -> [Double] { try reduceAcrossRanks?(sums) ?? sums }
        let s = settings
        let gradientSquares = passes.sumsOfSquares(.gradients)
        let gradNorm = Float(try allReduce([gradientSquares.reduce(0, +)])[0].squareRoot())
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
        let k = MomentCoefficients(b1: b1, b2: b2, c1: c1, c2: c2, bc1: bc1, bc2: bc2, epsilon: s.epsilon)

        switch s.kind {
        case .lamb, .nvlamb:
            passes.lambMoments(k, clip: clip)
            let sums = try allReduce(perTensor([passes.sumsOfSquares(.parameters), passes.sumsOfSquares(.gradients)]))
            passes.scaledUpdate(scales: segments.map { seg in
                let wNorm = Float(sums[2 * seg.tensor].squareRoot()), uNorm = Float(sums[2 * seg.tensor + 1].squareRoot())
                let trusted = (seg.weightDecay && s.weightDecay != 0) || s.kind == .nvlamb
                let ratio: Float = trusted && wNorm > 0 && uNorm > 0 ? wNorm / uNorm : 1
                return lr * ratio
            })
        case .adamw:
            passes.adamw(k, clip: clip, learningRate: lr, stepSize: lr / bc1, bc2Root: bc2.squareRoot())
        case .adamwNoBiasCorrection:
            passes.adamwNoBiasCorrection(k, clip: clip, learningRate: lr)
        case .lans:
            // Per-tensor gradient norms (of the clipped gradient), then the moments of the normalised gradient.
            let gradSums = try allReduce(perTensor([gradientSquares]))
            let scales = segments.map { seg -> Float in
                let norm = clip * Float(gradSums[seg.tensor].squareRoot())
                return norm > 0 ? clip / (norm + s.epsilon) : clip
            }
            passes.lansMoments(k, scales: scales)
            // ‖w‖, ‖r‖, ‖c‖ per tensor, with r and c computed on the fly (not stored).
            let directions = passes.lansDirectionSums(k, scales: scales)
            let sums = try allReduce(perTensor([passes.sumsOfSquares(.parameters), directions.map(\.r), directions.map(\.c)]))
            var rScales: [Float] = [], cScales: [Float] = []
            for seg in segments {
                let wNorm = Float(sums[3 * seg.tensor].squareRoot()), rNorm = Float(sums[3 * seg.tensor + 1].squareRoot())
                let cNorm = Float(sums[3 * seg.tensor + 2].squareRoot())
                rScales.append(lr * b1 * (wNorm > 0 && rNorm > 0 ? wNorm / rNorm : 1))
                cScales.append(lr * c1 * (wNorm > 0 && cNorm > 0 ? wNorm / cNorm : 1))
            }
            passes.lansUpdate(k, scales: scales, rScales: rScales, cScales: cScales)
        }
        return gradNorm
    }

    /// Per-tensor partial sums, one column per per-segment array, laid out `[tensor · width + column]` by
    /// `OptimizerSegment.tensor` (zeros for the tensors this optimizer holds no part of), ready to be summed across ranks.
    private func perTensor(_ columns: [[Double]]) -> [Double] {
        let width = columns.count
        var out = [Double](repeating: 0, count: width * tensorCount)
        for (k, seg) in segments.enumerated() {
            for (j, column) in columns.enumerated() { out[width * seg.tensor + j] += column[k] }
        }
        return out
    }
}

/// An optimizer whose moments live in host memory, laid out like the parameters from `base`, and its step on host
/// buffers (the golden tests and any caller holding host pointers; training goes through `BackendOptimizer`).
public final class Optimizer {
    public let recipe: OptimizerRecipe
    public var settings: OptimizerSettings { recipe.settings }
    public var segments: [OptimizerSegment] { recipe.segments }
    /// The first parameter offset the moment buffers cover (0 unless sharded).
    public let base: Int
    public let m: UnsafeMutablePointer<Float>
    public let v: UnsafeMutablePointer<Float>
    public let count: Int

    /// - Parameter tensorCount: as `OptimizerRecipe.init` takes it.
    public init(settings: OptimizerSettings, segments: [OptimizerSegment], tensorCount: Int? = nil) {
        recipe = OptimizerRecipe(settings: settings, segments: segments, tensorCount: tensorCount)
        (base, count) = recipe.extent
        m = .allocate(capacity: max(1, count))
        v = .allocate(capacity: max(1, count))
        m.initialize(repeating: 0, count: max(1, count))
        v.initialize(repeating: 0, count: max(1, count))
    }

    deinit {
        m.deallocate()
        v.deallocate()
    }

    /// One update (see `OptimizerRecipe.step`) on host buffers addressed by the segments' offsets.
    @discardableResult
    public func step(parameters w: UnsafeMutablePointer<Float>, gradients g: UnsafeMutablePointer<Float>,
                     learningRate lr: Float, step t: Int, allReduce: (([Double]) throws -> [Double])? = nil) throws -> Float {
        let passes = HostOptimizerPasses(segments: segments, weightDecay: settings.weightDecay, parameters: w, gradients: g,
                                         m: m, v: v, base: base)
        return try recipe.step(passes, learningRate: lr, step: t, allReduce: allReduce)
    }
}
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
