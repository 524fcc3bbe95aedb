import BERTCUDA
import Foundation
import Testing
@testable import BERT

/// Packed pre-training rows (several sequences a row, MLPerf's layout): the model reads them as block-diagonal
/// attention with restarting position ids and per-sequence NSP. Proven against transformers (fixture from
/// scripts/reference/packed_attention.py on the core tiny-gelu model), against the same sequences unpacked, through the
/// emulated CUDA backend and with activation checkpointing; bad packed fields are refused by name.
@Suite struct PackedBatchTests {
    static let modelDirectory = fixture("core/tiny-gelu")
    static let io = Result { try Safetensors.File(path: fixture("packed/io.safetensors")) }

    /// The fixture's batch: 5 sequences in 2 rows of 32 (3 slots a row, the last of row 1 empty).
    static func packedBatch() throws -> PretrainingBatch {
        let io = try io.get()
        let shape = try io.entry("input_ids").shape, P = try io.entry("masked_lm_positions").shape[1]
        let N = try io.entry("next_sentence_positions").shape[1]
        return PretrainingBatch(batchSize: shape[0], seqLength: shape[1], maxPredictions: P, sequencesPerRow: N,
                                inputIds: try io.ints("input_ids"), segmentIds: try io.ints("segment_ids"),
                                inputMask: try io.ints("input_mask"), positions: try io.ints("positions"),
                                maskedLMPositions: try io.ints("masked_lm_positions"), maskedLMIds: try io.ints("masked_lm_ids"),
                                nextSentencePositions: try io.ints("next_sentence_positions"),
                                nextSentenceLabels: try io.ints("next_sentence_labels"),
                                nextSentenceWeights: try io.ints("next_sentence_weights"))
    }

    /// The same sequences in NVIDIA's layout, one a row in row-major order, each at position 0 of a row of S, with its
    /// masked positions (in the same order) and NSP label.
    static func unpacked(_ packed: PretrainingBatch) throws -> PretrainingBatch {
        let S = packed.seqLength, P = packed.maxPredictions, N = packed.sequencesPerRow
        var ids: [Int32] = [], segments: [Int32] = [], mask: [Int32] = [], positions: [Int32] = [], labels: [Int32] = []
        var maskedIds: [Int32] = []
        for b in 0..<packed.batchSize {
            let masked = (0..<packed.predictionCount(row: b)).map {
                (Int(packed.maskedLMPositions[b * P + $0]), packed.maskedLMIds[b * P + $0])
            }
            for (n, span) in try packed.sequenceSpans(row: b).sequences.enumerated() {
                guard let span else { continue }
                let pad = [Int32](repeating: 0, count: S - span.count)
                ids += packed.inputIds[(b * S + span.lowerBound)..<(b * S + span.upperBound)] + pad
                segments += packed.segmentIds[(b * S + span.lowerBound)..<(b * S + span.upperBound)] + pad
                mask += [Int32](repeating: 1, count: span.count) + pad
                let own = masked.filter { span.contains($0.0) }
                let row = own.map { Int32($0.0 - span.lowerBound) }, rowIds = own.map(\.1)
                positions += row + [Int32](repeating: 0, count: P - row.count)
                maskedIds += rowIds + [Int32](repeating: 0, count: P - rowIds.count)
                labels.append(packed.nextSentenceLabels[b * N + n])
            }
        }
        return PretrainingBatch(batchSize: labels.count, seqLength: S, maxPredictions: P, inputIds: ids, segmentIds: segments,
                                inputMask: mask, maskedLMPositions: positions, maskedLMIds: maskedIds, nextSentenceLabels: labels)
    }

    /// What a forward and backward (dropout off) give.
    struct Run {
        var losses: PretrainingLosses, nspLogits: [Float], mlmLogits: [Float], pooled: [Float], gradients: [Float]
    }

    static func run(_ model: BertForPreTraining, _ batch: PretrainingBatch, dropout: DropoutStreams? = nil) throws -> Run {
        let losses = try model.forward(batch, dropout: dropout)
        let (nsp, mlm, pooled) = (model.nspLogits(), model.mlmLogits(), model.pooledOutput())
        model.zeroGradients()
        model.backward()
        return Run(losses: losses, nspLogits: nsp, mlmLogits: mlm, pooled: pooled, gradients: model.gradients.array())
    }

