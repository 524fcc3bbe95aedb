import ArgumentParser
import BERT
import BERTKernels
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time training steps (forward + backward) or inference steps of a BERT model; prints one JSON object.",
        discussion: """
        Batches are synthetic and full length, with --max-predictions masked positions per sequence. gflops counts \
        matmul FLOPs only: per layer 2·B·S·(4H² + 2H·I) + 4·B·S²·H, plus the MLM head on the masked positions \
        2·B·P·(H² + H·V) and the pooler/NSP head (--head qa: 2·B·S·2H; classification: the pooler and classifier); \
        a training step counts 3× the forward.
        """)

    @Option(help: "Model preset (bert-tiny, bert-mini, bert-small, bert-medium, bert-base, bert-large, bert-1.5b, bert-5b).")
    var model = "bert-base"
    @Option(help: "A bert_config.json / config.json to use instead of a preset.")
    var configFile: String?
    @Option(help: "train (forward + backward) or infer (forward, no dropout).")
    var mode = "train"
    @Option(help: "pretraining (BertForPreTraining), qa (BertForQuestionAnswering) or classification (2 labels).")
    var head = "pretraining"
    @Option(parsing: .unconditional, help: "Sequences per step.")
    var batch = 16
    @Option(name: .customLong("seq-len"), parsing: .unconditional, help: "Sequence length.")
    var seqLength = 128
    @Option(parsing: .unconditional, help: "Masked positions per sequence (default: 20 up to length 128, else 80, as NVIDIA's shards).")
    var maxPredictions: Int?
    @Option(parsing: .unconditional, help: "Timed steps.")
    var steps = 10
    @Option(parsing: .unconditional, help: "Untimed steps first.")
    var warmup = 2
    @Option(parsing: .unconditional, help: "Threads (default: all cores).")
    var threads: Int?
    @Option(help: "With --mode train, also run this optimizer's update (lamb, nvlamb, lans, adamw, adamw-nobc).")
    var optimizer: String?

    @OptionGroup var device: DeviceFlags
    @Flag(help: "Activation checkpointing: keep only each layer's output, recompute the rest in the backward.")
    var checkpointActivations = false
    @Flag(help: "Pre-training rows packed with 2–3 sequences each (block-diagonal attention); reports sequences_per_s.")
    var packed = false

    func validate() throws {
        try FlagCheck.positive("--max-predictions", maxPredictions)
        try FlagCheck.positive("--threads", threads)
    }

    func run() throws {
        guard let mode = StepBenchmark.Mode(rawValue: mode) else { throw ValidationError("--mode must be train or infer, got \(self.mode)") }
        guard let head = StepBenchmark.Head(rawValue: head) else {
            throw ValidationError("--head must be pretraining, qa or classification, got \(self.head)")
        }
        guard batch > 0, seqLength > 1, steps > 0, warmup >= 0 else {
            throw ValidationError("--batch and --steps must be positive, --seq-len at least 2")
        }
        let config = try configFile.map(BertConfig.load(contentsOf:)) ?? BertConfig.preset(model)
        if packed && (head != .pretraining || seqLength < 6) {
            throw ValidationError("--packed needs --head pretraining and --seq-len of at least 6")
        }
        guard seqLength <= config.maxPositionEmbeddings else {
            throw ValidationError("--seq-len \(seqLength) exceeds the model's max_position_embeddings \(config.maxPositionEmbeddings)")
        }
        if let threads { Parallel.setThreadCount(threads) }
        let kind = try optimizer.map { name -> OptimizerKind in
            guard let kind = OptimizerKind(rawValue: name) else { throw ValidationError("--optimizer: unknown optimizer \(name)") }
            return kind
        }
        var bench = StepBenchmark(config: config, mode: mode, batchSize: batch, seqLength: seqLength,
                                  maxPredictions: maxPredictions ?? (seqLength <= 128 ? 20 : 80), steps: steps, warmup: warmup,
                                  optimizer: kind)
        bench.head = head
        bench.backend = try mode == .infer ? device.inferenceBackend() : device.backend()
        bench.checkpointActivations = checkpointActivations
        bench.packed = packed
        let result = try bench.run()
        let median = result.stepSeconds.sorted()[result.stepSeconds.count / 2]
        let mean = result.stepSeconds.reduce(0, +) / Double(result.stepSeconds.count)
        let flops = bench.forwardFLOPs * (mode == .train ? 3 : 1)
        let report: [String: Any] = [
            "model": configFile ?? model, "mode": mode.rawValue, "head": head.rawValue, "batch": batch, "seq_len": seqLength,
            "max_predictions": bench.maxPredictions, "threads": Parallel.threadCount, "gemm": GEMM.Engine.selected.rawValue,
            "blas_core": BLASCore.name, "steps": steps,
            "parameters": result.parameterCount, "step_ms": median * 1000, "step_ms_mean": mean * 1000,
            "seq_per_s": Double(batch) / median, "gflops": flops / median / 1e9, "flops_per_step": flops,
            "activation_mb": Double(result.activationBytes) / 1_048_576, "peak_rss_mb": peakResidentMiB(),
            "loss": Double(result.loss), "optimizer": optimizer ?? "none", "device": device.device.rawValue,
            "precision": device.precision.rawValue, "checkpoint_activations": checkpointActivations,
            "packed": packed, "sequences_per_s": Double(result.sequences) / median,
        ]
        let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
        print(String(decoding: json, as: UTF8.self))
    }
}
