import BERTKernels

/// An optimizer whose moments live in a backend's memory beside the model's parameters and gradients, updated in place
/// there: `OptimizerRecipe` computes the scalars on the host and the backend's `OptimizerPasses` do the elementwise
/// work, so a step moves only a few Doubles per tensor between host and device. Checkpoints reach the moments through
/// `downloadMoments` / `uploadMoments`.
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

    /// Replaces the moments with `m` and `v`, `count` floats each (a resumed checkpoint's).
    public func uploadMoments(m: UnsafeBufferPointer<Float>, v: UnsafeBufferPointer<Float>) {
        precondition(m.count == count && v.count == count, "moments of \(m.count), \(v.count) floats for \(count)")
        self.m.backend.upload(m, to: self.m.base)
        self.v.backend.upload(v, to: self.v.base)
    }
}