    @Test func matchesTransformersWithBlockDiagonalAttention() throws {
        let (model, _) = try BertForPreTraining.load(directory: Self.modelDirectory)
        let io = try Self.io.get(), batch = try Self.packedBatch()
        #expect(batch.sequenceCount == 5 && batch.positions?[12] == 0 && batch.inputMask[12] == 2, "row 0's second sequence restarts at 12")
        let losses = try model.forward(batch)
        #expect(losses.sequences == 5 && losses.maskedCount == 8)
        for (name, actual) in [("sequence_output", model.sequenceOutput()), ("pooled_output", model.pooledOutput()),
                               ("mlm_logits", model.mlmLogits()), ("nsp_logits", model.nspLogits()),
                               ("mlm_loss", [losses.mlmLoss]), ("nsp_loss", [losses.nspLoss]), ("loss", [losses.loss])] {
            expectClose(name, actual, try io.floats(name), tolerance: 1e-5)
        }
        model.zeroGradients()
        model.backward()
        for name in io.entries.keys.filter({ $0.hasPrefix("grad.") }).sorted() {
            let t = model.layout[String(name.dropFirst(5))]
            expectClose(name, model.gradients.array(offset: t.offset, count: t.count), try io.floats(name), tolerance: 1e-4)
        }
    }

    /// Packing changes nothing but the layout: the 5 sequences packed in 2 rows and the same 5 unpacked in 5 rows give
    /// the same losses, per-sequence NSP logits, MLM logits and every gradient to 1e-6 relative (the analytically
    /// zero key biases, fp32 noise, to 1e-6 absolute) — 3e-5 where the GEMM rounds a row differently in calls of other
    /// row counts (`rowBitsKept`; 1.2e-5 measured with OpenBLAS's Haswell kernels).
    @Test func packedRowsEqualTheSameSequencesUnpacked() throws {
        let (model, _) = try BertForPreTraining.load(directory: Self.modelDirectory)
        let packedBatch = try Self.packedBatch(), unpackedBatch = try Self.unpacked(packedBatch)
        #expect(unpackedBatch.batchSize == 5 && !unpackedBatch.isPacked)
        let packed = try Self.run(model, packedBatch), unpacked = try Self.run(model, unpackedBatch)
        let tolerance = rowBitsKept ? 1e-6 : 3e-5
        #expect(packed.losses.sequences == unpacked.losses.sequences && packed.losses.maskedCount == unpacked.losses.maskedCount)
        expectClose("mlm loss", [packed.losses.mlmLoss], [unpacked.losses.mlmLoss], tolerance: tolerance)
        expectClose("nsp loss", [packed.losses.nspLoss], [unpacked.losses.nspLoss], tolerance: tolerance)
        expectClose("nsp logits", packed.nspLogits, unpacked.nspLogits, tolerance: tolerance)
        expectClose("mlm logits", packed.mlmLogits, unpacked.mlmLogits, tolerance: tolerance)
        expectClose("pooled", packed.pooled, unpacked.pooled, tolerance: tolerance)
        var worst = (name: "", error: 0.0)
        for t in model.layout.tensors {
            let range = t.offset..<(t.offset + t.count), expected = Array(unpacked.gradients[range])
            expectClose("grad \(t.name)", Array(packed.gradients[range]), expected, tolerance: tolerance,
                        absolute: t.name.hasSuffix("attention.self.key.bias") ? 1e-6 : 0)
            let error = relativeError(Array(packed.gradients[range]), expected).error
            if !t.name.hasSuffix("attention.self.key.bias") && error > worst.error { worst = (t.name, error) }
        }
        print("packed vs unpacked: worst gradient \(worst.name) relative error \(worst.error)")
    }

