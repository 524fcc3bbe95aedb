import BERTKernels
import Foundation

/// Times training steps (forward + backward, optionally the optimizer update) or inference steps (forward, no dropout) of
/// `BertForPreTraining`, `BertForQuestionAnswering` or `BertForSequenceClassification` on synthetic full-length batches, as
/// `bert bench` reports them.
public struct StepBenchmark {
    public enum Mode: String, Sendable { case train, infer }
    /// Which model: the pre-training heads, the span head (SQuAD) or a two-class classifier (MRPC).
    public enum Head: String, Sendable, CaseIterable { case pretraining, qa, classification }

    public var config: BertConfig
    public var mode: Mode
    public var head = Head.pretraining
    public var batchSize: Int
    public var seqLength: Int
    public var maxPredictions: Int
    public var steps: Int
    public var warmup: Int
    /// With `train`, also the optimizer update after the backward (nil: forward + backward only).
    public var optimizer: OptimizerKind?
    /// Where the model's tensors live and its kernels run.
    public var backend: any Backend = CPUBackend.shared
    /// Recompute each layer's activations in the backward instead of keeping them.
    public var checkpointActivations = false
    /// Pre-training rows packed with 2–3 sequences each (MLPerf's layout) instead of one full-length sequence.
    public var packed = false

    public init(config: BertConfig, mode: Mode, batchSize: Int, seqLength: Int, maxPredictions: Int, steps: Int, warmup: Int,
                optimizer: OptimizerKind? = nil) {
        self.config = config
        self.mode = mode
        self.batchSize = batchSize
        self.seqLength = seqLength
        self.maxPredictions = maxPredictions
        self.steps = steps
        self.warmup = warmup
        self.optimizer = optimizer
    }

    /// Matmul FLOPs of one forward pass (2 per multiply-add; elementwise work not counted):
    /// per layer `2·B·S·(4H² + 2H·I) + 4·B·S²·H` (projections, FFN, scores and context), plus the heads: pre-training,
    /// the MLM head on the `B·P` masked positions `2·B·P·(H² + H·V)` and the pooler and NSP head `2·B·(H² + 2H)`;
    /// qa, `2·B·S·2H`; classification, the pooler and classifier `2·B·(H² + 2H)`. A training step counts 3× (the
    /// backward does two matmuls per forward one).
    public var forwardFLOPs: Double {
        let B = Double(batchSize), S = Double(seqLength), P = Double(maxPredictions)
        let H = Double(config.hiddenSize), I = Double(config.intermediateSize), V = Double(config.vocabSize)
        let layer = 2 * B * S * (4 * H * H + 2 * H * I) + 4 * B * S * S * H
        let pooler = 2 * B * (H * H + 2 * H)
        let heads = switch head {
        case .pretraining: 2 * B * P * (H * H + H * V) + pooler
        case .qa: 2 * B * S * 2 * H
        case .classification: pooler
        }
        return Double(config.numHiddenLayers) * layer + heads
    }

    /// A full-length batch with `maxPredictions` distinct masked positions per row, all from `seed`.
    public func syntheticBatch(seed: UInt64 = 1) -> PretrainingBatch {
        let B = batchSize, S = seqLength, P = min(maxPredictions, S - 1)
        let rng = CounterRNG(seed: seed, stream: 0xBE7C)
        var word: UInt64 = 0
        func next(_ bound: Int) -> Int32 { defer { word += 1 }; return Int32(rng.block(word)[0] % UInt32(bound)) }
        var positions = [Int32](), labels = [Int32]()
        for _ in 0..<B {
            var chosen = Set<Int32>()
            while chosen.count < P { chosen.insert(1 + next(S - 1)) }
            positions += chosen.sorted() + [Int32](repeating: 0, count: maxPredictions - P)
            labels += (0..<maxPredictions).map { $0 < P ? next(config.vocabSize) : 0 }
        }
        return PretrainingBatch(batchSize: B, seqLength: S, maxPredictions: maxPredictions,
                                inputIds: (0..<(B * S)).map { _ in next(config.vocabSize) },
                                segmentIds: (0..<(B * S)).map { Int32($0 % S >= S / 2 ? 1 : 0) },
                                inputMask: [Int32](repeating: 1, count: B * S), maskedLMPositions: positions,
                                maskedLMIds: labels, nextSentenceLabels: (0..<B).map { _ in next(2) })
    }

    public struct Result: Sendable {
        public var stepSeconds: [Double]
        public var loss: Float
        public var parameterCount: Int
        public var activationBytes: Int
        /// Sequences in the timed batch (B unpacked; 2–3 per row packed).
        public var sequences: Int
    }

