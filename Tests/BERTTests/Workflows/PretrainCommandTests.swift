import Foundation
import Testing
@testable import BERT

/// `bert prepare` → `bert pretrain` → `--resume` → `bert eval-mlm`, run as a user runs them, on the Wikipedia lines of
/// the tokenizer fixture (no shared datasets needed). Faults are injected into the real program through
/// `BERT_FAULT_INJECTION`.
@Suite(.serialized, .enabled(if: BertProgram.present)) struct PretrainCommandTests {
    /// Shards and a tiny config, made once for the suites that pre-train, and removed when the test process exits
    /// (its runs leave about 0.8 GB of checkpoints).
    static let workspace: String = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bert-pretrain-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: PretrainCommandTests.workspace) }
        // Google's input format: one sentence per line, a blank line between documents (every 8 lines here).
        let lines = try! String(contentsOfFile: fixture("tokenizer/expected.jsonl"), encoding: .utf8).split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .compactMap { $0["text"] as? String }.filter { $0.count > 40 }
        let corpus = lines.enumerated().map { $0.offset % 8 == 7 ? $0.element + "\n" : $0.element }.joined(separator: "\n")
        try! corpus.write(toFile: dir + "/corpus.txt", atomically: true, encoding: .utf8)
        let vocab = fixture("tokenizer/bert-base-uncased-vocab.txt")
        for (out, seed, length, predictions) in [("shards", "1", "32", "5"), ("eval", "2", "32", "5"), ("shards64", "3", "64", "10")] {
            let r = try! BertProgram.run(["prepare", "--input", dir + "/corpus.txt", "--vocab-file", vocab, "--output-dir", dir + "/" + out,
                                          "--input-format", "google", "--max-seq-length", length, "--max-predictions-per-seq", predictions,
                                          "--dupe-factor", "2", "--num-shards", "2", "--random-seed", seed])
            precondition(r.status == 0, "prepare failed: \(r.err)")
        }
        let config = #"{"vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2, "hidden_act": "gelu"}"#
        try! config.write(toFile: dir + "/bert_config.json", atomically: true, encoding: .utf8)
        return dir
    }()

    static func pretrain(_ output: String, _ extra: [String] = [], fault: String? = nil) throws -> BertProgram.Result {
        let w = workspace
        return try BertProgram.run(["pretrain", "--input-dir", w + "/shards", "--output-dir", output, "--config-file", w + "/bert_config.json",
                                    "--max-seq-length", "32", "--max-predictions-per-seq", "5", "--train-batch-size", "16",
                                    "--gradient-accumulation-steps", "2", "--learning-rate", "1e-1", "--warmup-proportion", "0.1",
                                    "--max-steps", "12", "--num-steps-per-checkpoint", "4", "--keep-checkpoints", "5",
                                    "--json-summary", output + ".jsonl", "--threads", "2"] + extra,
                                   environment: fault.map { ["BERT_FAULT_INJECTION": $0] } ?? [:])
    }

    static func weights(_ output: String, step: Int) -> Data? {
        FileManager.default.contents(atPath: "\(output)/ckpt_\(step)/model.safetensors")
    }

    static func out(_ name: String) -> String { workspace + "/" + name }

    /// The uninterrupted run every other run is compared with.
    static let reference: (result: BertProgram.Result, weights: Data?) = {
        let r = try! pretrain(out("straight"))
        return (r, weights(out("straight"), step: 12))
    }()

    /// The whole run through the emulated device (`--device emulated`: every crossing an explicit copy) writes the
    /// same checkpoint bytes as the CPU.
    @Test func theEmulatedDeviceWritesTheSameCheckpoint() throws {
        let r = try Self.pretrain(Self.out("emulated"), ["--device", "emulated"])
        #expect(r.status == 0, "\(r.err)")
        let weights = try #require(Self.weights(Self.out("emulated"), step: 12))
        #expect(weights == Self.reference.weights)
    }

    /// `--checkpoint-activations` recomputes the layers in the backward and must not change a single weight.
    @Test func checkpointedActivationsWriteTheSameCheckpoint() throws {
        let r = try Self.pretrain(Self.out("recomputed"), ["--checkpoint-activations"])
        #expect(r.status == 0, "\(r.err)")
        #expect(Self.weights(Self.out("recomputed"), step: 12) == Self.reference.weights)
    }

    @Test func lossFallsAndCheckpointsAreComplete() throws {
        let r = Self.reference.result
        #expect(r.status == 0, "\(r.err)")
        let log = try MetricsLog.read(path: Self.out("straight") + ".jsonl")
        let losses = log.filter { $0.kind == .train }.compactMap(\.loss)
        #expect(losses.count == 12)
        let early: Double = losses.prefix(3).reduce(0, +) / 3, late: Double = losses.suffix(3).reduce(0, +) / 3
        #expect(late < early - 0.5, "loss did not fall: \(losses)")
        #expect(log.last?.kind == .summary)
        // Throughput is counted in real tokens too (the figure packed and unpacked runs share): more than one per sequence.
        for record in log where record.kind != .eval {
            let (sequences, tokens) = record.kind == .train ? ("seq_per_s", "tokens_per_s")
                : ("training_sequences_per_second", "training_tokens_per_second")
            #expect(try #require(record.values[tokens]) > 2 * (try #require(record.values[sequences])))
        }
        for step in [4, 8, 12] { #expect(throws: Never.self) { _ = try PretrainingCheckpoint.validate(Self.out("straight") + "/ckpt_\(step)") } }
        // The final checkpoint is an ordinary model directory.
        let (model, report) = try BertForPreTraining.load(directory: Self.out("straight") + "/ckpt_12")
        #expect(report.missing.isEmpty && model.config.hiddenSize == 32)
    }

    /// A run checkpointed without `--checkpoint-activations` resumes with it (memory is not part of the recipe) and
    /// ends on the uninterrupted run's weights.
    @Test func resumingWithCheckpointedActivationsContinuesIdentically() throws {
        let dir = Self.out("resumed-recomputing")
        let first = try Self.pretrain(dir, ["--steps-this-run", "6"])
        #expect(first.status == 0, "\(first.err)")
        let second = try Self.pretrain(dir, ["--resume", "--checkpoint-activations"])
        #expect(second.status == 0, "\(second.err)")
        #expect(Self.weights(dir, step: 12) != nil && Self.weights(dir, step: 12) == Self.reference.weights)
    }

    @Test func resumeIsBitwiseIdentical() throws {
        let dir = Self.out("resumed")
        let first = try Self.pretrain(dir, ["--steps-this-run", "6"])
        #expect(first.status == 0, "\(first.err)")
        #expect(FileManager.default.fileExists(atPath: dir + "/ckpt_6") && !FileManager.default.fileExists(atPath: dir + "/ckpt_8"))
        let refused = try Self.pretrain(dir)
        #expect(refused.status != 0 && refused.err.contains("--resume"), "an output dir with checkpoints is not overwritten")
        let otherRecipe = try Self.pretrain(dir, ["--resume", "--learning-rate", "5e-2", "--weight-decay", "0"])
        #expect(otherRecipe.status != 0 && !otherRecipe.signaled)
        #expect(otherRecipe.err.hasPrefix("Error: --learning-rate 0.05 differs from 0.1, --weight-decay 0.0 differs from 0.01 of \(dir)/ckpt_6: "
                                          + "a resumed run keeps its recipe"), "\(otherRecipe.err)")
        try FileManager.default.copyItem(atPath: dir, toPath: dir + "-changed")
        let second = try Self.pretrain(dir, ["--resume"])
        #expect(second.status == 0, "\(second.err)")
        #expect(Self.weights(dir, step: 12) != nil && Self.weights(dir, step: 12) == Self.reference.weights)
        // Said to be intended, the change is taken: the run continues at the new learning rate.
        let changed = try Self.pretrain(dir + "-changed", ["--resume", "--learning-rate", "5e-2", "--allow-recipe-change"])
        #expect(changed.status == 0, "\(changed.err)")
        #expect(try PretrainingCheckpoint.validate(dir + "-changed/ckpt_12").schedule.baseRate == 5e-2)
        #expect(Self.weights(dir + "-changed", step: 12) != Self.reference.weights)
    }

    @Test func killedDuringACheckpointWriteResumesFromTheLastCompleteOne() throws {
        let dir = Self.out("killed")
        let killed = try Self.pretrain(dir, fault: "kill-during-checkpoint:8")
        #expect(killed.signaled && killed.status == SIGKILL)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(names.contains("ckpt_4") && !names.contains("ckpt_8"), "\(names)")
        let resumed = try Self.pretrain(dir, ["--resume"])
        #expect(resumed.status == 0, "\(resumed.err)")
        #expect(resumed.out.contains("steps 4…12"), "\(resumed.out)")
        #expect(Self.weights(dir, step: 12) == Self.reference.weights)
    }

    @Test func damagedNewestCheckpointIsSkippedWithAWarning() throws {
        let dir = Self.out("damaged")
        #expect(try Self.pretrain(dir, ["--steps-this-run", "8"]).status == 0)
        let path = dir + "/ckpt_8/optimizer.safetensors"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count - 100).write(to: URL(fileURLWithPath: path))
        let resumed = try Self.pretrain(dir, ["--resume"])
        #expect(resumed.status == 0, "\(resumed.err)")
        #expect(resumed.out.contains("skipping checkpoint") && resumed.out.contains("ckpt_8") && resumed.out.contains("steps 4…12"))
        #expect(Self.weights(dir, step: 12) == Self.reference.weights)
        let eval = try BertProgram.run(["eval-mlm", "--checkpoint", Self.out("straight") + "/ckpt_12", "--input-dir", dir + "/ckpt_4"])
        #expect(eval.status != 0 && eval.err.contains("no .hdf5 shards"))
    }

    @Test func nanLossStopsAndKeepsEarlierCheckpoints() throws {
        let dir = Self.out("nan")
        let r = try Self.pretrain(dir, fault: "nan-at-step:6")
        #expect(r.status != 0)
        #expect(r.err.contains("step 6") && r.err.contains("not finite") && r.err.contains("ckpt_4"), "\(r.err)")
        #expect(throws: Never.self) { _ = try PretrainingCheckpoint.validate(dir + "/ckpt_4") }
        #expect(!FileManager.default.fileExists(atPath: dir + "/ckpt_8"))
    }

    @Test func phase2ContinuesFromPhase1WithAFreshScheduleAndTheMoments() throws {
        let dir = Self.out("phases")
        #expect(try Self.pretrain(dir, ["--max-steps", "4"]).status == 0)
        let phase1 = try PretrainingCheckpoint.validate(dir + "/ckpt_4")
        let phase2Flags = ["--input-dir", Self.workspace + "/shards64", "--max-seq-length", "64", "--max-predictions-per-seq", "10",
                           "--phase2", "--phase1-end-step", "4", "--max-steps", "6", "--resume", "--steps-this-run", "3"]
        let first = try Self.pretrain(dir, phase2Flags)
        #expect(first.status == 0, "\(first.err)")
        #expect(first.out.contains("phase 2 starts from phase 1's") && first.out.contains("steps 0…6 of phase 2"), "\(first.out)")
        let state = try PretrainingCheckpoint.validate(dir + "/ckpt_7")   // named after phase 1's 4 steps + 3
        #expect(state.phase == 2 && state.step == 3 && state.maxSeqLength == 64 && state.microStep == phase1.microStep + 6)
        let second = try Self.pretrain(dir, phase2Flags)
        #expect(second.status == 0 && second.out.contains("steps 3…6 of phase 2"), "\(second.out)")
        #expect(try PretrainingCheckpoint.validate(dir + "/ckpt_10").step == 6)
    }

    @Test func shardsOfAnotherSequenceLengthAreRefusedBeforeTraining() throws {
        let r = try Self.pretrain(Self.out("wrong-length"), ["--max-seq-length", "64"])
        #expect(r.status != 0 && r.err.contains("sequence length 32") && r.err.contains("--max-seq-length is 64"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: Self.out("wrong-length") + "/ckpt_4"))
    }

    /// eval-mlm runs each batch at its longest real sequence by default; the numbers are those of the padded batches
    /// (to rounding where the GEMM does not keep a row's bits, `rowBitsKept`).
    @Test func evalMLMTrimmingChangesNoNumber() throws {
        guard Self.reference.weights != nil else { return }
        let flags = ["eval-mlm", "--checkpoint", Self.out("straight") + "/ckpt_12", "--input-dir", Self.workspace + "/shards64",
                     "--batch-size", "4"]
        let trimmed = try BertProgram.run(flags), full = try BertProgram.run(flags + ["--no-trim-batches"])
        #expect(trimmed.status == 0 && full.status == 0, "\(trimmed.err) \(full.err)")
        #expect(!trimmed.out.isEmpty)
        if rowBitsKept { #expect(trimmed.out == full.out); return }
        func numbers(_ out: String) throws -> [String: Double] {
            try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]).compactMapValues { $0 as? Double }
        }
        let (cut, padded) = (try numbers(trimmed.out), try numbers(full.out))
        #expect(!padded.isEmpty && cut.keys.sorted() == padded.keys.sorted())
        for (key, value) in padded { expectClose(key, [Float(cut[key] ?? .nan)], [Float(value)], tolerance: 1e-5) }
    }

    @Test func evalMLMMatchesTheReferenceLoss() throws {
        // The core fixture's batch as a shard: eval-mlm's means over it are the fixture's losses.
        let dir = Self.out("fixture-shard")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let io = try Safetensors.File(path: fixture("core/tiny-gelu/io.safetensors"))
        let batch = try ReferenceTests.batch(io)
        var rows = ShardRows(count: 3, seqLength: batch.seqLength, maxPredictions: batch.maxPredictions)
        rows.inputIds = batch.inputIds
        rows.inputMask = batch.inputMask
        rows.segmentIds = batch.segmentIds
        rows.maskedLMPositions = batch.maskedLMPositions
        rows.maskedLMIds = batch.maskedLMIds
        rows.nextSentenceLabels = batch.nextSentenceLabels
        try ShardWriter.write(rows, to: dir + "/fixture_test_0.hdf5")
        let r = try BertProgram.run(["eval-mlm", "--checkpoint", fixture("core/tiny-gelu"), "--input-dir", dir, "--batch-size", "2"])
        #expect(r.status == 0, "\(r.err)")
        let result = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
        for key in ["mlm_loss", "nsp_loss", "loss"] {
            let expected = Double(try io.floats(key)[0])
            #expect(abs(result[key] as! Double - expected) <= 1e-5 * expected, "\(key): \(result[key]!) vs \(expected)")
        }
    }
}
