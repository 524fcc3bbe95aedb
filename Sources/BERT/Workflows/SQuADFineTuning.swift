import BERTKernels
import Foundation

/// Fine-tuning BERT for SQuAD v1.1 as Google's / NVIDIA's run_squad.py does: windows of `maxSeqLength` over each
/// paragraph (`SQuADFeatureBuilder`), loss (CE(start) + CE(end)) / 2, the shared recipe of `FineTuningOptions`;
/// then, given a prediction file, `predictions.json` and `nbest_predictions.json` in the output directory and, when
/// the file has answers, the official EM/F1.
public struct SQuADFineTuning: Sendable {
    public var options: FineTuningOptions
    /// A SQuAD v1.1 JSON file with answers.
    public var trainFile: String
    /// Predicted (and scored, when it has answers) after training; nil: no predictions.
    public var predictFile: String?
    public var docStride = 128
    public var maxQueryLength = 64
    public var nBestSize = 20
    public var maxAnswerLength = 30
    public var predictBatchSize = 32

    /// The run_squad defaults: sequence length 384, learning rate 3e-5, 2 epochs.
    public init(trainFile: String, outputDirectory: String) {
        self.trainFile = trainFile
        options = FineTuningOptions(outputDirectory: outputDirectory, maxSeqLength: 384, learningRate: 3e-5, epochs: 2)
    }

    /// Trains, saves the model (and vocabulary) to the output directory, predicts `predictFile` when given, and
    /// returns a summary: steps, first and last loss, training sequences/s, and the prediction's figures. `log` gets
    /// messages, `onStep` every step.
    public func run(log: (String) -> Void, onStep: (FineTuningOptions.Step) -> Void = { _ in }) throws -> [String: Any] {
        try options.validate()
        let (vocabPath, tokenizer) = try options.tokenizer()
        let builder = try SQuADFeatureBuilder(tokenizer: tokenizer, maxSeqLength: options.maxSeqLength,
                                              docStride: docStride, maxQueryLength: maxQueryLength)
        let (examples, skipped) = try SQuADDataset(contentsOf: trainFile).examples(training: true)
        if !skipped.isEmpty { log("left out \(skipped.count) questions whose answer text is not in their paragraph") }
        guard !examples.isEmpty else { throw BertError.invalidInput("\(trainFile) holds no answerable questions") }
        let predictData = try predictFile.map(SQuADDataset.init(contentsOf:))
        let model = try options.model(vocabulary: tokenizer.vocabulary, vocabPath: vocabPath, log: log,
                                      load: { try BertForQuestionAnswering.load(directory: $0, backend: options.backend) },
                                      fresh: { try BertForQuestionAnswering(config: $0, seed: options.seed, backend: options.backend) })
        let features = builder.features(for: examples, training: true)
        log("\(examples.count) questions → \(features.count) windows of \(options.maxSeqLength)")
        // Not trimmed: HF's span loss takes its softmax over the padded positions too (BatchTrimming.swift).
        let summary = try options.train(model, rows: features, log: log, onStep: onStep) { rows, dropout in
            try model.forward(SQuADPredicting.batch(rows, withAnswers: true), dropout: dropout)!.loss
        }
        try options.save(model, vocabPath: vocabPath)
        guard let predictData else { return summary.json }
        let predicting = SQuADPredicting(builder: builder, nBestSize: nBestSize, maxAnswerLength: maxAnswerLength,
                                         batchSize: predictBatchSize)
        let result = try predicting.run(model, on: predictData, writingTo: options.outputDirectory, log: log)
        return summary.json.merging(result) { a, _ in a }
    }
}

/// Predicting SQuAD with a question-answering model as run_squad.py's `do_predict`: features without labels, start
/// and end logits in evaluation mode, n-best post-processing, `predictions.json` and `nbest_predictions.json`.
public struct SQuADPredicting: Sendable {
    public var builder: SQuADFeatureBuilder
    public var nBestSize: Int
    public var maxAnswerLength: Int
    public var batchSize: Int

    public init(builder: SQuADFeatureBuilder, nBestSize: Int = 20, maxAnswerLength: Int = 30, batchSize: Int = 32) {
        self.builder = builder
        self.nBestSize = nBestSize
        self.maxAnswerLength = maxAnswerLength
        self.batchSize = batchSize
    }

    /// Predicts every question of `dataset`, writes the two files into `directory`, and returns a summary: questions,
    /// windows, inference sequences/s (the model's forwards only) and, when every question has answers, the official
    /// `exact_match` and `f1`.
    public func run(_ model: BertForQuestionAnswering, on dataset: SQuADDataset, writingTo directory: String,
                    log: (String) -> Void) throws -> [String: Any] {
        guard batchSize > 0 else { throw BertError.invalidInput("--predict-batch-size must be positive (got \(batchSize))") }
        let examples = try dataset.examples(training: false).examples
        let features = builder.features(for: examples, training: false)
        log("predicting \(examples.count) questions (\(features.count) windows)")
        var starts: [[Float]] = [], ends: [[Float]] = []
        let start = Date()
        for first in stride(from: 0, to: features.count, by: batchSize) {
            let rows = Array(features[first..<min(features.count, first + batchSize)])
            _ = try model.forward(Self.batch(rows, withAnswers: false))
            let s = model.startLogits(), e = model.endLogits(), S = builder.maxSeqLength
            for r in rows.indices {
                starts.append(Array(s[(r * S)..<((r + 1) * S)]))
                ends.append(Array(e[(r * S)..<((r + 1) * S)]))
            }
        }
        let seconds = Date().timeIntervalSince(start)
        let post = SQuADPostProcessor(vocabulary: builder.tokenizer.vocabulary, lowercase: builder.tokenizer.lowercase,
                                      nBestSize: nBestSize, maxAnswerLength: maxAnswerLength)
        let predictions = post.predictions(examples: examples, features: features, startLogits: starts, endLogits: ends)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try SQuADPostProcessor.write(predictions, to: directory)
        var summary: [String: Any] = ["questions": predictions.count, "windows": features.count,
                                      "inference_sequences_per_second": Double(features.count) / max(1e-9, seconds)]
        if !examples.isEmpty, examples.allSatisfy({ !$0.answers.isEmpty }) {
            let score = SQuADEvaluation.evaluate(dataset: dataset, predictions: Dictionary(
                predictions.map { ($0.id, $0.text) }, uniquingKeysWith: { a, _ in a }))
            summary["exact_match"] = score.exactMatch
            summary["f1"] = score.f1
        }
        return summary
    }

    /// The batch of `rows`; with `withAnswers`, their answer positions as targets.
    static func batch(_ rows: [SQuADFeature], withAnswers: Bool) -> QuestionAnsweringBatch {
        QuestionAnsweringBatch(
            batchSize: rows.count, seqLength: rows[0].inputIds.count, inputIds: rows.flatMap(\.inputIds),
            segmentIds: rows.flatMap(\.segmentIds), inputMask: rows.flatMap(\.inputMask),
            targets: withAnswers ? AnswerSpans(startPositions: rows.map { Int32($0.startPosition) },
                                               endPositions: rows.map { Int32($0.endPosition) }) : nil)
    }
}
