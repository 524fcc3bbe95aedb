import BERTKernels
import Foundation

/// Everything `bert pretrain` is told: NVIDIA run_pretraining.py's options under their names.
public struct PretrainingOptions: Sendable {
    public var inputDirectory: String
    public var outputDirectory: String
    /// The architecture when starting from scratch (a checkpoint brings its own).
    public var config: BertConfig?
    public var initCheckpoint: String?
    public var maxSeqLength = 128
    public var maxPredictionsPerSeq = 20
    /// The global batch per optimizer step (over all ranks and accumulation steps).
    public var trainBatchSize = 256
    public var gradientAccumulationSteps = 1
    public var learningRate = 6e-3
    public var warmupProportion = 0.2843
    public var maxSteps = 1000
    /// Stop (with a checkpoint) after this many steps of this invocation; the schedule still spans `maxSteps`.
    public var stepsThisRun: Int?
    public var schedule: LearningRateSchedule.Kind = .poly
    public var scheduleDegree = 0.5
    public var optimizer = OptimizerSettings(kind: .lamb)
    public var numStepsPerCheckpoint = 200
    public var keepCheckpoints = 3
    public var resume = false
    /// With `resume`: accept a learning rate, schedule, weight decay or clipping other than the checkpoint's.
    public var allowRecipeChange = false
    public var phase2 = false
    public var phase1EndStep: Int?
    /// Nil: 12345 for a new run, the checkpoint's when resuming (a resumed run keeps its seed).
    public var seed: UInt64? = nil
    public var evalDirectory: String?
    public var evalEvery = 0
    public var evalBatchSize: Int?
    public var targetMLMAccuracy: Double?
    public var jsonSummary: String?
    public var logFrequency = 1
    /// Seconds a rank waits at a collective for the others, or for the data loader to deliver a step's batches,
    /// before the job stops naming the stalled rank and the step (0: wait for ever). Rank 0's evaluations and
    /// checkpoint writes happen while the others wait, so it must exceed the longest of those.
    public var collectiveTimeout = 600.0
    /// 0: data parallel (all-reduce of the gradients); 1: optimizer state sharded (reduce-scatter, each rank updates its
    /// slice, all-gather of the parameters); 2: gradients sharded too (reduce-scatter after every micro-batch).
    public var zeroStage = 0
    /// Where the model's tensors live and its kernels run (`--device`).
    public var backend: any Backend = CPUBackend.shared
    /// Recompute each layer's activations in the backward instead of keeping them (`--checkpoint-activations`).
    public var checkpointActivations = false
    /// Train on packed shards (`bert pack`, `--packed`); shards of NVIDIA's layout are then refused, and the reverse.
    public var packed = false
    /// Set from the communicator by `Pretrainer`.
    public internal(set) var worldSize = 1

    public init(inputDirectory: String, outputDirectory: String) {
        self.inputDirectory = inputDirectory
        self.outputDirectory = outputDirectory
    }

    /// Sequences per micro-batch on each rank.
    public var microBatchSize: Int { trainBatchSize / (worldSize * gradientAccumulationSteps) }
}

/// One optimizer step's numbers, for logs and the progress display.
public struct StepReport: Sendable {
    public var step: Int
    public var totalSteps: Int
    public var loss: Float
    public var mlmLoss: Float
    public var nspLoss: Float
    public var learningRate: Float
    public var gradNorm: Float
    public var sequencesPerSecond: Double
    /// Real (non-padding) tokens per second: the figure that packed and unpacked runs share.
    public var tokensPerSecond: Double
    public var elapsed: Double
}

