import ArgumentParser
import BERT
import BERTKernels
import Foundation

struct FinetuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune", abstract: "Fine-tune a pre-trained checkpoint on a task.",
        subcommands: [FinetuneSQuADCommand.self, FinetuneMRPCCommand.self])
}

/// The flags every fine-tuning task takes; those left out keep the task's defaults.
struct FineTuningFlags: ParsableArguments {
    @Option(help: "Starting weights (ours or a Hugging Face directory); the task head starts fresh.") var initCheckpoint: String?
    @Option(help: "Start from scratch with this preset instead (for experiments).") var model: String?
    @Option(help: "Start from scratch with this config instead.") var configFile: String?
    @Option(help: "Where the fine-tuned model goes (a new directory).") var outputDir: String
    @Option(help: "The vocabulary (default: vocab.txt beside --init-checkpoint).") var vocabFile: String?
    @Flag(help: "Keep case (a cased vocabulary).") var cased = false
    @Option(parsing: .unconditional, help: "Sequence length (default: squad 384, mrpc 128).") var maxSeqLength: Int?
    @Option(parsing: .unconditional, help: "Sequences per step.") var trainBatchSize = 32
    @Option(parsing: .unconditional, help: "Peak learning rate (default: squad 3e-5, mrpc 2e-5).") var learningRate: Double?
    @Option(parsing: .unconditional, help: "Epochs, fractions allowed (default: squad 2, mrpc 3).") var numTrainEpochs: Double?
    @Option(parsing: .unconditional, help: "Fraction of the steps spent warming up.") var warmupProportion = 0.1
    @Option(parsing: .unconditional, help: "Seed of shuffling, dropout and the fresh head.") var seed: UInt64 = 42
    @Option(parsing: .unconditional, help: "Threads (default: all cores).") var threads: Int?
    @OptionGroup var device: DeviceFlags
    @Flag(help: "Activation checkpointing: keep only each layer's output and recompute the rest in the backward (same gradients, less memory).")
    var checkpointActivations = false
    @Flag(inversion: .prefixedNo, help: "Run each evaluation batch, and each MRPC training batch, at its longest real sequence (the same results, without the padding's work).")
    var trimBatches = true

    func validate() throws {
        try FlagCheck.positive("--max-seq-length", maxSeqLength)
        try FlagCheck.positive("--train-batch-size", trainBatchSize)
        try FlagCheck.positive("--learning-rate", learningRate)
        try FlagCheck.positive("--num-train-epochs", numTrainEpochs)
        try FlagCheck.within("--warmup-proportion", warmupProportion, 0...1)
        try FlagCheck.positive("--threads", threads)
    }

    /// `options` with these flags applied over the task's defaults; also sets the thread count.
    func applied(to defaults: FineTuningOptions) throws -> FineTuningOptions {
        if let threads { Parallel.setThreadCount(threads) }
        var o = defaults
        o.initCheckpoint = initCheckpoint
        if let configFile { o.config = try BertConfig.load(contentsOf: configFile) } else if let model { o.config = try BertConfig.preset(model) }
        o.vocabFile = vocabFile
        o.lowercase = !cased
        o.maxSeqLength = maxSeqLength ?? o.maxSeqLength
        o.trainBatchSize = trainBatchSize
        o.learningRate = learningRate ?? o.learningRate
        o.epochs = numTrainEpochs ?? o.epochs
        o.warmupProportion = warmupProportion
        o.seed = seed
        o.backend = try device.backend()
        o.checkpointActivations = checkpointActivations
        o.trimBatches = trimBatches
        return o
    }
}

/// Runs a fine-tuning or prediction task with a progress bar (lines without a terminal), then prints its summary as
/// one sorted JSON line.
func runTask(_ body: (_ log: (String) -> Void, _ onStep: (FineTuningOptions.Step) -> Void) throws -> [String: Any]) throws {
    let progress = Progress()
    let summary = try body(progress.message, progress.step)
    progress.finish()
    progress.line(String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys]), as: UTF8.self))
}

/// run_squad.py's windowing and answer flags, shared by fine-tuning and prediction.
struct SQuADFlags: ParsableArguments {
    @Option(parsing: .unconditional, help: "Stride between document windows, in WordPieces.") var docStride = 128
    @Option(parsing: .unconditional, help: "Longest question, in WordPieces.") var maxQueryLength = 64
    @Option(parsing: .unconditional, help: "Candidates kept per question.") var nBestSize = 20
    @Option(parsing: .unconditional, help: "Longest answer, in WordPieces.") var maxAnswerLength = 30

    func validate() throws {
        try FlagCheck.positive("--doc-stride", docStride)
        try FlagCheck.positive("--max-query-length", maxQueryLength)
        try FlagCheck.positive("--n-best-size", nBestSize)
        try FlagCheck.positive("--max-answer-length", maxAnswerLength)
    }
}

struct FinetuneSQuADCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "squad",
        abstract: "Fine-tune on SQuAD v1.1 as run_squad.py; with --predict-file, also write predictions.json and score it.")

    @OptionGroup var common: FineTuningFlags
    @Option(help: "SQuAD v1.1 training JSON (e.g. train-v1.1.json).") var trainFile: String
    @Option(help: "SQuAD v1.1 JSON to predict after training (e.g. dev-v1.1.json); scored when it has answers.") var predictFile: String?
    @OptionGroup var windows: SQuADFlags
    @Option(parsing: .unconditional, help: "Windows per inference batch.") var predictBatchSize = 32

    func validate() throws { try FlagCheck.positive("--predict-batch-size", predictBatchSize) }

    func run() throws {
        var task = SQuADFineTuning(trainFile: trainFile, outputDirectory: common.outputDir)
        task.options = try common.applied(to: task.options)
        task.predictFile = predictFile
        task.docStride = windows.docStride
        task.maxQueryLength = windows.maxQueryLength
        task.nBestSize = windows.nBestSize
        task.maxAnswerLength = windows.maxAnswerLength
        task.predictBatchSize = predictBatchSize
        try runTask { try task.run(log: $0, onStep: $1) }
    }
}

struct FinetuneMRPCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mrpc",
        abstract: "Fine-tune on GLUE MRPC (train.tsv, dev.tsv in --data-dir); prints a JSON summary with dev accuracy and F1.")

    @OptionGroup var common: FineTuningFlags
    @Option(help: "Directory holding train.tsv and dev.tsv.") var dataDir: String

    func run() throws {
        var task = ClassificationFineTuning(dataDirectory: dataDir, outputDirectory: common.outputDir)
        task.options = try common.applied(to: task.options)
        try runTask { try task.run(log: $0, onStep: $1) }
    }
}
