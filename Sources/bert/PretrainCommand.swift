import ArgumentParser
import BERT
import BERTKernels
import Foundation

struct PretrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain",
        abstract: "Pre-train BERT (masked LM + next sentence prediction) on shards from `bert prepare`.",
        discussion: """
        Flags follow NVIDIA's run_pretraining.py. Note: --train-batch-size is the GLOBAL batch per optimizer step \
        (DeepSpeed's meaning), split over ranks and --gradient-accumulation-steps micro-batches; NVIDIA's number is \
        per GPU. Checkpoints go to OUTPUT/ckpt_<step>/ (model.safetensors, config.json, optimizer.safetensors, \
        trainer_state.json); --resume continues from the newest valid one, bit for bit.
        """)

    @Option(help: "Directory of training shards (files named *training*.hdf5).") var inputDir: String
    @Option(help: "Where checkpoints go.") var outputDir: String
    @Option(help: "Model preset (bert-tiny … bert-5b), when starting from scratch.") var model: String?
    @Option(help: "A bert_config.json / config.json, when starting from scratch.") var configFile: String?
    @Option(help: "With --model: the vocabulary the shards were made with (sets vocab_size).") var vocabFile: String?
    @Option(help: "Start from these weights (ours or a Hugging Face directory) with a fresh step count.") var initCheckpoint: String?
    @Option(parsing: .unconditional, help: "Sequence length; must match the shards.") var maxSeqLength = 128
    @Option(parsing: .unconditional, help: "Masked positions per sequence; must match the shards.") var maxPredictionsPerSeq = 20
    @Option(parsing: .unconditional, help: "Global batch per optimizer step (all ranks × accumulation × micro-batch).") var trainBatchSize = 256
    @Option(parsing: .unconditional, help: "Micro-batches per optimizer step on each rank.") var gradientAccumulationSteps = 1
    @Option(parsing: .unconditional, help: "Peak learning rate.") var learningRate = 6e-3
    @Option(parsing: .unconditional, help: "Fraction of --max-steps spent warming up.") var warmupProportion = 0.2843
    @Option(parsing: .unconditional, help: "Optimizer steps (of this phase).") var maxSteps = 1000
    @Option(parsing: .unconditional, help: "Stop after this many steps of this invocation (with a checkpoint); the schedule still spans --max-steps.") var stepsThisRun: Int?
    @Option(help: "poly (NVIDIA), linear or constant.") var lrSchedule = "poly"
    @Option(parsing: .unconditional, help: "The poly schedule's exponent.") var polyPower = 0.5
    @Option(help: "lamb, nvlamb, lans, adamw or adamw-nobc.") var optimizer = "lamb"
    @Option(parsing: .unconditional, help: "Decoupled weight decay (not on biases and LayerNorm).") var weightDecay: Float = 0.01
    @Option(parsing: .unconditional, help: "Clip the global gradient norm to this (0: no clipping).") var maxGradNorm: Float = 1.0
    @Option(parsing: .unconditional, help: "Checkpoint every this many steps (and at the end).") var numStepsPerCheckpoint = 200
    @Option(parsing: .unconditional, help: "Checkpoints to keep.") var keepCheckpoints = 3
    @Flag(help: "Continue from the newest valid checkpoint in --output-dir.") var resume = false
    @Flag(help: "With --resume: accept a learning rate, schedule, warm-up, weight decay or clipping other than the checkpoint's.")
    var allowRecipeChange = false
    @Flag(help: "Phase 2: fresh step count and schedule from phase 1's checkpoint, moments kept.") var phase2 = false
    @Option(parsing: .unconditional, help: "The step phase 1 ended at (with --phase2).") var phase1EndStep: Int?
    @Option(parsing: .unconditional, help: "Seed of the data order, dropout and initialisation (default 12345; a resumed run keeps its own).") var seed: UInt64?
    @Option(help: "Shards to evaluate MLM/NSP accuracy on.") var evalDir: String?
    @Option(parsing: .unconditional, help: "Evaluate every this many steps (and at the end).") var evalEvery = 0
    @Option(parsing: .unconditional, help: "Sequences per evaluation batch (default: the micro-batch).") var evalBatchSize: Int?
    @Option(parsing: .unconditional, help: "Stop once the eval MLM accuracy reaches this.") var targetMlmAccuracy: Double?
    @Option(help: "Append one JSON object per logged step to this file.") var jsonSummary: String?
    @Option(parsing: .unconditional, help: "Log every this many steps.") var logFreq = 1
    @Option(parsing: .unconditional, help: "ZeRO stage under mpirun: 0 data parallel, 1 optimizer state sharded, 2 gradients sharded too.") var zeroStage = 0
    @Option(parsing: .unconditional, help: "Threads per process (default: the cores, shared among the ranks mpirun starts on this machine).")
    var threads: Int?
    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds a rank waits at a collective for the others, or for the data loader, before the job stops naming the stalled rank and the step (0: for ever).",
                                                        discussion: "Rank 0's evaluations and checkpoint writes count against it.", valueName: "seconds"))
    var collectiveTimeout = 600.0
    @OptionGroup var device: DeviceFlags
    @Flag(help: "Activation checkpointing (NVIDIA's --checkpoint_activations): keep only each layer's output and recompute the rest in the backward; same gradients, less memory, one more encoder forward per step.")
    var checkpointActivations = false
    @Flag(help: "Read packed shards (`bert pack`; --max-predictions-per-seq is then their P' = P + K). Without it packed shards are refused, and with it unpacked ones.")
    var packed = false

    func validate() throws {
        try FlagCheck.nonNegative("--collective-timeout", collectiveTimeout)
        try FlagCheck.positive("--max-seq-length", maxSeqLength)
        try FlagCheck.positive("--max-predictions-per-seq", maxPredictionsPerSeq)
        try FlagCheck.positive("--train-batch-size", trainBatchSize)
        try FlagCheck.positive("--gradient-accumulation-steps", gradientAccumulationSteps)
        try FlagCheck.positive("--learning-rate", learningRate)
        try FlagCheck.within("--warmup-proportion", warmupProportion, 0...1)
        try FlagCheck.positive("--max-steps", maxSteps)
        try FlagCheck.positive("--steps-this-run", stepsThisRun)
        try FlagCheck.nonNegative("--poly-power", polyPower)
        try FlagCheck.nonNegative("--weight-decay", Double(weightDecay))
        try FlagCheck.nonNegative("--max-grad-norm", Double(maxGradNorm))
        try FlagCheck.positive("--num-steps-per-checkpoint", numStepsPerCheckpoint)
        try FlagCheck.positive("--keep-checkpoints", keepCheckpoints)
        try FlagCheck.positive("--phase1-end-step", phase1EndStep)
        try FlagCheck.atLeast("--eval-every", evalEvery, 0)
        try FlagCheck.positive("--eval-batch-size", evalBatchSize)
        try FlagCheck.within("--target-mlm-accuracy", targetMlmAccuracy, 0...1, open: true)
        try FlagCheck.positive("--log-freq", logFreq)
        try FlagCheck.positive("--threads", threads)
    }

    func run() throws {
        if let threads { Parallel.setThreadCount(threads) }
        // Under mpirun every process is one rank, with no flag needed; any error on any rank stops them all.
        let communicator = try Communicators.detect()
        if communicator.size == 1 { try train(communicator) } else { communicator.abortingOnError { try train(communicator) } }
    }

    private func train(_ communicator: any Communicator) throws {
        var o = PretrainingOptions(inputDirectory: inputDir, outputDirectory: outputDir)
        if let configFile { o.config = try BertConfig.load(contentsOf: configFile) } else if let model { o.config = try BertConfig.preset(model) }
        if model != nil && configFile != nil { throw ValidationError("give --model or --config-file, not both") }
        if let vocabFile {
            guard o.config != nil else { throw ValidationError("--vocab-file sizes a --model or --config-file architecture") }
            o.config!.vocabSize = try Vocabulary(contentsOf: vocabFile).count
        }
        guard let kind = OptimizerKind(rawValue: optimizer) else {
            throw ValidationError("--optimizer must be one of \(OptimizerKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let schedule = LearningRateSchedule.Kind(rawValue: lrSchedule) else {
            throw ValidationError("--lr-schedule must be poly, linear or constant")
        }
        o.initCheckpoint = initCheckpoint
        o.backend = try device.backend()
        o.checkpointActivations = checkpointActivations
        o.packed = packed
        o.maxSeqLength = maxSeqLength
        o.maxPredictionsPerSeq = maxPredictionsPerSeq
        o.trainBatchSize = trainBatchSize
        o.gradientAccumulationSteps = gradientAccumulationSteps
        o.learningRate = learningRate
        o.warmupProportion = warmupProportion
        o.maxSteps = maxSteps
        o.stepsThisRun = stepsThisRun
        o.schedule = schedule
        o.scheduleDegree = polyPower
        o.optimizer = OptimizerSettings(kind: kind)
        o.optimizer.weightDecay = weightDecay
        o.optimizer.maxGradNorm = maxGradNorm > 0 ? maxGradNorm : nil
        o.numStepsPerCheckpoint = numStepsPerCheckpoint
        o.keepCheckpoints = keepCheckpoints
        o.resume = resume
        o.allowRecipeChange = allowRecipeChange
        o.phase2 = phase2
        o.phase1EndStep = phase1EndStep
        o.seed = seed
        o.evalDirectory = evalDir
        o.evalEvery = evalEvery
        o.evalBatchSize = evalBatchSize
        o.targetMLMAccuracy = targetMlmAccuracy
        o.jsonSummary = jsonSummary
        o.logFrequency = logFreq
        o.zeroStage = zeroStage
        o.collectiveTimeout = collectiveTimeout

        let progress = Progress(silent: communicator.rank != 0)
        let trainer = try Pretrainer(options: o, communicator: communicator, warn: { progress.message($0) })
        trainer.onStep = progress.step
        trainer.onMessage = progress.message
        trainer.onEvaluation = { step, e in
            progress.message(String(format: "eval at step %d: mlm_accuracy %.4f (most frequent token: %.4f) mlm_loss %.4f nsp_accuracy %.4f nsp_loss %.4f",
                                    step, e.mlmAccuracy, e.mlmBaselineAccuracy, e.mlmLoss, e.nspAccuracy, e.nspLoss))
        }
        let summary = try trainer.run()
        progress.finish()
        guard communicator.rank == 0 else { return }
        progress.line(String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys]), as: UTF8.self))
    }
}

