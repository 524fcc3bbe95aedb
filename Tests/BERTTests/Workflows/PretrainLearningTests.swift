import Foundation
import Testing
@testable import BERT

/// A short pre-training run on real English text must leave the unigram plateau — the collapse the first demo showed,
/// where the model guessed the most frequent token at every masked position. Two Wikipedia files of
/// `../shared/datasets` train a tiny BERT (vocabulary of 1,000 WordPieces learnt by `bert vocab`, 2 layers, hidden 64,
/// seq 64) with LAMB for 400 steps; a third file is held out.
@Suite(.serialized) struct PretrainLearningTests {
    static let wiki = sharedDatasets + "/wikipedia/enwiki_wikiextractor_2015"
    static var wikiPresent: Bool {
        let present = FileManager.default.fileExists(atPath: wiki + "/wiki_29")
        if !present { print("note: \(wiki) is absent; the pre-training learning test is skipped") }
        return present
    }

    @Test(.enabled(if: BertProgram.present && wikiPresent)) func heldOutAccuracyLeavesTheUnigramPlateau() throws {
        let dir = try temporaryDirectory("pretrain-learns")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func bert(_ arguments: [String]) throws {
            let r = try BertProgram.run(arguments)
            try #require(r.status == 0, "bert \(arguments.prefix(1)): \(r.err)")
        }
        try bert(["vocab", "--input", Self.wiki + "/wiki_00", "--vocab-size", "1000", "--output", dir + "/vocab.txt"])
        let vocabSize = try Vocabulary(contentsOf: dir + "/vocab.txt").count
        for (inputs, out) in [(["wiki_00", "wiki_01"], "shards"), (["wiki_29"], "heldout")] {
            try bert(["prepare", "--input"] + inputs.map { Self.wiki + "/" + $0 } + [
                "--input-format", "wikiextractor", "--vocab-file", dir + "/vocab.txt", "--output-dir", dir + "/" + out,
                "--max-seq-length", "64", "--max-predictions-per-seq", "10", "--dupe-factor", "1", "--output-prefix", out])
        }
        let config = #"{"vocab_size": \#(vocabSize), "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256, "max_position_embeddings": 64, "type_vocab_size": 2, "hidden_act": "gelu"}"#
        try config.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        try bert(["pretrain", "--input-dir", dir + "/shards", "--output-dir", dir + "/run", "--config-file", dir + "/config.json",
                  "--max-seq-length", "64", "--max-predictions-per-seq", "10", "--train-batch-size", "32",
                  "--learning-rate", "3e-2", "--warmup-proportion", "0.05", "--max-steps", "400", "--eval-dir", dir + "/heldout",
                  "--eval-every", "100", "--num-steps-per-checkpoint", "400", "--json-summary", dir + "/metrics.jsonl",
                  "--threads", "2", "--seed", "7"])
        let evals = try MetricsLog.read(path: dir + "/metrics.jsonl").filter { $0.kind == .eval }
        let accuracies = evals.compactMap(\.evalMLMAccuracy)
        let baseline = try #require(evals.last?["eval_mlm_baseline_accuracy"])
        try #require(accuracies.count == 5, "\(accuracies)")
        #expect(baseline > 0.01 && baseline < 0.1, "most-frequent-token accuracy \(baseline)")
        #expect(accuracies.last! > 2 * baseline, "held-out MLM accuracy \(accuracies) against the plateau \(baseline)")
        for (a, b) in zip(accuracies.dropFirst(), accuracies.dropFirst(2)) {
            #expect(a != b, "two evaluations alike, \(a): the model predicts one token everywhere")
        }
    }
}