/// The pre-training loop: micro-batches from the loader, forward and backward with gradient accumulation, an
/// optimizer step on the flat buffers, evaluation, metrics, and checkpoints that resume exactly.
public final class Pretrainer {
    public let options: PretrainingOptions
    public let model: BertForPreTraining
    /// The model, its optimizer (this rank's slice of the moments under ZeRO) and the communicator.
    public let training: TrainingStep
    public var optimizer: BackendOptimizer { training.optimizer! }
    public private(set) var state: TrainerState
    public var communicator: any Communicator { training.communicator }
    let loader: PretrainingLoader
    let evaluator: MLMEvaluator?
    let log: MetricsWriter?
    /// Guards the loader's delivery of each step's batches (`collectiveTimeout`).
    private let loaderWatchdog = Watchdog()
    /// The step the loop is running, and the newest checkpoint of this run (written or resumed from): what a
    /// stopped run reports.
    private var stepInProgress = 0
    private var lastCheckpoint: String?
    /// Progress and messages; the command line decides where they go.
    public var onStep: (StepReport) -> Void = { _ in }
    public var onMessage: (String) -> Void = { print($0) }
    public var onEvaluation: (Int, MLMEvaluation) -> Void = { _, _ in }

    /// - Parameter communicator: the ranks this run spans (one process by default). Every rank builds its own trainer;
    ///   rank 0 alone writes logs and checkpoints.
    public init(options: PretrainingOptions, communicator: any Communicator = SingleProcessCommunicator(),
                warn: (String) -> Void = { print($0) }) throws {
        var o = options
        o.worldSize = communicator.size
        communicator.collectiveTimeout = o.collectiveTimeout
        let fm = FileManager.default, rank = communicator.rank
        guard (0...2).contains(o.zeroStage) else { throw BertError.invalidInput("--zero-stage must be 0, 1 or 2") }
        guard o.trainBatchSize > 0, o.gradientAccumulationSteps > 0, o.trainBatchSize % (o.worldSize * o.gradientAccumulationSteps) == 0 else {
            throw BertError.invalidInput("--train-batch-size \(o.trainBatchSize) must be a positive multiple of world size (\(o.worldSize)) × --gradient-accumulation-steps (\(o.gradientAccumulationSteps))")
        }
        guard o.maxSteps > 0 else { throw BertError.invalidInput("--max-steps must be positive") }
        if o.phase2 && o.phase1EndStep == nil {
            throw BertError.invalidInput("--phase2 needs --phase1-end-step (the step phase 1 ended at)")
        }
        try fm.createDirectory(atPath: o.outputDirectory, withIntermediateDirectories: true)
        for stale in rank != 0 ? [] :  (try? fm.contentsOfDirectory(atPath: o.outputDirectory))?.filter({ $0.hasPrefix(".ckpt_") }) ?? [] {
            try? fm.removeItem(atPath: (o.outputDirectory as NSString).appendingPathComponent(stale))
        }

        // Where the weights come from: a checkpoint to resume, an initial checkpoint, or a fresh init.
        let existing = PretrainingCheckpoint.list(o.outputDirectory)
        var resumed: (path: String, state: TrainerState)?
        if o.resume {
            resumed = PretrainingCheckpoint.newestValid(in: o.outputDirectory, warn: warn)
            if resumed == nil { warn("no valid checkpoint in \(o.outputDirectory) to resume; starting from the beginning") }
        } else if !existing.isEmpty {
            throw BertError.invalidInput("\(o.outputDirectory) already holds checkpoints (\(existing[0].path)); pass --resume to continue that run, or choose another --output-dir")
        }
        // A resumed run keeps the seed it started with: the data order and the dropout masks follow from it.
        if let resumed, !(o.phase2 && resumed.state.phase == 1) {
            if let asked = o.seed, asked != resumed.state.seed {
                throw BertError.invalidInput("--seed \(asked) differs from the seed \(resumed.state.seed) of \(resumed.path): "
                                             + "a resumed run keeps its seed; drop --seed or pass --seed \(resumed.state.seed)")
            }
            o.seed = resumed.state.seed
        }
        let seed = o.seed ?? 12345
        o.seed = seed
        self.options = o
        lastCheckpoint = resumed?.path
        let model: BertForPreTraining
        if let resumed {
            model = try BertForPreTraining.load(directory: resumed.path, backend: o.backend).0
            if let asked = o.config, asked != model.config {
                throw BertError.invalidConfig("the model config asked for differs from the checkpoint's \(resumed.path)/config.json; drop --config-file/--model when resuming")
            }
        } else if let initial = o.initCheckpoint {
            let (loaded, report) = try BertForPreTraining.load(directory: initial, allowMissingHeads: true, backend: o.backend)
            model = loaded
            if !report.missing.isEmpty { warn("--init-checkpoint: initialised fresh: \(report.missing.joined(separator: ", "))") }
        } else {
            guard let config = o.config else { throw BertError.invalidInput("give --model or --config-file (or --init-checkpoint)") }
            model = try BertForPreTraining(config: config, seed: seed, backend: o.backend)
        }
        model.checkpointActivations = o.checkpointActivations
        self.model = model
        let total = model.layout.totalCount
        training = TrainingStep(model: model, optimizer: o.optimizer, communicator: communicator, zeroStage: o.zeroStage)
        let optimizer = training.optimizer!

        let schedule = LearningRateSchedule(kind: o.schedule, baseRate: o.learningRate, warmupProportion: o.warmupProportion,
                                            totalSteps: o.maxSteps, degree: o.scheduleDegree)
        var state = TrainerState(step: 0, phase: o.phase2 ? 2 : 1, phase1EndStep: o.phase2 ? o.phase1EndStep : nil, seed: seed,
                                 microStep: 0, cursor: LoaderCursor(), optimizer: o.optimizer.kind.rawValue, schedule: schedule,
                                 trainBatchSize: o.trainBatchSize, gradientAccumulationSteps: o.gradientAccumulationSteps,
                                 maxSeqLength: o.maxSeqLength, maxPredictionsPerSeq: o.maxPredictionsPerSeq, worldSize: o.worldSize,
                                 weightDecay: o.optimizer.weightDecay, maxGradNorm: o.optimizer.maxGradNorm ?? 0)
        if let resumed {
            guard resumed.state.optimizer == o.optimizer.kind.rawValue else {
                throw BertError.invalidInput("--optimizer \(o.optimizer.kind.rawValue) differs from the checkpoint's \(resumed.state.optimizer)")
            }
            if o.zeroStage == 0 {   // the optimizer holds the whole layout: read straight into it
                try optimizer.withHostMoments(writeBack: true) {
                    try PretrainingCheckpoint.loadMoments(into: ($0, $1), layout: model.layout, from: resumed.path)
                }
            } else {                // read the whole moments, keep this rank's slice
                let full = (m: FlatBuffer(count: total), v: FlatBuffer(count: total))
                try PretrainingCheckpoint.loadMoments(into: (full.m.base, full.v.base), layout: model.layout, from: resumed.path)
                optimizer.withHostMoments(writeBack: true) { m, v in
                    let start = optimizer.base
                    (m + start).update(from: full.m[start], count: optimizer.count)
                    (v + start).update(from: full.v[start], count: optimizer.count)
                }
            }
            if o.phase2 && resumed.state.phase == 1 {
                // NVIDIA's phase 2: fresh step counter, schedule and data; weights and moments carry over.
                state.microStep = resumed.state.microStep
                warn("phase 2 starts from phase 1's \(resumed.path)")
            } else {
                let asked = state
                state = resumed.state
                state.files = [:]
                guard state.trainBatchSize == o.trainBatchSize, state.maxSeqLength == o.maxSeqLength,
                      state.maxPredictionsPerSeq == o.maxPredictionsPerSeq else {
                    throw BertError.invalidInput("the batch size or sequence shape differs from the checkpoint's (train_batch_size \(state.trainBatchSize), max_seq_length \(state.maxSeqLength), max_predictions_per_seq \(state.maxPredictionsPerSeq))")
                }
                guard state.step < o.maxSteps else {
                    throw BertError.invalidInput("--max-steps \(o.maxSteps) is not beyond step \(state.step) of \(resumed.path): "
                                                 + "nothing left to train; raise --max-steps to continue")
                }
                let changed = Self.recipeChanges(from: resumed.state, to: asked)
                guard changed.isEmpty || o.allowRecipeChange else {
                    throw BertError.invalidInput("\(changed.joined(separator: ", ")) of \(resumed.path): a resumed run keeps its recipe; "
                                                 + "pass the checkpoint's values, or --allow-recipe-change if the change is intended")
                }
                state.gradientAccumulationSteps = o.gradientAccumulationSteps
                state.worldSize = o.worldSize
                state.schedule = schedule
                (state.weightDecay, state.maxGradNorm) = (o.optimizer.weightDecay, o.optimizer.maxGradNorm ?? 0)
            }
        }
        self.state = state

        let shards = try PretrainingLoader.shardFiles(in: o.inputDirectory)
        guard !shards.isEmpty else {
            throw ShardError("\(o.inputDirectory): no training shards (*training*.hdf5) in it; point --input-dir at the output of `bert prepare`")
        }
        let loader = try PretrainingLoader(shardPaths: shards, seed: seed, worldSize: o.worldSize, rank: rank,
                                           microBatchSize: o.microBatchSize, accumulationSteps: o.gradientAccumulationSteps,
                                           vocabSize: model.config.vocabSize, cursor: state.cursor, packed: o.packed)
        guard loader.seqLength == o.maxSeqLength, loader.maxPredictions == o.maxPredictionsPerSeq else {
            throw BertError.invalidInput("\(o.inputDirectory): shards have sequence length \(loader.seqLength) and \(loader.maxPredictions) predictions per sequence, but --max-seq-length is \(o.maxSeqLength) and --max-predictions-per-seq \(o.maxPredictionsPerSeq)")
        }
        guard loader.seqLength <= model.config.maxPositionEmbeddings else {
            throw BertError.invalidInput("\(o.inputDirectory): sequence length \(loader.seqLength) exceeds the model's max_position_embeddings \(model.config.maxPositionEmbeddings)")
        }
        self.loader = loader
        // Every rank must have drawn the same conclusions (same flags, shards, checkpoint), or the collectives would
        // silently combine different things.
        try communicator.consistencyCheck([
            "world size": "\(communicator.size)", "zero stage": "\(o.zeroStage)", "model config": "\(model.config)",
            "shards": zip(loader.shardPaths.map { ($0 as NSString).lastPathComponent }, loader.shardCounts).map { "\($0):\($1)" }.joined(separator: ","),
            "train batch": "\(o.trainBatchSize)/\(o.gradientAccumulationSteps)", "sequence": "\(o.maxSeqLength)/\(o.maxPredictionsPerSeq)",
            "optimizer": "\(o.optimizer)", "seed": "\(seed)", "max steps": "\(o.maxSteps)",
            "resumed from": resumed.map { "\($0.path) step \($0.state.step)" } ?? "nothing", "phase": "\(state.phase)"])
        // Rank 0's weights for everyone: bit-identical starting points whatever each rank loaded or drew.
        try communicator.broadcast(model.parameters, count: total, root: 0)
        evaluator = rank != 0 ? nil : try o.evalDirectory.map { try MLMEvaluator(directory: $0, vocabSize: model.config.vocabSize) }
        log = rank != 0 ? nil : try o.jsonSummary.map {
            try MetricsWriter(path: $0, append: resumed != nil && !(o.phase2 && resumed!.state.phase == 1))
        }
    }

