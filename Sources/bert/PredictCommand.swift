import ArgumentParser
import BERT
import BERTKernels
import Foundation

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict", abstract: "Predict with a fine-tuned model.",
        subcommands: [PredictSQuADCommand.self, PredictMRPCCommand.self])
}

/// A fine-tuned model and the tokenizer of the `vocab.txt` beside it.
/// - Throws: when the checkpoint lacks the task head (a pre-trained one), naming the missing tensors, or when the
///   vocabulary's size is not the model's.
func loadFineTuned<Model: BertModelBase>(_ checkpoint: String, task: String, cased: Bool,
                                         load: (String) throws -> (Model, LoadReport)) throws -> (Model, BertTokenizer) {
    let (model, report) = try load(checkpoint)
    guard report.missing.isEmpty else {
        // Name what the checkpoint is, when its config.json says: "a BertForQuestionAnswering checkpoint".
        let config = FileManager.default.contents(atPath: checkpoint + "/config.json")
            .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        let kind = (config?["architectures"] as? [String])?.first.map { " (a \($0) checkpoint)" } ?? ""
        throw ValidationError("\(checkpoint)\(kind) has no \(task) head (\(report.missing.joined(separator: ", "))); "
                              + "fine-tune it with `bert finetune \(task)` first")
    }
    let vocabPath = checkpoint + "/vocab.txt", vocabulary = try Vocabulary(contentsOf: vocabPath)
    try vocabulary.requireSize(model.config.vocabSize, path: vocabPath, of: checkpoint)
    return (model, BertTokenizer(vocabulary: vocabulary, lowercase: !cased))
}

struct PredictSQuADCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "squad",
        abstract: "Answer the questions of a SQuAD v1.1 JSON; writes predictions.json and nbest_predictions.json into --output.",
        discussion: "Prints a JSON summary with inference sequences/s and, when the file has answers, the official EM/F1.")

    @Option(help: "A model from `bert finetune squad` (or an HF BertForQuestionAnswering directory with vocab.txt).") var checkpoint: String
    @Option(help: "The SQuAD v1.1 JSON to answer.") var predictFile: String
    @Option(help: "Directory for predictions.json and nbest_predictions.json.") var output: String
    @Flag(help: "Keep case (a cased vocabulary).") var cased = false
    @Option(parsing: .unconditional, help: "Sequence length.") var maxSeqLength = 384
    @OptionGroup var windows: SQuADFlags
    @Option(parsing: .unconditional, help: "Windows per batch.") var batchSize = 32
    @Option(parsing: .unconditional, help: "Threads (default: all cores).") var threads: Int?
    @OptionGroup var device: DeviceFlags

    func validate() throws {
        try FlagCheck.positive("--max-seq-length", maxSeqLength)
        try FlagCheck.positive("--batch-size", batchSize)
        try FlagCheck.positive("--threads", threads)
    }

    func run() throws {
        if let threads { Parallel.setThreadCount(threads) }
        let backend = try device.inferenceBackend()
        let (model, tokenizer) = try loadFineTuned(checkpoint, task: "squad", cased: cased) {
            try BertForQuestionAnswering.load(directory: $0, backend: backend)
        }
        let predicting = SQuADPredicting(
            builder: try SQuADFeatureBuilder(tokenizer: tokenizer, maxSeqLength: maxSeqLength, docStride: windows.docStride,
                                             maxQueryLength: windows.maxQueryLength),
            nBestSize: windows.nBestSize, maxAnswerLength: windows.maxAnswerLength, batchSize: batchSize)
        let dataset = try SQuADDataset(contentsOf: predictFile)
        try runTask { log, _ in try predicting.run(model, on: dataset, writingTo: output, log: log) }
    }
}

struct PredictMRPCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mrpc",
        abstract: "Label a GLUE MRPC TSV (test.tsv or dev.tsv); writes `index<TAB>prediction` lines (GLUE's submission format).")

    @Option(help: "A model from `bert finetune mrpc`.") var checkpoint: String
    @Option(help: "The TSV to label.") var predictFile: String
    @Option(help: "Where the predictions go.") var output: String
    @Option(help: "test (no labels; first column an index) or dev.") var set = "test"
    @Flag(help: "Keep case (a cased vocabulary).") var cased = false
    @Option(parsing: .unconditional, help: "Sequence length.") var maxSeqLength = 128
    @Option(parsing: .unconditional, help: "Sequences per batch.") var batchSize = 64
    @Option(parsing: .unconditional, help: "Threads (default: all cores).") var threads: Int?
    @OptionGroup var device: DeviceFlags
    @Flag(inversion: .prefixedNo, help: "Run each batch at its longest real sequence (the same predictions, without the padding's work).")
    var trimBatches = true

    func validate() throws {
        try FlagCheck.positive("--max-seq-length", maxSeqLength)
        try FlagCheck.positive("--batch-size", batchSize)
        try FlagCheck.positive("--threads", threads)
    }

    func run() throws {
        if let threads { Parallel.setThreadCount(threads) }
        let backend = try device.inferenceBackend()
        let (model, tokenizer) = try loadFineTuned(checkpoint, task: "mrpc", cased: cased) {
            try BertForSequenceClassification.load(directory: $0, backend: backend)
        }
        let examples = try GLUE.readMRPC(contentsOf: predictFile, set: set)
        let features = try GLUE.features(for: examples, labels: GLUE.mrpcLabels, tokenizer: tokenizer, maxSeqLength: maxSeqLength)
        let start = Date()
        let predictions = try ClassificationFineTuning.predict(model, features, batchSize: batchSize, trim: trimBatches)
        let seconds = Date().timeIntervalSince(start)
        let lines = ["index\tprediction"] + predictions.enumerated().map { "\($0.offset)\t\(GLUE.mrpcLabels[$0.element])" }
        try writeFileAtomically(Data((lines.joined(separator: "\n") + "\n").utf8), to: output)
        print(String(decoding: try JSONSerialization.data(withJSONObject: [
            "predictions": predictions.count, "output": output, "inference_sequences_per_second": Double(predictions.count) / max(1e-9, seconds),
        ], options: [.sortedKeys]), as: UTF8.self))
    }
}
