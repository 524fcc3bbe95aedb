import BERTCUDA
import BERTKernels
import Testing
@testable import BERT

/// `BackendOptimizer` (moments in a backend's memory, updated in place) against the host `Optimizer` whose goldens
/// `OptimizerTests` checks against apex/torch/TF: bit for bit on the emulated CPU device, within a stated tolerance
/// through `CUDABackend` on `EmulatedRuntime` (optimizer.cu's references), and with only per-tensor sums crossing.
@Suite struct BackendOptimizerTests {
    /// A ZeRO-like slice: moments from offset 100, tensors of several 4096-element chunks and of one, with and without
    /// weight decay, one of them in two segments, of a model of 5 tensors.
    static let segments = [OptimizerSegment(offset: 100, count: 9000, weightDecay: true, tensor: 1),
                           OptimizerSegment(offset: 9100, count: 37, weightDecay: false, tensor: 2),
                           OptimizerSegment(offset: 9137, count: 2000, weightDecay: true, tensor: 4),
                           OptimizerSegment(offset: 11_137, count: 2200, weightDecay: true, tensor: 4)]
    static let total = 13_337

    /// Parameters and 3 steps of gradients, from a fixed seed.
    static func data() -> (w: [Float], g: [[Float]]) {
        var rng = DataRandom(seed: 17)
        func values(_ scale: Float) -> [Float] { (0..<total).map { _ in scale * Float.random(in: -1...1, using: &rng) } }
        return (values(0.5), (0..<3).map { values(Float($0 + 1) * 0.3) })
    }

    /// The host optimizer's weights and moments after the 3 steps.
    static func host(_ kind: OptimizerKind) throws -> (w: [Float], m: [Float], v: [Float]) {
        var (w, gradients) = data()
        let optimizer = Optimizer(settings: OptimizerSettings(kind: kind), segments: segments, tensorCount: 5)
        for (t, var g) in gradients.enumerated() {
            try optimizer.step(parameters: &w, gradients: &g, learningRate: 0.01, step: t + 1)
        }
        return (w, Array(UnsafeBufferPointer(start: optimizer.m, count: optimizer.count)),
                Array(UnsafeBufferPointer(start: optimizer.v, count: optimizer.count)))
    }

    /// The same 3 steps through `BackendOptimizer` on `backend`.
    static func device(_ kind: OptimizerKind, _ backend: any Backend) throws -> (w: [Float], m: [Float], v: [Float]) {
        let (w, gradients) = data()
        let parameters = DeviceBuffer(backend: backend, count: total), g = DeviceBuffer(backend: backend, count: total)
        parameters.upload(w)
        let optimizer = BackendOptimizer(settings: OptimizerSettings(kind: kind), segments: segments, tensorCount: 5,
                                         parameters: parameters, gradients: g)
        for (t, step) in gradients.enumerated() {
            g.upload(step)
            try optimizer.step(learningRate: 0.01, step: t + 1)
        }
        let moments = optimizer.downloadMoments()
        return (parameters.array(), moments.m, moments.v)
    }

    @Test(arguments: OptimizerKind.allCases)
    func theEmulatedCPUDeviceUpdatesWithTheHostOptimizersBits(kind: OptimizerKind) throws {
        let host = try Self.host(kind), device = try Self.device(kind, CPUBackend.emulatedDevice())
        #expect(host.w == device.w && host.m == device.m && host.v == device.v)
        #expect(host.w != Self.data().w, "the step updated the weights")
    }

    /// optimizer.cu through the emulator: sums in other orders (fp32 per thread, fp64 per block), so within 2e-6 of
    /// the largest value (measured below that; the worst is printed), and every optimizer kernel ran.
    @Test(arguments: OptimizerKind.allCases)
    func theCUDABackendMatchesTheHostOptimizer(kind: OptimizerKind) throws {
        let runtime = EmulatedRuntime()
        let host = try Self.host(kind), device = try Self.device(kind, CUDABackend(runtime: runtime, precision: .fp32))
        for (what, a, b) in [("weights", host.w, device.w), ("m", host.m, device.m), ("v", host.v, device.v)] {
            let scale = a.map(abs).max() ?? 0, worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            print("\(kind) \(what): worst difference \(worst / scale) of the largest")
            #expect(worst <= 2e-6 * scale, "\(kind) \(what): \(worst) against \(scale)")
        }
        let kernels: [OptimizerKind: [String]] = [
            .lamb: ["chunk_sum_squares", "tensor_sums", "lamb_moments", "scaled_update"],
            .nvlamb: ["lamb_moments", "scaled_update"], .adamw: ["adamw_update"], .adamwNoBiasCorrection: ["adamw_update"],
            .lans: ["lans_moments", "lans_direction_sums", "lans_update"]]
        for name in kernels[kind]! { #expect(runtime.launchCounts[name, default: 0] >= 3, "\(kind) ran \(name)") }
    }

    /// A pre-training step through the emulated CUDA backend brings back no parameter or gradient: the optimizer's
    /// crossing (the step's bytes beyond a step without an optimizer) is a few Doubles per tensor, where the host
    /// optimizer copied both buffers (8 bytes per parameter).
    @Test(arguments: [OptimizerKind.lamb, .lans, .adamw])
    func aTrainingStepCopiesNoParameterOrGradient(kind: OptimizerKind) throws {
        let runtime = EmulatedRuntime(), backend = CUDABackend(runtime: runtime, precision: .fp32)
        let model = try BertForPreTraining(config: EmulatedDeviceTests.config, seed: 11, backend: backend)
        func downloaded(by training: TrainingStep) throws -> Int {
            let before = runtime.downloadedBytes
            _ = try training.run(microBatches: 1, learningRate: 1e-2, step: 1) { _ in
                try model.forward(EmulatedDeviceTests.pretrainingBatch(seed: 1), dropout: DropoutStreams(seed: 3, step: 1)).loss
            }
            return runtime.downloadedBytes - before
        }
        let withoutOptimizer = try downloaded(by: TrainingStep(model: model, optimizer: nil))
        let withOptimizer = try downloaded(by: TrainingStep(model: model, optimizer: OptimizerSettings(kind: kind)))
        let optimizerBytes = withOptimizer - withoutOptimizer, tensors = model.layout.tensors.count
        print("\(kind): a step downloads \(withOptimizer) bytes, the optimizer \(optimizerBytes) for \(tensors) tensors "
              + "(\(model.layout.totalCount) parameters)")
        #expect(optimizerBytes >= 8 * tensors && optimizerBytes <= 5 * 8 * tensors, "only per-tensor sums")
        #expect(withOptimizer < model.layout.totalCount, "less than a quarter of one copy of the parameters")
    }
}