struct EvalMLMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval-mlm",
        abstract: "Masked-LM and next-sentence loss and accuracy of a checkpoint on shards; prints one JSON object.")

    @Option(help: "A checkpoint directory (ours or Hugging Face's BertForPreTraining).") var checkpoint: String
    @Option(help: "Directory of shards to evaluate on.") var inputDir: String
    @Option(parsing: .unconditional, help: "Sequences per batch.") var batchSize = 32
    @Option(parsing: .unconditional, help: "Threads (default: all cores).") var threads: Int?
    @OptionGroup var device: DeviceFlags
    @Flag(inversion: .prefixedNo, help: "Run each batch at its longest real sequence (the same results, without the padding's work).")
    var trimBatches = true

    func validate() throws {
        try FlagCheck.positive("--batch-size", batchSize)
        try FlagCheck.positive("--threads", threads)
    }

    func run() throws {
        if let threads { Parallel.setThreadCount(threads) }
        let (model, _) = try BertForPreTraining.load(directory: checkpoint, backend: try device.inferenceBackend())
        let evaluator = try MLMEvaluator(directory: inputDir, vocabSize: model.config.vocabSize)
        let result = try evaluator.evaluate(model, batchSize: batchSize, trim: trimBatches)
        print(String(decoding: try JSONSerialization.data(withJSONObject: result.json(), options: [.sortedKeys]), as: UTF8.self))
    }
}
