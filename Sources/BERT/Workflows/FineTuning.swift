import BERTKernels
import Foundation

/// What every fine-tuning task shares, as Google's run_classifier.py / run_squad.py and HF's run_glue.py / run_qa.py
/// do it: the starting weights and vocabulary, AdamW (torch semantics, weight decay 0.01 off biases and LayerNorm,
/// ε 1e-6, global clip 1.0), linear warmup then linear decay, seeded shuffling each epoch and dropout on; the model
/// and its vocabulary saved to a new output directory.
public struct FineTuningOptions: Sendable {
    /// Weights to start from (ours or HF's; the task head starts fresh). Nil: a fresh model from `config`.
    public var initCheckpoint: String?
    public var config: BertConfig?
    public var outputDirectory: String
    /// Default: the `vocab.txt` beside the initial checkpoint.
    public var vocabFile: String?
    public var lowercase = true
    public var maxSeqLength: Int
    public var trainBatchSize = 32
    public var learningRate: Double
    public var epochs: Double
    public var warmupProportion = 0.1
    public var seed: UInt64 = 42
    /// Where the model's tensors live and its kernels run (`--device`).
    public var backend: any Backend = CPUBackend.shared
    /// Recompute each layer's activations in the backward instead of keeping them (`--checkpoint-activations`).
    public var checkpointActivations = false
    /// Evaluate each batch, and train each classification batch, at its longest real sequence (`--no-trim-batches`
    /// turns it off; see `BatchTrimming.swift`).
    public var trimBatches = true

    public init(outputDirectory: String, maxSeqLength: Int, learningRate: Double, epochs: Double) {
        self.outputDirectory = outputDirectory
        self.maxSeqLength = maxSeqLength
        self.learningRate = learningRate
        self.epochs = epochs
    }

    /// What each optimizer step reports (for a progress bar).
    public struct Step: Sendable {
        public var step: Int
        public var totalSteps: Int
        public var loss: Float
        public var learningRate: Double
        /// Over the run so far.
        public var sequencesPerSecond: Double
        public var elapsed: Double
    }

    /// What a training run reports.
    public struct TrainingSummary: Sendable {
        public var steps: Int
        public var firstLoss: Float
        public var finalLoss: Float
        public var sequencesPerSecond: Double

        var json: [String: Any] {
            ["steps": steps, "first_loss": Double(firstLoss), "final_loss": Double(finalLoss),
             "training_sequences_per_second": sequencesPerSecond]
        }
    }

