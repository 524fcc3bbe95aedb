import ArgumentParser
import BERT
import BERTKernels
import Foundation

struct FinetuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune", abstract: "Fine-tune a pre-trained checkpoint on a task.",
        subcommands: [FinetuneMRPCCommand.self])
}

struct FinetuneMRPCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mrpc",
        abstract: "Fine-tune on GLUE MRPC (train.tsv, dev.tsv in --data-dir); prints a JSON summary with dev accuracy and F1.")

    @Option(help: "Starting weights (ours or a Hugging Face directory); the classifier starts fresh.") var initCheckpoint: String?
    @Option(help: "Start from scratch with this preset instead (for experiments).") var model: String?
    @Option(help: "Start from scratch with this config instead.") var configFile: String?
    @Option(help: "Directory holding train.tsv and dev.tsv.") var dataDir: String
    @Option(help: "Where the fine-tuned model goes (a new directory).") var outputDir: String
    @Option(help: "The vocabulary (default: vocab.txt beside --init-checkpoint).") var vocabFile: String?
    @Flag(help: "Keep case (a cased vocabulary).") var cased = false
    @Option(help: "Sequence length.") var maxSeqLength = 128
    @Option(help: "Sequences per step.") var trainBatchSize = 32
    @Option(help: "Peak learning rate.") var learningRate = 2e-5
    @Option(help: "Epochs (fractions allowed).") var numTrainEpochs = 3.0
    @Option(help: "Fraction of the steps spent warming up.") var warmupProportion = 0.1
    @Option(help: "Seed of shuffling, dropout and the fresh classifier.") var seed: UInt64 = 42
    @Option(help: "Threads (default: all cores).") var threads: Int?

    func run() throws {
        if let threads { Parallel.setThreadCount(threads) }
        var o = ClassificationFineTuning(dataDirectory: dataDir, outputDirectory: outputDir)
        o.initCheckpoint = initCheckpoint
        if let configFile { o.config = try BertConfig.load(contentsOf: configFile) } else if let model { o.config = try BertConfig.preset(model) }
        o.vocabFile = vocabFile
        o.lowercase = !cased
        o.maxSeqLength = maxSeqLength
        o.trainBatchSize = trainBatchSize
        o.learningRate = learningRate
        o.epochs = numTrainEpochs
        o.warmupProportion = warmupProportion
        o.seed = seed
        let summary = try o.run { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
        print(String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys]), as: UTF8.self))
    }
}

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict", abstract: "Predict with a fine-tuned model.", subcommands: [PredictMRPCCommand.self])
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
    @Option(help: "Sequence length.") var maxSeqLength = 128
    @Option(help: "Sequences per batch.") var batchSize = 64
    @Option(help: "Threads (default: all cores).") var threads: Int?

    func run() throws {
        if let threads { Parallel.setThreadCount(threads) }
        let (model, _) = try BertForSequenceClassification.load(directory: checkpoint)
        let tokenizer = BertTokenizer(vocabulary: try Vocabulary(contentsOf: checkpoint + "/vocab.txt"), lowercase: !cased)
        let examples = try GLUE.readMRPC(contentsOf: predictFile, set: set)
        let features = try GLUE.features(for: examples, labels: GLUE.mrpcLabels, tokenizer: tokenizer, maxSeqLength: maxSeqLength)
        let start = Date()
        let predictions = try ClassificationFineTuning.predict(model, features, batchSize: batchSize)
        let seconds = Date().timeIntervalSince(start)
        let lines = ["index\tprediction"] + predictions.enumerated().map { "\($0.offset)\t\(GLUE.mrpcLabels[$0.element])" }
        try writeFileAtomically(Data((lines.joined(separator: "\n") + "\n").utf8), to: output)
        print(String(decoding: try JSONSerialization.data(withJSONObject: [
            "predictions": predictions.count, "output": output, "inference_sequences_per_second": Double(predictions.count) / max(1e-9, seconds),
        ], options: [.sortedKeys]), as: UTF8.self))
    }
}
