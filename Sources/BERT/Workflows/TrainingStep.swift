import BERTKernels

/// One optimizer step of data-parallel training, written once for pre-training, fine-tuning and `bert bench`:
/// zero the gradients → forward and backward of each micro-batch (each backward scaled by 1 / (micro-batches × ranks),
/// so the sum is the mean over the global batch) → reduce the gradients across ranks → update → share the update.
///
/// The ZeRO stages (DeepSpeed's names) differ only in the reduction and in who updates what:
/// - 0: every rank all-reduces the whole gradient and updates the whole model;
/// - 1: the gradient is reduce-scattered, each rank updates its slice of the parameters with its slice of the moments,
///   and the slices are all-gathered;
/// - 2: as 1, but the reduce-scatter runs after every micro-batch and only this rank's slice of the sum is kept: the
///   rest of the gradient is zeroed, so the next backward adds onto the running slice and the next reduce-scatter sums
///   it with the other ranks' new gradients (the sum stays in the backend's memory; nothing crosses to the host).
/// The collectives take the backend's buffers (`Communicator`'s `DeviceBuffer` forms), and the optimizer updates the
/// parameters in place in the backend's memory (`BackendOptimizer`), so a device step copies no parameter or gradient.
public final class TrainingStep {
    public let model: BertModelBase
    /// nil: forward and backward only (`bert bench` without `--optimizer`).
    public let optimizer: BackendOptimizer?
    public let communicator: any Communicator
    public let zeroStage: Int
    /// Each rank's count of the flat buffer under ZeRO (the whole buffer for everyone without).
    public let shardCounts: [Int]
    /// This rank's slice of the flat buffer (all of it without ZeRO).
    public let shard: Range<Int>

    /// - Parameters:
    ///   - optimizer: the update's settings; nil for a step without one.
    ///   - zeroStage: 0, 1 or 2 (see the type's description).
    public init(model: BertModelBase, optimizer settings: OptimizerSettings?, communicator: any Communicator = SingleProcessCommunicator(),
                zeroStage: Int = 0) {
        precondition((0...2).contains(zeroStage), "ZeRO stage \(zeroStage)")
        self.model = model
        self.communicator = communicator
        self.zeroStage = zeroStage
        let total = model.layout.totalCount, rank = communicator.rank
        shardCounts = zeroStage > 0 ? Communicators.evenCounts(total: total, size: communicator.size) : [total]
        let start = zeroStage > 0 ? Communicators.offsets(shardCounts)[rank] : 0
        let shard = start..<(start + shardCounts[zeroStage > 0 ? rank : 0])
        self.shard = shard
        optimizer = settings.map {
            BackendOptimizer(settings: $0, segments: model.layout.optimizerSegments(in: shard),
                             tensorCount: model.layout.tensors.count, parameters: model.parameters, gradients: model.gradients)
        }
    }

    /// Runs one step over `microBatches` micro-batches of this rank.
    /// - Parameters:
    ///   - forward: runs micro-batch `i`'s forward (with its dropout) and returns what the caller wants back; it throws
    ///     to stop the step before any backward of that micro-batch (a loss that is not finite).
    ///   - step: the 1-based optimizer step (bias corrections).
    /// - Returns: each micro-batch's result and the global gradient norm before clipping (0 without an optimizer).
    ///   When the norm is not finite nothing was updated: the caller decides what to do.
    public func run<Result>(microBatches: Int, learningRate: Float, step: Int,
                            forward: (Int) throws -> Result) throws -> (results: [Result], gradNorm: Float) {
        let comm = communicator, W = comm.size, gradients = model.gradients
        model.zeroGradients()
        var results: [Result] = []
        for i in 0..<microBatches {
            results.append(try forward(i))
            model.backward(lossScale: 1 / Float(microBatches * W))
            if zeroStage == 2 {   // keep only this rank's slice of the running sum
                try comm.reduceScatterSum(gradients, counts: shardCounts)
                for outside in [0..<shard.lowerBound, shard.upperBound..<model.layout.totalCount] where !outside.isEmpty {
                    model.backend.fill(gradients[outside.lowerBound], count: outside.count, value: 0)
                }
            }
        }
        guard let optimizer else { return (results, 0) }
        switch zeroStage {
        case 0: if W > 1 { try comm.allReduceSum(gradients, count: model.layout.totalCount) }
        case 1: try comm.reduceScatterSum(gradients, counts: shardCounts)
        default: break   // ZeRO-2: the slice holds the step's sum already
        }
        let gradNorm = try optimizer.step(learningRate: learningRate, step: step,
                                          allReduce: zeroStage > 0 ? { try comm.allReduceSum($0) } : nil)
        if zeroStage > 0 && gradNorm.isFinite { try comm.allGather(model.parameters, counts: shardCounts) }
        return (results, gradNorm)
    }
}
