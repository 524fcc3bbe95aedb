import BERTKernels
import Foundation

/// Fine-tuning BERT on a GLUE sentence-pair task (MRPC), as Google's run_classifier.py / HF's run_glue.py do:
/// `[CLS] a [SEP] b [SEP]` features, the shared recipe of `FineTuningOptions`, accuracy and F1 on the dev set.
public struct ClassificationFineTuning: Sendable {
    public var options: FineTuningOptions
    /// Holds `train.tsv` and `dev.tsv` (GLUE's MRPC layout).
    public var dataDirectory: String

    /// run_classifier.py's defaults: sequence length 128, learning rate 2e-5, 3 epochs.
    public init(dataDirectory: String, outputDirectory: String) {
        self.dataDirectory = dataDirectory
        options = FineTuningOptions(outputDirectory: outputDirectory, maxSeqLength: 128, learningRate: 2e-5, epochs: 3)
    }

    /// Trains, evaluates on the dev set, saves the model (and vocabulary) to the output directory, and returns a
    /// summary: steps, first and last training loss, training sequences/s, dev accuracy and F1. `log` gets messages,
    /// `onStep` every step.
    public func run(log: (String) -> Void, onStep: (FineTuningOptions.Step) -> Void = { _ in }) throws -> [String: Any] {
        try options.validate()
        let (vocabPath, tokenizer) = try options.tokenizer()
        let labels = GLUE.mrpcLabels.count
        let model = try options.model(vocabulary: tokenizer.vocabulary, vocabPath: vocabPath, log: log,
                                      load: { try BertForSequenceClassification.load(directory: $0, labels: labels, backend: options.backend) },
                                      fresh: { try BertForSequenceClassification(config: $0, labels: labels, seed: options.seed,
                                                                                  backend: options.backend) })
        let train = try GLUE.features(for: GLUE.readMRPC(contentsOf: dataDirectory + "/train.tsv", set: "train"),
                                      labels: GLUE.mrpcLabels, tokenizer: tokenizer, maxSeqLength: options.maxSeqLength)
        let dev = try GLUE.features(for: GLUE.readMRPC(contentsOf: dataDirectory + "/dev.tsv", set: "dev"),
                                    labels: GLUE.mrpcLabels, tokenizer: tokenizer, maxSeqLength: options.maxSeqLength)
        guard !train.isEmpty else { throw BertError.invalidInput("\(dataDirectory)/train.tsv holds no examples") }
        let summary = try options.train(model, rows: train, log: log, onStep: onStep) { rows, dropout in
            let full = Self.batch(rows, withLabels: true)
            var streams = dropout
            streams.streamLength = full.seqLength   // masks drawn at full length: trimming keeps every bit
            return try model.forward(options.trimBatches ? full.trimmedForTraining() : full, dropout: streams)!.loss
        }
        let start = Date()
        let metrics = try Self.evaluate(model, dev, batchSize: 64, trim: options.trimBatches)
        let seconds = Date().timeIntervalSince(start)
        try options.save(model, vocabPath: vocabPath)
        return summary.json.merging(["eval_accuracy": metrics.accuracy, "eval_f1": metrics.f1, "eval_examples": metrics.count,
                                     "inference_sequences_per_second": Double(dev.count) / max(1e-9, seconds)]) { a, _ in a }
    }

    /// The predicted label ids of `features` (dropout off); `trim` runs each batch at its longest real sequence (the
    /// same logits, bit for bit).
    public static func predict(_ model: BertForSequenceClassification, _ features: [ClassificationFeature], batchSize: Int,
                               trim: Bool = true) throws -> [Int] {
        var predictions: [Int] = []
        for first in stride(from: 0, to: features.count, by: batchSize) {
            let rows = Array(features[first..<min(features.count, first + batchSize)])
            let full = batch(rows, withLabels: false)
            _ = try model.forward(trim ? full.trimmed() : full)
            let logits = model.logits(), L = model.labelCount
            for r in 0..<rows.count {
                let row = logits[(r * L)..<((r + 1) * L)]
                predictions.append(row.firstIndex(of: row.max()!)! - r * L)
            }
        }
        return predictions
    }

    static func evaluate(_ model: BertForSequenceClassification, _ features: [ClassificationFeature], batchSize: Int,
                         trim: Bool = true) throws -> ClassificationMetrics {
        ClassificationMetrics(predictions: try predict(model, features, batchSize: batchSize, trim: trim),
                              labels: features.map { Int($0.labelId) })
    }

    static func batch(_ rows: [ClassificationFeature], withLabels: Bool) -> ClassificationBatch {
        ClassificationBatch(batchSize: rows.count, seqLength: rows[0].inputIds.count, inputIds: rows.flatMap(\.inputIds),
                            segmentIds: rows.flatMap(\.segmentIds), inputMask: rows.flatMap(\.inputMask),
                            targets: withLabels ? rows.map(\.labelId) : nil)
    }
}