    /// `syntheticBatch`'s rows, each cut into 2 or 3 sequences (lengths from `seed`, each at least 2 tokens) with
    /// restarting position ids and one NSP slot per sequence; masked positions on a sequence's [CLS] are dropped.
    public func syntheticPackedBatch(seed: UInt64 = 1) -> PretrainingBatch {
        let b = syntheticBatch(seed: seed), B = b.batchSize, S = b.seqLength, P = b.maxPredictions, N = 3
        precondition(S >= 2 * N, "packing 3 sequences needs rows of at least 6 tokens")
        let rng = CounterRNG(seed: seed, stream: 0x9AC4)
        var mask = [Int32](repeating: 0, count: B * S), positions = mask, masked = [Int32](), maskedIds = [Int32]()
        var nspPositions = [Int32](repeating: 0, count: B * N), nspWeights = nspPositions
        for row in 0..<B {
            let r = rng.block(UInt64(row)), count = 2 + Int(r[0] % 2)
            // Cuts at random points, at least 2 tokens apart: sequence n spans starts[n]..<starts[n + 1].
            var starts = [0]
            for n in 1..<count { starts.append(starts[n - 1] + 2 + Int(r[n] % UInt32(S - starts[n - 1] - 2 * (count - n + 1) + 1))) }
            starts.append(S)
            for n in 0..<count {
                for s in starts[n]..<starts[n + 1] { (mask[row * S + s], positions[row * S + s]) = (Int32(n + 1), Int32(s - starts[n])) }
                (nspPositions[row * N + n], nspWeights[row * N + n]) = (Int32(starts[n]), 1)
            }
            let kept = (0..<P).filter { p in
                let at = Int(b.maskedLMPositions[row * P + p])
                return at != 0 && !starts.contains(at)
            }
            masked += kept.map { b.maskedLMPositions[row * P + $0] } + [Int32](repeating: 0, count: P - kept.count)
            maskedIds += kept.map { b.maskedLMIds[row * P + $0] } + [Int32](repeating: 0, count: P - kept.count)
        }
        let labels = (0..<(B * N)).map { nspWeights[$0] == 0 ? 0 : Int32(rng.block(UInt64(B + $0))[0] % 2) }
        return PretrainingBatch(batchSize: B, seqLength: S, maxPredictions: P, sequencesPerRow: N, inputIds: b.inputIds,
                                segmentIds: b.segmentIds, inputMask: mask, positions: positions, maskedLMPositions: masked,
                                maskedLMIds: maskedIds, nextSentencePositions: nspPositions, nextSentenceLabels: labels,
                                nextSentenceWeights: nspWeights)
    }

    public func run() throws -> Result {
        let b = packed ? syntheticPackedBatch() : syntheticBatch()
        let model: BertModelBase
        // The forward of the chosen model, returning its loss (0 for task models in inference, which have no targets).
        let forward: (DropoutStreams?) throws -> Float
        switch head {
        case .pretraining:
            let m = try BertForPreTraining(config: config, backend: backend)
            (model, forward) = (m, { try m.forward(b, dropout: $0, training: $0 != nil).loss })
        case .qa:
            let m = try BertForQuestionAnswering(config: config, backend: backend)
            // Each row's answer spans its first two masked positions (sorted, so start ≤ end).
            let rows = 0..<b.batchSize, P = maxPredictions
            let spans = AnswerSpans(startPositions: rows.map { b.maskedLMPositions[$0 * P] },
                                    endPositions: rows.map { b.maskedLMPositions[$0 * P + min(1, P - 1)] })
            let train = QuestionAnsweringBatch(batchSize: b.batchSize, seqLength: b.seqLength, inputIds: b.inputIds,
                                               segmentIds: b.segmentIds, inputMask: b.inputMask, targets: spans)
            var infer = train
            infer.targets = nil
            (model, forward) = (m, { try m.forward($0 == nil ? infer : train, dropout: $0)?.loss ?? 0 })
        case .classification:
            let m = try BertForSequenceClassification(config: config, labels: 2, backend: backend)
            let train = ClassificationBatch(batchSize: b.batchSize, seqLength: b.seqLength, inputIds: b.inputIds,
                                            segmentIds: b.segmentIds, inputMask: b.inputMask, targets: b.nextSentenceLabels)
            var infer = train
            infer.targets = nil
            (model, forward) = (m, { try m.forward($0 == nil ? infer : train, dropout: $0)?.loss ?? 0 })
        }
        model.checkpointActivations = checkpointActivations
        let training = TrainingStep(model: model, optimizer: optimizer.map { OptimizerSettings(kind: $0) })
        var times: [Double] = [], loss: Float = 0
        for step in 0..<(warmup + steps) {
            let start = DispatchTime.now().uptimeNanoseconds
            switch mode {
            case .train:
                loss = try training.run(microBatches: 1, learningRate: 1e-3, step: step + 1) { _ in
                    try forward(DropoutStreams(seed: 1, step: UInt64(step)))
                }.results[0]
            case .infer:
                loss = try forward(nil)
            }
            if step >= warmup { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
        }
        let parameters = model.layout.tensors.reduce(0) { $0 + $1.count }
        return Result(stepSeconds: times, loss: loss, parameterCount: parameters, activationBytes: model.activationCount * 4,
                      sequences: b.sequenceCount)
    }
}

/// Peak resident set size of this process, in MiB.
public func peakResidentMiB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}