    /// Runs until `--max-steps` (or the target accuracy), checkpointing as asked. Returns the final summary.
    /// - Throws: `BertError.stalled` naming the step, the stalled ranks and the last checkpoint when a rank has not
    ///   reached a collective within `collectiveTimeout`. A loader that has not delivered a step's batches within it
    ///   cannot be interrupted: the watchdog aborts the job (`Communicator.abort`) with the same kind of line.
    @discardableResult
    public func run() throws -> [String: Any] {
        do {
            return try train()
        } catch let error as CommunicatorError {
            guard case .stalled = error else { throw error }
            throw BertError.stalled(stopping(because: "\(error)"))
        }
    }

    /// `step N: <reason>; stopping the job (the last checkpoint, <path>, is intact)`.
    private func stopping(because reason: String) -> String {
        "step \(stepInProgress): \(reason); stopping the job ("
            + (lastCheckpoint.map { "the last checkpoint, \($0), is intact" } ?? "no checkpoint was written") + ")"
    }

    private func train() throws -> [String: Any] {
        let o = options, A = o.gradientAccumulationSteps
        let start = Date()
        var lastEval: MLMEvaluation?, windowStart = Date(), windowSequences = 0, windowTokens = 0, lastLoss: Float = .nan
        var stepsRun = 0, sequencesRun = 0, tokensRun = 0
        onMessage("pre-training: \(model.layout.tensors.reduce(0) { $0 + $1.count }) parameters, global batch \(o.trainBatchSize) = \(o.worldSize) × \(A) × \(o.microBatchSize), steps \(state.step)…\(o.maxSteps) of phase \(state.phase), \(Parallel.threadCount) threads a process")
        let comm = communicator, W = comm.size, rank = comm.rank
        if let evaluator, state.step == 0 {   // where the run starts from, as the first point of the accuracy curve
            let e = try evaluator.evaluate(model, batchSize: o.evalBatchSize ?? o.microBatchSize)
            try log?.write(["type": "eval", "step": 0, "elapsed": Date().timeIntervalSince(start)].merging(e.json(prefix: "eval_")) { a, _ in a })
            onEvaluation(0, e)
        }
        while state.step < o.maxSteps && stepsRun < (o.stepsThisRun ?? .max) {
            stepInProgress = state.step + 1
            let loaderStalled = stopping(because: "the data loader did not deliver this rank's batches within \(secondsText(o.collectiveTimeout)) s")
            let batches = try loaderWatchdog.guarding(timeout: o.collectiveTimeout, onExpiry: { comm.abort(loaderStalled) }) {
                if FaultInjection.active("stall-loader-at-step", step: state.step + 1, rank: rank) { FaultInjection.hang() }
                return try loader.nextStep()
            }
            if FaultInjection.active("nan-at-step", step: state.step + 1, rank: rank) {
                model.parameters.withHostFloats { $0[0] = .nan }
            }
            if FaultInjection.active("kill-at-step", step: state.step + 1, rank: rank) { kill(getpid(), SIGKILL) }
            if FaultInjection.active("sleep-at-step", step: state.step + 1, rank: rank) { FaultInjection.hang() }
            let lr = state.schedule.rate(at: state.step)
            let (losses, gradNorm) = try training.run(microBatches: batches.count, learningRate: lr, step: state.step + 1) { i in
                // Micro-batch i of rank r is global micro-batch r·A + i: its dropout stream is the one a single process
                // would draw for it, so the result does not depend on the world size.
                let stream = state.microStep + UInt64(rank * A + i)
                let l = try model.forward(batches[i], dropout: DropoutStreams(seed: state.seed, step: stream))
                guard l.loss.isFinite else { throw nonFinite("loss \(l.loss)") }
                return l
            }
            guard gradNorm.isFinite else { throw nonFinite("gradient norm \(gradNorm)") }
            state.microStep += UInt64(A * W)
            var loss = losses.reduce(0) { $0 + $1.loss } / Float(A)
            var mlm = losses.reduce(0) { $0 + $1.mlmLoss } / Float(A), nsp = losses.reduce(0) { $0 + $1.nspLoss } / Float(A)
            // A packed row holds several sequences: count sequences and real tokens, not rows.
            var sequences = batches.reduce(0) { $0 + $1.sequenceCount }
            var tokens = batches.reduce(0) { $0 + $1.inputMask.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } }
            if W > 1 {
                let sums = try comm.allReduceSum([Double(loss), Double(mlm), Double(nsp), Double(sequences), Double(tokens)])
                (loss, mlm, nsp) = (Float(sums[0] / Double(W)), Float(sums[1] / Double(W)), Float(sums[2] / Double(W)))
                (sequences, tokens) = (Int(sums[3]), Int(sums[4]))
            }
            state.step += 1
            state.cursor = loader.cursor
            state.loss = loss
            lastLoss = loss
            stepsRun += 1
            (sequencesRun, tokensRun) = (sequencesRun + sequences, tokensRun + tokens)
            (windowSequences, windowTokens) = (windowSequences + sequences, windowTokens + tokens)

            if rank == 0 && (state.step % max(1, o.logFrequency) == 0 || state.step == o.maxSteps) {
                let now = Date(), window = max(1e-9, now.timeIntervalSince(windowStart))
                let report = StepReport(step: state.step, totalSteps: o.maxSteps, loss: loss, mlmLoss: mlm, nspLoss: nsp,
                                        learningRate: lr, gradNorm: gradNorm,
                                        sequencesPerSecond: Double(windowSequences) / window,
                                        tokensPerSecond: Double(windowTokens) / window,
                                        elapsed: now.timeIntervalSince(start))
                windowStart = now
                (windowSequences, windowTokens) = (0, 0)
                try log?.write(["type": "train", "step": report.step, "loss": Double(loss), "mlm_loss": Double(mlm),
                                "nsp_loss": Double(nsp), "learning_rate": Double(lr), "grad_norm": Double(gradNorm),
                                "seq_per_s": report.sequencesPerSecond, "tokens_per_s": report.tokensPerSecond,
                                "elapsed": report.elapsed])
                onStep(report)
            }
            var reachedTarget = false
            if o.evalDirectory != nil, (o.evalEvery > 0 && state.step % o.evalEvery == 0) || state.step == o.maxSteps {
                if let evaluator {   // rank 0 evaluates; the others learn the verdict from it
                    let e = try evaluator.evaluate(model, batchSize: o.evalBatchSize ?? o.microBatchSize)
                    lastEval = e
                    try log?.write(["type": "eval", "step": state.step, "elapsed": Date().timeIntervalSince(start)]
                                       .merging(e.json(prefix: "eval_")) { a, _ in a })
                    onEvaluation(state.step, e)
                    reachedTarget = o.targetMLMAccuracy.map { e.mlmAccuracy >= $0 } ?? false
                }
                if W > 1 { reachedTarget = try comm.allReduceSum([reachedTarget ? 1 : 0])[0] > 0 }
                if reachedTarget { onMessage("reached the target MLM accuracy \(o.targetMLMAccuracy!) at step \(state.step)") }
            }
            if state.step % max(1, o.numStepsPerCheckpoint) == 0 || state.step == o.maxSteps || reachedTarget
                || stepsRun == o.stepsThisRun {
                try saveCheckpoint()
            }
            if reachedTarget { break }
        }
        let elapsed = Date().timeIntervalSince(start)
        var summary: [String: Any] = ["type": "summary", "step": state.step, "e2e_train_time": elapsed,
                                      "training_sequences_per_second": Double(sequencesRun) / max(1e-9, elapsed),
                                      "training_tokens_per_second": Double(tokensRun) / max(1e-9, elapsed),
                                      "final_loss": Double(lastLoss)]
        if let lastEval { summary["mlm_accuracy"] = lastEval.mlmAccuracy; summary["nsp_accuracy"] = lastEval.nspAccuracy }
        try log?.write(summary)
        return summary
    }

    /// Writes a checkpoint (rank 0; under ZeRO every rank first contributes its slice of the moments).
    public func saveCheckpoint() throws {
        var state = self.state
        state.worldSize = communicator.size
        // Every rank knows the name rank 0 writes to, once past the collectives (a failed write ends the job).
        let written = PretrainingCheckpoint.path(for: state, in: options.outputDirectory)
        if options.zeroStage == 0 {   // every rank holds the whole moments: rank 0 writes its own
            if communicator.rank == 0 { try optimizer.withHostMoments(writeBack: false) { try write(state, moments: ($0, $1)) } }
            lastCheckpoint = written
            return
        }
        // Under ZeRO each rank contributes its slice of the moments and the slices are gathered.
        let total = model.layout.totalCount
        let full = (m: FlatBuffer(count: total), v: FlatBuffer(count: total))
        optimizer.withHostMoments(writeBack: false) { m, v in
            full.m[optimizer.base].update(from: m + optimizer.base, count: optimizer.count)
            full.v[optimizer.base].update(from: v + optimizer.base, count: optimizer.count)
        }
        try communicator.allGather(full.m.base, counts: training.shardCounts)
        try communicator.allGather(full.v.base, counts: training.shardCounts)
        if communicator.rank == 0 { try write(state, moments: (full.m.base, full.v.base)) }
        lastCheckpoint = written
    }

    private func write(_ state: TrainerState, moments: PretrainingCheckpoint.Moments) throws {
        // The loss and gradient checks run before each update; this one catches an update that made the weights or
        // moments non-finite (an absurd learning rate), so that no checkpoint can hold a NaN or an Inf.
        try model.parameters.withHostFloats(writeBack: false) { parameters in
            for t in model.layout.tensors {
                for (what, base) in [("weights", UnsafePointer(parameters)), ("first moments", UnsafePointer(moments.m)),
                                     ("second moments", UnsafePointer(moments.v))]
                where UnsafeBufferPointer(start: base + t.offset, count: t.count).contains(where: { !$0.isFinite }) {
                    let last = PretrainingCheckpoint.list(options.outputDirectory).first?.path
                    throw BertError.invalidInput("step \(state.step): the \(what) of \(t.name) are not finite after the update; "
                        + "no checkpoint written" + (last.map { ", the last good checkpoint is \($0)" } ?? "")
                        + " — lower --learning-rate or check the schedule flags")
                }
            }
        }
        let path = try PretrainingCheckpoint.save(model: model, moments: moments, state: state, in: options.outputDirectory,
                                                  keep: options.keepCheckpoints)
        onMessage("saved \(path)")
    }

    private func nonFinite(_ what: String) -> BertError {
        let last = PretrainingCheckpoint.list(options.outputDirectory).first?.path
        return BertError.invalidInput("step \(state.step + 1): \(what) is not finite; stopped without updating the weights"
            + (last.map { "; the last good checkpoint is \($0)" } ?? "; no checkpoint was written") + " — lower --learning-rate or check the data")
    }
}

