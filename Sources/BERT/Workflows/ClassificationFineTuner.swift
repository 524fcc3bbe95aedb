import BERTKernels
import Foundation

/// Fine-tuning BERT on a GLUE sentence-pair task (MRPC), as Google's run_classifier.py / HF's run_glue.py do:
/// `[CLS] a [SEP] b [SEP]` features, AdamW (torch semantics, weight decay 0.01 off biases and LayerNorm, ε 1e-6, global
/// clip 1.0), linear warmup then linear decay, seeded shuffling each epoch, dropout on; accuracy and F1 on the dev set.
public struct ClassificationFineTuning: Sendable {
    /// Weights to start from (ours or HF's; the classifier starts fresh). Nil: a fresh model from `config`.
    public var initCheckpoint: String?
    public var config: BertConfig?
    /// Holds `train.tsv` and `dev.tsv` (GLUE's MRPC layout).
    public var dataDirectory: String
    public var outputDirectory: String
    /// Default: the `vocab.txt` beside the initial checkpoint.
    public var vocabFile: String?
    public var lowercase = true
    public var maxSeqLength = 128
    public var trainBatchSize = 32
    public var learningRate = 2e-5
    public var epochs = 3.0
    public var warmupProportion = 0.1
    public var seed: UInt64 = 42

    public init(dataDirectory: String, outputDirectory: String) {
        self.dataDirectory = dataDirectory
        self.outputDirectory = outputDirectory
    }

