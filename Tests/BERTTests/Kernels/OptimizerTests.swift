import BERTKernels
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
}
