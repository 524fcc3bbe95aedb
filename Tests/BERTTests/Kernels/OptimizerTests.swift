@testable import BERTKernels
import Foundation
import Testing
@testable import BERT

/// Each optimizer against a PyTorch implementation of its source's formulas over 5 steps (fixtures from
/// scripts/reference/optimizers.py): clipping engaged on steps 1, 3, 5, decayed and undecayed tensors.
@Suite struct OptimizerTests {
    static let variants: [(String, OptimizerKind)] = [("lamb", .lamb), ("nvlamb", .nvlamb), ("lans", .lans),
                                                      ("adamw", .adamw), ("adamw_nobc", .adamwNoBiasCorrection)]

    @Test(arguments: variants.map(\.0))
    func matchesReference(variant: String) throws {
        let file = try Safetensors.File(path: fixture("optimizers/\(variant).safetensors"))
        let meta = file.metadata
        let names = meta["param_names"]!.split(separator: ",").map(String.init)
        var settings = OptimizerSettings(kind: Self.variants.first { $0.0 == variant }!.1)
        settings.beta1 = Double(meta["beta1"]!)!
        settings.beta2 = Double(meta["beta2"]!)!
        settings.epsilon = Float(meta["eps"]!)!
        settings.weightDecay = Float(meta["weight_decay"]!)!
        settings.maxGradNorm = Float(meta["max_grad_norm"]!)
        let rates = meta["learning_rates"]!.split(separator: ",").map { Float($0)! }

        // Lay the tensors out in one flat buffer, as the model does.
        var segments: [OptimizerSegment] = [], offset = 0
        for (i, name) in names.enumerated() {
            let count = try file.entry("param." + name).count
            let decays = !["bias", "gamma", "beta", "LayerNorm"].contains { name.contains($0) }
            segments.append(OptimizerSegment(offset: offset, count: count, weightDecay: decays, tensor: i))
            offset += count
        }
        var w = try names.flatMap { try file.floats("param." + $0) }
        let optimizer = Optimizer(settings: settings, segments: segments)
        for t in 1...5 {
            var g = try names.flatMap { try file.floats("grad.\(t).\($0)") }
            let norm = try optimizer.step(parameters: &w, gradients: &g, learningRate: rates[t - 1], step: t)
            #expect(abs(norm - (try file.floats("grad_norm.\(t)"))[0]) < 1e-5)
            for (name, seg) in zip(names, segments) {
                expectClose("\(variant) step \(t) \(name)", Array(w[seg.offset..<(seg.offset + seg.count)]),
                            try file.floats("expected.\(t).\(name)"), tolerance: 1e-6)
            }
        }
        for (name, seg) in zip(names, segments) {
            expectClose("\(variant) m \(name)", Array(UnsafeBufferPointer(start: optimizer.m + seg.offset, count: seg.count)),
                        try file.floats("m.5.\(name)"), tolerance: 1e-5)
            expectClose("\(variant) v \(name)", Array(UnsafeBufferPointer(start: optimizer.v + seg.offset, count: seg.count)),
                        try file.floats("v.5.\(name)"), tolerance: 1e-4)
        }
    }

    @Test func nonFiniteGradientLeavesEverythingUntouched() throws {
        var w: [Float] = [1, 2, 3], g: [Float] = [0.1, .nan, 0.3]
        let optimizer = Optimizer(settings: OptimizerSettings(kind: .lamb), segments: [OptimizerSegment(offset: 0, count: 3, weightDecay: true, tensor: 0)])
        let norm = try optimizer.step(parameters: &w, gradients: &g, learningRate: 0.1, step: 1)
        #expect(norm.isNaN && w == [1, 2, 3] && optimizer.m[0] == 0)
    }

    /// The host passes run 8 lanes at a time; each lane's arithmetic is its element's, so they give the bits of the
    /// formulas applied element by element — at segment ends that cut a vector, and at odd offsets.
    @Test func hostPassesEqualTheElementByElementFormulas() {
        var r = TestRandom(13)
        let n = 9_000, segments = [OptimizerSegment(offset: 3, count: 1_237, weightDecay: true, tensor: 0),
                                   OptimizerSegment(offset: 1_240, count: 7_757, weightDecay: false, tensor: 1)]
        let k = MomentCoefficients(b1: 0.9, b2: 0.999, c1: 0.1, c2: 0.001, bc1: 0.19, bc2: 0.002, epsilon: 1e-6)
        let w0 = r.normal(n), g0 = r.normal(n), m0 = r.normal(n, scale: 0.1), v0 = r.normal(n, scale: 0.1).map { $0 * $0 }
        let decay: Float = 0.01, clip: Float = 0.7, scales: [Float] = [0.003, 0.02]
        func run(_ pass: (HostOptimizerPasses) -> Void) -> [[Float]] {
            var (w, g, m, v) = (w0, g0, m0, v0)
            pass(HostOptimizerPasses(segments: segments, weightDecay: decay, parameters: &w, gradients: &g, m: &m, v: &v, base: 0))
            return [w, g, m, v]
        }
        func expected(_ element: (Int, Int, inout Float, inout Float, inout Float, inout Float) -> Void) -> [[Float]] {
            var (w, g, m, v) = (w0, g0, m0, v0)
            for (j, seg) in segments.enumerated() {
                for i in seg.offset..<(seg.offset + seg.count) { element(i, j, &w[i], &g[i], &m[i], &v[i]) }
            }
            return [w, g, m, v]
        }
        func moments(_ m: inout Float, _ v: inout Float, _ g: Float) { m = k.b1 * m + k.c1 * g; v = k.b2 * v + k.c2 * g * g }
        let lambda = { (j: Int) -> Float in segments[j].weightDecay ? decay : 0 }
        #expect(run { $0.lambMoments(k, clip: clip) } == expected { _, j, w, g, m, v in
            moments(&m, &v, g * clip)
            g = (m / k.bc1) / ((v / k.bc2).squareRoot() + k.epsilon) + lambda(j) * w
        }, "LAMB stage 1")
        #expect(run { $0.scaledUpdate(scales: scales) } == expected { _, j, w, g, _, _ in w -= scales[j] * g }, "LAMB stage 2")
        #expect(run { $0.adamw(k, clip: clip, learningRate: 0.01, stepSize: 0.02, bc2Root: 0.05) } == expected { _, j, w, g, m, v in
            w *= 1 - 0.01 * lambda(j)
            moments(&m, &v, g * clip)
            w -= 0.02 * m / (v.squareRoot() / 0.05 + k.epsilon)
        }, "AdamW")
        #expect(run { $0.adamwNoBiasCorrection(k, clip: clip, learningRate: 0.01) } == expected { _, j, w, g, m, v in
            moments(&m, &v, g * clip)
            w -= 0.01 * (m / (v.squareRoot() + k.epsilon) + lambda(j) * w)
        }, "AdamW without bias correction")
        #expect(run { $0.lansMoments(k, scales: scales) } == expected { _, j, _, g, m, v in moments(&m, &v, g * scales[j]) },
                "LANS moments")
    }
}