    /// Trains, evaluates on the dev set, saves the model (and vocabulary) to `outputDirectory`, and returns a summary:
    /// steps, first and last training loss, training sequences/s, dev accuracy and F1.
    public func run(log: (String) -> Void) throws -> [String: Any] {
        let fm = FileManager.default
        if let entries = try? fm.contentsOfDirectory(atPath: outputDirectory), !entries.isEmpty {
            throw BertError.invalidInput("--output-dir \(outputDirectory) is not empty; choose a new directory")
        }
        guard let vocabPath = vocabFile ?? initCheckpoint.map({ ($0 as NSString).appendingPathComponent("vocab.txt") }),
              fm.fileExists(atPath: vocabPath) else {
            throw BertError.invalidInput("no vocabulary: pass --vocab-file (the checkpoint directory has no vocab.txt)")
        }
        let tokenizer = BertTokenizer(vocabulary: try Vocabulary(contentsOf: vocabPath), lowercase: lowercase)
        let model: BertForSequenceClassification
        if let initCheckpoint {
            let (loaded, report) = try BertForSequenceClassification.load(directory: initCheckpoint, labels: GLUE.mrpcLabels.count)
            model = loaded
            if !report.missing.isEmpty { log("initialised fresh: \(report.missing.joined(separator: ", "))") }
        } else {
            guard var config else { throw BertError.invalidInput("give --init-checkpoint (or --model/--config-file to start from scratch)") }
            config.vocabSize = tokenizer.vocabulary.count
            model = try BertForSequenceClassification(config: config, labels: GLUE.mrpcLabels.count, seed: seed)
        }
        guard tokenizer.vocabulary.count == model.config.vocabSize else {
            throw BertError.invalidInput("\(vocabPath) has \(tokenizer.vocabulary.count) tokens but the model's vocab_size is \(model.config.vocabSize)")
        }
        let train = try GLUE.features(for: GLUE.readMRPC(contentsOf: dataDirectory + "/train.tsv", set: "train"),
                                      labels: GLUE.mrpcLabels, tokenizer: tokenizer, maxSeqLength: maxSeqLength)
        let dev = try GLUE.features(for: GLUE.readMRPC(contentsOf: dataDirectory + "/dev.tsv", set: "dev"),
                                    labels: GLUE.mrpcLabels, tokenizer: tokenizer, maxSeqLength: maxSeqLength)
        guard !train.isEmpty else { throw BertError.invalidInput("\(dataDirectory)/train.tsv holds no examples") }

        var settings = OptimizerSettings(kind: .adamw)
        settings.epsilon = 1e-6
        let optimizer = Optimizer(settings: settings, segments: model.layout.optimizerSegments)
        let stepsPerEpoch = (train.count + trainBatchSize - 1) / trainBatchSize
        let totalSteps = max(1, Int((Double(stepsPerEpoch) * epochs).rounded(.up)))
        let schedule = LearningRateSchedule(kind: .linear, baseRate: learningRate, warmupProportion: warmupProportion,
                                            totalSteps: totalSteps)
        log("fine-tuning on \(train.count) pairs: \(totalSteps) steps of \(trainBatchSize), lr \(learningRate)")
        var step = 0, losses: [Float] = [], sequences = 0
        let start = Date()
        while step < totalSteps {
            var random = DataRandom(seed: seed, streams: [3, UInt64(step / stepsPerEpoch)])
            let order = random.permutation(train.count)
            for first in stride(from: 0, to: train.count, by: trainBatchSize) where step < totalSteps {
                let rows = order[first..<min(train.count, first + trainBatchSize)].map { train[$0] }
                model.zeroGradients()
                guard let l = try model.forward(Self.batch(rows, withLabels: true), dropout: DropoutStreams(seed: seed, step: UInt64(step))),
                      l.loss.isFinite else { throw BertError.invalidInput("step \(step + 1): the loss is not finite; lower --learning-rate") }
                model.backward()
                _ = try optimizer.step(parameters: model.parameters.base, gradients: model.gradients.base,
                                       learningRate: schedule.rate(at: step), step: step + 1)
                step += 1
                sequences += rows.count
                losses.append(l.loss)
                if step % 10 == 0 || step == totalSteps { log(String(format: "step %d/%d loss %.4f", step, totalSteps, l.loss)) }
            }
        }
        let elapsed = Date().timeIntervalSince(start)
        let metrics = try Self.evaluate(model, dev, batchSize: trainBatchSize)
        try model.save(directory: outputDirectory)
        try fm.copyItem(atPath: vocabPath, toPath: outputDirectory + "/vocab.txt")
        return ["steps": step, "first_loss": Double(losses.first ?? .nan), "final_loss": Double(losses.last ?? .nan),
                "training_sequences_per_second": Double(sequences) / max(1e-9, elapsed),
                "eval_accuracy": metrics.accuracy, "eval_f1": metrics.f1, "eval_examples": metrics.count]
    }

    /// The predicted label ids of `features` (dropout off).
    public static func predict(_ model: BertForSequenceClassification, _ features: [ClassificationFeature], batchSize: Int) throws -> [Int] {
        var predictions: [Int] = []
        for first in stride(from: 0, to: features.count, by: batchSize) {
            let rows = Array(features[first..<min(features.count, first + batchSize)])
            _ = try model.forward(batch(rows, withLabels: false))
            let logits = model.logits(), L = model.labelCount
            for r in 0..<rows.count {
                let row = logits[(r * L)..<((r + 1) * L)]
                predictions.append(row.firstIndex(of: row.max()!)! - r * L)
            }
        }
        return predictions
    }

    static func evaluate(_ model: BertForSequenceClassification, _ features: [ClassificationFeature], batchSize: Int) throws -> ClassificationMetrics {
        ClassificationMetrics(predictions: try predict(model, features, batchSize: batchSize), labels: features.map { Int($0.labelId) })
    }

    static func batch(_ rows: [ClassificationFeature], withLabels: Bool) -> ClassificationBatch {
        ClassificationBatch(batchSize: rows.count, seqLength: rows[0].inputIds.count, inputIds: rows.flatMap(\.inputIds),
                            segmentIds: rows.flatMap(\.segmentIds), inputMask: rows.flatMap(\.inputMask),
                            targets: withLabels ? rows.map(\.labelId) : nil)
    }
}
