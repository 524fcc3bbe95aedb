import BERTKernels

/// An optimizer whose moments live in a backend's memory beside the model's parameters and gradients, updated in place
/// there: `OptimizerRecipe` computes the scalars on the host and the backend's `OptimizerPasses` do the elementwise
/// work, so a step moves only a few Doubles per tensor between host and device. Checkpoints reach the moments through
/// `withHostMoments`.
public final class BackendOptimizer {
    public let recipe: OptimizerRecipe
    public var settings: OptimizerSettings { recipe.settings }
    /// The first parameter offset the moments cover (this rank's shard under ZeRO, else 0) and their length.
    public let base: Int, count: Int
    /// The first and second moments, `count` floats each, element j for parameter `base + j`.
    public let m: DeviceBuffer, v: DeviceBuffer
    private let passes: any OptimizerPasses

    /// - Parameters: `parameters` and `gradients` the model's flat buffers, which the passes update in place;
    ///   `tensorCount` as `OptimizerRecipe.init` takes it.
    public init(settings: OptimizerSettings, segments: [OptimizerSegment], tensorCount: Int? = nil,
                parameters: DeviceBuffer, gradients: DeviceBuffer) {
        recipe = OptimizerRecipe(settings: settings, segments: segments, tensorCount: tensorCount)
        (base, count) = recipe.extent
        let backend = parameters.backend
        m = DeviceBuffer(backend: backend, count: count)
        v = DeviceBuffer(backend: backend, count: count)
        passes = backend.optimizerPasses(segments: segments, tensorCount: recipe.tensorCount,
                                         weightDecay: settings.weightDecay, parameters: parameters.base,
                                         gradients: gradients.base, m: m.base, v: v.base, base: base)
    }

    /// One update at step `t` (see `OptimizerRecipe.step`): the gradients are consumed, the parameters updated in place.
    @discardableResult
    public func step(learningRate lr: Float, step t: Int, allReduce: (([Double]) throws -> [Double])? = nil) throws -> Float {
        try recipe.step(passes, learningRate: lr, step: t, allReduce: allReduce)
    }

    /// Host copies of the moments (a checkpoint's crossing).
    public func downloadMoments() -> (m: [Float], v: [Float]) { (m.array(), v.array()) }

    /// Runs `body` on the moments in host memory, addressed like the parameters (pointer + a parameter's offset; only
    /// `base ..< base + count` is there): the moments themselves on the CPU, copies on a device, uploaded back after
    /// when `writeBack` (a checkpoint read into them).
    public func withHostMoments<R>(writeBack: Bool, _ body: (_ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        try m.withHostFloats(writeBack: writeBack) { m in
            try v.withHostFloats(writeBack: writeBack) { v in try body(m - base, v - base) }
        }
    }
}