    /// The CUDA backend's kernels (key ranges in the softmax, position ids in the embedding) on the emulated runtime
    /// give the CPU's losses and gradients on the packed batch, to the GEMM tolerance of the parity harness.
    @Test func emulatedCUDABackendMatchesTheCPU() throws {
        let (cpu, _) = try BertForPreTraining.load(directory: Self.modelDirectory)
        let (cuda, _) = try BertForPreTraining.load(directory: Self.modelDirectory, backend: CUDABackendEmulatedTests.cuda())
        let batch = try Self.packedBatch()
        let a = try Self.run(cpu, batch), b = try Self.run(cuda, batch)
        expectClose("loss", [b.losses.loss], [a.losses.loss], tolerance: 1e-5)
        expectClose("nsp logits", b.nspLogits, a.nspLogits, tolerance: 1e-5)
        expectClose("gradients", b.gradients, a.gradients, tolerance: BackendParity.fp32GEMMTolerance)
    }

    /// With dropout on, a checkpointed packed step recomputes the same layers: the same bits as one that kept everything.
    @Test func checkpointedGradientsStayBitwiseEqual() throws {
        var config = try Checkpoint.config(in: Self.modelDirectory)
        (config.hiddenDropoutProb, config.attentionProbsDropoutProb) = (0.1, 0.1)
        let batch = try Self.packedBatch()
        let r = try ActivationCheckpointingTests.gradients({ try BertForPreTraining(config: config, seed: 5) }) {
            try ($0 as! BertForPreTraining).forward(batch, dropout: $1).loss
        }
        #expect(r.plain.0 == r.checkpointed.0)
        #expect(r.plain.1 == r.checkpointed.1)
        #expect(r.plain.1.contains { $0 != 0 })
    }

