import Foundation
import Testing
@testable import BERT

/// `bert finetune mrpc` trims its training batches by default; with dropout on, the checkpoint it writes and the
/// predictions made from it are byte for byte those of `--no-trim-batches` (where `rowBitsKept`; elsewhere the
/// checkpoint's tensors agree to rounding and the predictions are the same).
@Suite(.serialized, .enabled(if: BertProgram.present)) struct TrimmedFinetuneCommandTests {
    /// MRPC-layout pairs of 2 to 11 words each, so a batch's longest pair is often far below `--max-seq-length` 48.
    static func tsv(_ rows: Int, seed: UInt64) -> String {
        var random = DataRandom(seed: seed)
        let words = FinetuneCommandTests.words
        func sentence() -> String {
            (0..<(2 + Int(random.next() % 10))).map { _ in words[Int(random.next() % UInt64(words.count))] }.joined(separator: " ")
        }
        let lines = (0..<rows).map { i in "\(i % 2)\t\(i)\t\(i + 1000)\t\(sentence())\t\(sentence())" }
        return (["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"] + lines).joined(separator: "\n") + "\n"
    }

    @Test func trimmedTrainingWritesTheUntrimmedCheckpoint() throws {
        let dir = try temporaryDirectory("bert-trimtrain")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        try Self.tsv(96, seed: 3).write(toFile: dir + "/data/train.tsv", atomically: true, encoding: .utf8)
        try Self.tsv(40, seed: 4).write(toFile: dir + "/data/dev.tsv", atomically: true, encoding: .utf8)
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + FinetuneCommandTests.words
        try (vocab.joined(separator: "\n") + "\n").write(toFile: dir + "/vocab.txt", atomically: true, encoding: .utf8)
        try #"{"vocab_size": 20, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}"#
            .write(toFile: dir + "/bert_config.json", atomically: true, encoding: .utf8)
        var files: [[Data]] = []
        for (name, flags) in [("trimmed", [String]()), ("full", ["--no-trim-batches"])] {
            let tuned = try BertProgram.run(["finetune", "mrpc", "--config-file", dir + "/bert_config.json",
                                             "--vocab-file", dir + "/vocab.txt", "--data-dir", dir + "/data",
                                             "--output-dir", dir + "/" + name, "--max-seq-length", "48",
                                             "--train-batch-size", "8", "--learning-rate", "5e-3", "--num-train-epochs", "2",
                                             "--threads", "2"] + flags)
            #expect(tuned.status == 0, "\(tuned.err)")
            let predicted = try BertProgram.run(["predict", "mrpc", "--checkpoint", dir + "/" + name, "--predict-file",
                                                 dir + "/data/dev.tsv", "--set", "dev", "--output", dir + "/\(name).tsv",
                                                 "--max-seq-length", "48"] + flags)
            #expect(predicted.status == 0, "\(predicted.err)")
            files.append(try [dir + "/\(name)/model.safetensors", dir + "/\(name).tsv"].map { try Data(contentsOf: URL(fileURLWithPath: $0)) })
        }
        if rowBitsKept {
            #expect(files[0][0] == files[1][0], "checkpoint bytes differ")
        } else {
            let trimmed = try Safetensors.File(path: dir + "/trimmed/model.safetensors")
            let full = try Safetensors.File(path: dir + "/full/model.safetensors")
            #expect(trimmed.entries.keys.sorted() == full.entries.keys.sorted())
            // The key biases get gradients that are zero but for rounding, so they stay within 1e-6 of zero.
            for name in full.entries.keys.sorted() {
                expectClose(name, try trimmed.floats(name), try full.floats(name), tolerance: 1e-4, absolute: 1e-6)
            }
        }
        #expect(files[0][1] == files[1][1], "predictions differ")
        // The batches were trimmed: the longest pair (2 × 11 words + 3) fits in 32 of the 48 positions.
        let features = try GLUE.features(for: GLUE.readMRPC(contentsOf: dir + "/data/train.tsv", set: "train"), labels: GLUE.mrpcLabels,
                                         tokenizer: BertTokenizer(vocabulary: try Vocabulary(contentsOf: dir + "/vocab.txt"), lowercase: true),
                                         maxSeqLength: 48)
        #expect(ClassificationFineTuning.batch(Array(features.prefix(8)), withLabels: true).trimmedForTraining().seqLength <= 32)
    }
}