    /// Checks the flags before any work: the output directory is new or empty, the batch, epochs and rates make sense.
    /// - Throws: `BertError.invalidInput` naming the flag.
    func validate() throws {
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: outputDirectory), !entries.isEmpty {
            throw BertError.invalidInput("--output-dir \(outputDirectory) is not empty; choose a new directory")
        }
        guard trainBatchSize > 0 else { throw BertError.invalidInput("--train-batch-size must be positive (got \(trainBatchSize))") }
        guard epochs > 0 else { throw BertError.invalidInput("--num-train-epochs must be positive (got \(epochs))") }
        guard learningRate > 0 else { throw BertError.invalidInput("--learning-rate must be positive (got \(learningRate))") }
        guard (0..<1).contains(warmupProportion) else {
            throw BertError.invalidInput("--warmup-proportion must lie in [0, 1) (got \(warmupProportion))")
        }
    }

    /// The vocabulary's path and a tokenizer over it.
    /// - Throws: `BertError.invalidInput` when neither `--vocab-file` nor a `vocab.txt` beside the checkpoint exists.
    func tokenizer() throws -> (path: String, tokenizer: BertTokenizer) {
        guard let path = vocabFile ?? initCheckpoint.map({ ($0 as NSString).appendingPathComponent("vocab.txt") }),
              FileManager.default.fileExists(atPath: path) else {
            throw BertError.invalidInput("no vocabulary: pass --vocab-file (the checkpoint directory has no vocab.txt)")
        }
        return (path, BertTokenizer(vocabulary: try Vocabulary(contentsOf: path), lowercase: lowercase))
    }

    /// The model to fine-tune: `load` from `initCheckpoint` (logging the heads it initialised fresh), or `fresh` from
    /// `config` with the vocabulary's size.
    /// - Throws: `BertError.invalidInput` when there is neither, or when the vocabulary does not fit the model.
    func model<Model: BertModelBase>(vocabulary: Vocabulary, vocabPath: String, log: (String) -> Void,
                                     load: (String) throws -> (Model, LoadReport),
                                     fresh: (BertConfig) throws -> Model) throws -> Model {
        let model: Model
        if let initCheckpoint {
            let (loaded, report) = try load(initCheckpoint)
            if !report.missing.isEmpty { log("initialised fresh: \(report.missing.joined(separator: ", "))") }
            model = loaded
        } else {
            guard var config else { throw BertError.invalidInput("give --init-checkpoint (or --model/--config-file to start from scratch)") }
            config.vocabSize = vocabulary.count
            model = try fresh(config)
        }
        model.checkpointActivations = checkpointActivations
        try vocabulary.requireSize(model.config.vocabSize, path: vocabPath, of: initCheckpoint ?? "the model")
        guard maxSeqLength <= model.config.maxPositionEmbeddings else {
            throw BertError.invalidInput("--max-seq-length \(maxSeqLength) exceeds the model's max_position_embeddings \(model.config.maxPositionEmbeddings)")
        }
        return model
    }

    /// Trains `model` on `rows` for `epochs`: each epoch a seeded permutation cut into batches of `trainBatchSize`
    /// (the last one shorter), one optimizer step per batch.
    /// - Parameters:
    ///   - onStep: called after every step.
    ///   - loss: runs the forward of a batch with the given dropout and returns its loss.
    /// - Throws: `BertError.invalidInput` naming the step when the loss is not finite (before the weights change).
    func train<Row>(_ model: BertModelBase, rows: [Row], log: (String) -> Void, onStep: (Step) -> Void,
                    loss: ([Row], DropoutStreams) throws -> Float) throws -> TrainingSummary {
        var settings = OptimizerSettings(kind: .adamw)
        settings.epsilon = 1e-6
        let training = TrainingStep(model: model, optimizer: settings)
        let stepsPerEpoch = (rows.count + trainBatchSize - 1) / trainBatchSize
        let totalSteps = max(1, Int((Double(stepsPerEpoch) * epochs).rounded(.up)))
        let schedule = LearningRateSchedule(kind: .linear, baseRate: learningRate, warmupProportion: warmupProportion,
                                            totalSteps: totalSteps)
        log("fine-tuning on \(rows.count) sequences: \(totalSteps) steps of \(trainBatchSize), lr \(learningRate)")
        var step = 0, losses: [Float] = [], sequences = 0
        let start = Date()
        while step < totalSteps {
            var random = DataRandom(seed: seed, streams: [3, UInt64(step / stepsPerEpoch)])
            let order = random.permutation(rows.count)
            for first in stride(from: 0, to: rows.count, by: trainBatchSize) where step < totalSteps {
                let batch = order[first..<min(rows.count, first + trainBatchSize)].map { rows[$0] }
                let rate = schedule.rate(at: step)
                let l = try training.run(microBatches: 1, learningRate: rate, step: step + 1) { _ in
                    let l = try loss(batch, DropoutStreams(seed: seed, step: UInt64(step)))
                    guard l.isFinite else { throw BertError.invalidInput("step \(step + 1): the loss is not finite; lower --learning-rate") }
                    return l
                }.results[0]
                step += 1
                sequences += batch.count
                losses.append(l)
                let elapsed = Date().timeIntervalSince(start)
                onStep(Step(step: step, totalSteps: totalSteps, loss: l, learningRate: Double(rate),
                            sequencesPerSecond: Double(sequences) / max(1e-9, elapsed), elapsed: elapsed))
            }
        }
        let seconds = Date().timeIntervalSince(start)
        return TrainingSummary(steps: step, firstLoss: losses.first ?? .nan, finalLoss: losses.last ?? .nan,
                               sequencesPerSecond: Double(sequences) / max(1e-9, seconds))
    }

    /// Saves the model and a copy of its vocabulary into `outputDirectory`.
    func save(_ model: BertModelBase, vocabPath: String) throws {
        try model.save(directory: outputDirectory)
        let copy = (outputDirectory as NSString).appendingPathComponent("vocab.txt")
        try? FileManager.default.removeItem(atPath: copy)
        try FileManager.default.copyItem(atPath: vocabPath, toPath: copy)
    }
}