    /// Evaluation trims a batch to its longest row: the packed batch padded to 64 and trimmed back to 32 gives the
    /// logits of the padded batch bit for bit (each query's softmax covers only its own sequence's keys either way; to
    /// rounding where the GEMM does not keep a row's bits, `rowBitsKept`).
    @Test func trimmingAPaddedPackedBatchKeepsItsBits() throws {
        let (model, _) = try BertForPreTraining.load(directory: Self.modelDirectory)
        let b = try Self.packedBatch(), S = b.seqLength, pad = [Int32](repeating: 0, count: S)
        func padded(_ rows: [Int32]) -> [Int32] { (0..<b.batchSize).flatMap { rows[($0 * S)..<(($0 + 1) * S)] + pad } }
        let long = PretrainingBatch(batchSize: b.batchSize, seqLength: 2 * S, maxPredictions: b.maxPredictions,
                                    sequencesPerRow: b.sequencesPerRow, inputIds: padded(b.inputIds),
                                    segmentIds: padded(b.segmentIds), inputMask: padded(b.inputMask),
                                    positions: padded(b.positions!), maskedLMPositions: b.maskedLMPositions,
                                    maskedLMIds: b.maskedLMIds, nextSentencePositions: b.nextSentencePositions,
                                    nextSentenceLabels: b.nextSentenceLabels, nextSentenceWeights: b.nextSentenceWeights)
        let trimmed = long.trimmed()
        #expect(trimmed.seqLength == S && trimmed.positions == b.positions)
        let full = try model.forward(long), (fullMLM, fullNSP) = (model.mlmLogits(), model.nspLogits())
        let cut = try model.forward(trimmed)
        if rowBitsKept { #expect(cut == full) }
        expectPaddedRunsValues("losses", [cut.loss, cut.mlmLoss, cut.nspLoss], [full.loss, full.mlmLoss, full.nspLoss])
        expectPaddedRunsValues("MLM logits", model.mlmLogits(), fullMLM)
        expectPaddedRunsValues("NSP logits", model.nspLogits(), fullNSP)
    }

    /// With every stored activation rounded to bf16 (the emulated bf16 device), the packed batch's losses stay within
    /// the parity harness's bf16 band of fp32's.
    @Test func bf16ActivationsStayWithinTheirBand() throws {
        let batch = try Self.packedBatch()
        let (fp32, _) = try BertForPreTraining.load(directory: Self.modelDirectory)
        let (bf16, _) = try BertForPreTraining.load(directory: Self.modelDirectory,
                                                    backend: CPUBackend.emulatedDevice(bf16Activations: true))
        let a = try fp32.forward(batch), b = try bf16.forward(batch)
        expectClose("mlm loss", [b.mlmLoss], [a.mlmLoss], tolerance: BackendParity.bf16Tolerance)
        expectClose("nsp loss", [b.nspLoss], [a.nspLoss], tolerance: BackendParity.bf16Tolerance)
        #expect(b.sequences == 5 && bf16.nspLogits().count == 10)
        #expect(b.mlmLoss != a.mlmLoss, "the emulation rounds")
    }

    /// `bert bench --packed`'s rows hold 2 or 3 sequences each, which the model accepts; the command reports them.
    @Test func benchmarkPacksTwoOrThreeSequencesARow() throws {
        let bench = StepBenchmark(config: try BertConfig.preset("bert-tiny"), mode: .train, batchSize: 6, seqLength: 24,
                                  maxPredictions: 4, steps: 1, warmup: 0)
        let batch = bench.syntheticPackedBatch(seed: 3)
        let perRow = (0..<6).map { b in batch.nextSentenceWeights[(b * 3)..<(b * 3 + 3)].reduce(0, +) }
        #expect(perRow.allSatisfy { $0 == 2 || $0 == 3 } && Set(perRow).count == 2, "\(perRow)")
        #expect(!batch.inputMask.contains(0) && batch.positions!.filter { $0 == 0 }.count == perRow.reduce(0, +))
        let losses = try BertForPreTraining(config: bench.config).forward(batch)
        #expect(losses.sequences == Int(perRow.reduce(0, +)) && losses.loss.isFinite)

        guard BertProgram.present else { return }
        let r = try BertProgram.run(["bench", "--model", "bert-tiny", "--batch", "2", "--seq-len", "16", "--steps", "1",
                                     "--warmup", "0", "--packed"])
        #expect(r.status == 0 && r.out.contains("\"packed\":true") && r.out.contains("sequences_per_s"), "\(r.err)")
        let refused = try BertProgram.run(["bench", "--model", "bert-tiny", "--head", "qa", "--packed"])
        #expect(refused.status != 0 && refused.err.contains("--packed"))
    }

    /// As a user runs it: `bert prepare` on short documents, `bert pack` (2–3 sequences a row), `bert pretrain --packed`
    /// trains on the packed rows (the loss falls) and writes a checkpoint that loads.
    @Test(.enabled(if: BertProgram.present)) func packedPretrainingRunsFromTheCommandLine() throws {
        let dir = try temporaryDirectory("bert-packed-pretrain")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Two 8-word sentences a document: sequences of about 20 tokens, so several fit a row of 64.
        let lines = try String(contentsOfFile: fixture("tokenizer/expected.jsonl"), encoding: .utf8).split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .compactMap { ($0["text"] as? String)?.split(separator: " ") }.filter { $0.count >= 8 }
            .map { $0.prefix(8).joined(separator: " ") }
        try lines.enumerated().map { $0.offset % 2 == 1 ? $0.element + "\n" : $0.element }.joined(separator: "\n")
            .write(toFile: dir + "/corpus.txt", atomically: true, encoding: .utf8)
        try #"{"vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2, "hidden_act": "gelu"}"#
            .write(toFile: dir + "/bert_config.json", atomically: true, encoding: .utf8)
        let prepare = try BertProgram.run(["prepare", "--input", dir + "/corpus.txt", "--vocab-file",
                                           fixture("tokenizer/bert-base-uncased-vocab.txt"), "--output-dir", dir + "/shards",
                                           "--input-format", "google", "--max-seq-length", "64", "--max-predictions-per-seq", "10",
                                           "--dupe-factor", "2", "--num-shards", "2", "--random-seed", "3"])
        #expect(prepare.status == 0, "\(prepare.err)")
        let pack = try BertProgram.run(["pack", "--input", dir + "/shards", "--output-dir", dir + "/packed"])
        #expect(pack.status == 0, "\(pack.err)")
        // "packed 294 sequences into 136 rows of 64 tokens …": more than 1.5 sequences a row.
        let counts = (pack.out + pack.err).split(separator: " ").compactMap { Double($0) }
        #expect(counts.count >= 2 && counts[0] > 1.5 * counts[1], "\(pack.out)\(pack.err)")
        // Trained on packed rows, evaluated on NVIDIA-layout shards (as MLPerf evaluates).
        let run = try BertProgram.run(["pretrain", "--input-dir", dir + "/packed", "--packed", "--eval-dir", dir + "/shards",
                                       "--eval-every", "8", "--output-dir", dir + "/run",
                                       "--config-file", dir + "/bert_config.json", "--max-seq-length", "64",
                                       "--max-predictions-per-seq", "13", "--train-batch-size", "16",
                                       "--gradient-accumulation-steps", "2", "--learning-rate", "1e-1", "--warmup-proportion", "0.1",
                                       "--max-steps", "16", "--num-steps-per-checkpoint", "16", "--json-summary", dir + "/run.jsonl",
                                       "--threads", "2"])
        #expect(run.status == 0, "\(run.err)")
        let records = try String(contentsOfFile: dir + "/run.jsonl", encoding: .utf8).split(separator: "\n")
            .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let losses = records.filter { $0["type"] as? String == "train" }.compactMap { $0["loss"] as? Double }
        #expect(losses.count == 16 && losses.suffix(3).reduce(0, +) < losses.prefix(3).reduce(0, +) - 1.5, "\(losses)")
        let (model, report) = try BertForPreTraining.load(directory: dir + "/run/ckpt_16")
        #expect(report.missing.isEmpty && model.config.hiddenSize == 32)
        #expect(records.filter { $0["type"] as? String == "eval" }.count == 3)
        // `bert eval-mlm` reads either layout, and the same sequences packed give the same numbers.
        func evaluate(_ shards: String) throws -> [String: Double] {
            let r = try BertProgram.run(["eval-mlm", "--checkpoint", dir + "/run/ckpt_16", "--input-dir", dir + "/" + shards])
            #expect(r.status == 0, "\(r.err)")
            return try #require(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Double])
        }
        let unpacked = try evaluate("shards"), packed = try evaluate("packed")
        #expect(packed["sequences"] == unpacked["sequences"] && packed["sequences"].map { $0 > 100 } == true)
        for key in ["mlm_loss", "nsp_loss", "mlm_accuracy", "nsp_accuracy"] {
            let (p, u) = (try #require(packed[key]), try #require(unpacked[key]))
            #expect(abs(p - u) <= 1e-5 * max(1, abs(u)), "\(key): packed \(p), unpacked \(u)")
        }
    }

    /// Bad packed fields are refused with a message that names the field.
    @Test func badPackedBatchesAreRefused() throws {
        let (model, _) = try BertForPreTraining.load(directory: Self.modelDirectory)
        let good = try Self.packedBatch(), S = good.seqLength
        func expectRefused(_ mentioning: String, _ change: (inout PretrainingBatch) -> Void) {
            var batch = good
            change(&batch)
            #expect {
                _ = try model.forward(batch)
            } throws: { error in
                guard case BertError.invalidInput(let message) = error else { return false }
                return message.contains(mentioning)
            }
        }
        expectRefused("max_position_embeddings") { $0.positions![3] = Int32(model.config.maxPositionEmbeddings) }
        expectRefused("positions holds -1") { $0.positions![40] = -1 }
        expectRefused("but sequence 2 starts at 12") { $0.nextSentencePositions[1] = 13 }
        expectRefused("not contiguous") { $0.inputMask[5] = 2 }
        expectRefused("1…3") { $0.inputMask[S + 30] = 4 }
        expectRefused("has no sequence 3") { $0.nextSentenceWeights[5] = 1 }
        expectRefused("its slot 2 has weight 0") { $0.nextSentenceWeights[2] = 0 }
        expectRefused("which is padding") { $0.maskedLMPositions[good.maxPredictions + good.predictionCount(row: 1) - 1] = Int32(S - 1) }
        expectRefused("next_sentence_positions holds") { $0.nextSentencePositions[0] = Int32(S) }
        _ = try model.forward(good)
    }
}