/// Appends JSON objects, one per line, flushing each (a run that dies still leaves a readable log).
final class MetricsWriter {
    private let handle: FileHandle

    init(path: String, append: Bool) throws {
        let fm = FileManager.default
        if !append || !fm.fileExists(atPath: path) {
            guard fm.createFile(atPath: path, contents: nil) else { throw BertError.io("cannot create --json-summary file \(path)") }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw BertError.io("cannot open --json-summary file \(path)") }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    func write(_ object: [String: Any]) throws {
        var line = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        line.append(0x0A)
        try handle.write(contentsOf: line)
    }
}

extension Pretrainer {
    /// The settings of `new` that change a run's result and differ from the checkpoint's `old`, as flags, e.g.
    /// "--learning-rate 0.02 differs from 0.01". The number of steps may change (it extends or shortens the run).
    static func recipeChanges(from old: TrainerState, to new: TrainerState) -> [String] {
        var changes: [String] = []
        func compare<T: Equatable>(_ flag: String, _ was: T?, _ now: T?) {
            if let was, let now, was != now { changes.append("\(flag) \(now) differs from \(was)") }
        }
        compare("--lr-schedule", old.schedule.kind.rawValue, new.schedule.kind.rawValue)
        compare("--learning-rate", old.schedule.baseRate, new.schedule.baseRate)
        compare("--warmup-proportion", old.schedule.warmupProportion, new.schedule.warmupProportion)
        compare("--poly-power", old.schedule.degree, new.schedule.degree)
        compare("--weight-decay", old.weightDecay, new.weightDecay)
        compare("--max-grad-norm", old.maxGradNorm, new.maxGradNorm)
        return changes
    }
}
