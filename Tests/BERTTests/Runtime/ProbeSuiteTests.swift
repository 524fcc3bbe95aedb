import Foundation
import Testing

/// Bad flags, bad files and hostile contents driven through the real binary, as a careful user would try them. Every
/// probe must end with a non-zero exit, no signal, a first line "Error: …" naming the culprit (the flag, file or key
/// given as `names`), and nothing written under the output path it was given.
@Suite(.serialized) struct ProbeSuiteTests {
    struct Probe: CustomStringConvertible {
        var arguments: [String]
        var names: String
        var description: String { arguments.joined(separator: " ") }
    }

    /// A workspace of good and bad inputs, made once.
    static let w: String = {
        let w = try! temporaryDirectory("probes")
        let fm = FileManager.default
        try! fm.copyItem(atPath: fixture("fill_mask/model"), toPath: w + "/model")                     // a good small BERT
        try! fm.copyItem(atPath: fixture("tokenizer/bert-base-uncased-vocab.txt"), toPath: w + "/vocab.txt")
        try! fm.createDirectory(atPath: w + "/dir", withIntermediateDirectories: true)
        try! fm.createDirectory(atPath: w + "/shards", withIntermediateDirectories: true)
        try! fm.copyItem(atPath: fixture("shards/nvidia_layout_training_0.hdf5"), toPath: w + "/shards/nvidia_layout_training_0.hdf5")
        try! fm.createDirectory(atPath: w + "/garbage-shards", withIntermediateDirectories: true)
        try! Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: w + "/garbage-shards/g_training_0.hdf5"))
        try! "The quick brown fox jumps over the lazy dog. It was not amused.\n\nAnother document here. With two sentences.\n"
            .write(toFile: w + "/corpus.txt", atomically: true, encoding: .utf8)
        try! "junk\n".write(toFile: w + "/file", atomically: true, encoding: .utf8)
        try! "".write(toFile: w + "/empty.txt", atomically: true, encoding: .utf8)
        try! #"{"data": [{"title": "t", "paragraphs": [{"context": "a b", "qas": [{"id": 1, "#.write(toFile: w + "/bad-squad.json", atomically: true, encoding: .utf8)
        // A checkpoint whose weights are garbage, one whose config does not match its weights, one with a non-JSON config.
        for name in ["garbage-ckpt", "mismatch-ckpt", "badjson-ckpt"] {
            try! fm.copyItem(atPath: w + "/model", toPath: w + "/" + name)
        }
        try! Data(repeating: 0xFF, count: 64).write(to: URL(fileURLWithPath: w + "/garbage-ckpt/model.safetensors"))
        let config = try! String(contentsOfFile: w + "/model/config.json", encoding: .utf8)
        precondition(config.contains("\"num_hidden_layers\" : 2"), "the fixture's config changed its layout")
        try! config.replacingOccurrences(of: "\"num_hidden_layers\" : 2", with: "\"num_hidden_layers\" : 3")
            .write(toFile: w + "/mismatch-ckpt/config.json", atomically: true, encoding: .utf8)
        try! "{\"vocab_size\": 1000,".write(toFile: w + "/badjson-ckpt/config.json", atomically: true, encoding: .utf8)
        try! fm.copyItem(atPath: fixture("heads/qa"), toPath: w + "/qa")                                // a QA model, 1001 tokens
        let vocabulary = try! String(contentsOfFile: w + "/vocab.txt", encoding: .utf8).split(separator: "\n").prefix(1001)
        try! (vocabulary.joined(separator: "\n") + "\n").write(toFile: w + "/qa/vocab.txt", atomically: true, encoding: .utf8)
        try! fm.createDirectory(atPath: w + "/mrpc", withIntermediateDirectories: true)
        try! "Quality\t#1 String\n1\tonly two columns\n".write(toFile: w + "/mrpc/train.tsv", atomically: true, encoding: .utf8)
        try! "Quality\t#1 String\n1\tonly two columns\n".write(toFile: w + "/mrpc/dev.tsv", atomically: true, encoding: .utf8)
        return w
    }()

    static var probes: [Probe] {
        let out = w + "/out"
        let model = w + "/model"
        func p(_ names: String, _ arguments: String...) -> Probe { Probe(arguments: arguments, names: names) }
        let prepare = ["prepare", "--input", w + "/corpus.txt", "--vocab-file", w + "/vocab.txt", "--output-dir", out]
        let squadFinetune = ["finetune", "squad", "--init-checkpoint", model, "--output-dir", out, "--train-file", w + "/bad-squad.json"]
        var all: [Probe] = [
            // numeric flags at 0, negative and absurd values
            Probe(arguments: prepare + ["--max-seq-length", "0"], names: "--max-seq-length"),
            Probe(arguments: prepare + ["--max-seq-length", "-5"], names: "--max-seq-length"),
            Probe(arguments: prepare + ["--dupe-factor", "0"], names: "--dupe-factor"),
            Probe(arguments: prepare + ["--masked-lm-prob", "1.5"], names: "--masked-lm-prob"),
            Probe(arguments: prepare + ["--masked-lm-prob", "nan"], names: "--masked-lm-prob"),
            Probe(arguments: prepare + ["--short-seq-prob", "-0.1"], names: "--short-seq-prob"),
            Probe(arguments: prepare + ["--num-shards", "-1"], names: "--num-shards"),
            Probe(arguments: prepare + ["--eval-fraction", "1.5"], names: "--eval-fraction"),
            Probe(arguments: prepare + ["--threads", "0"], names: "--threads"),
            Probe(arguments: prepare + ["--compression-level", "12"], names: "--compression-level"),
            Probe(arguments: prepare + ["--num-shards", "50"], names: "--num-shards 50"),
            p("--vocab-size", "vocab", "--input", w + "/corpus.txt", "--output", out, "--vocab-size", "0"),
            p("--vocab-size", "vocab", "--input", w + "/corpus.txt", "--output", out, "--vocab-size", "-3"),
            p("--threads", "vocab", "--input", w + "/corpus.txt", "--output", out, "--threads", "-1"),
            Probe(arguments: squadFinetune + ["--train-batch-size", "0"], names: "--train-batch-size"),
            Probe(arguments: squadFinetune + ["--learning-rate", "-1"], names: "--learning-rate"),
            Probe(arguments: squadFinetune + ["--num-train-epochs", "0"], names: "--num-train-epochs"),
            Probe(arguments: squadFinetune + ["--doc-stride", "0"], names: "--doc-stride"),
            Probe(arguments: squadFinetune + ["--predict-batch-size", "0"], names: "--predict-batch-size"),
            Probe(arguments: squadFinetune + ["--warmup-proportion", "2"], names: "--warmup-proportion"),
            p("--batch-size", "predict", "squad", "--checkpoint", model, "--predict-file", w + "/bad-squad.json", "--output", out, "--batch-size", "0"),
            p("--n-best-size", "predict", "squad", "--checkpoint", model, "--predict-file", w + "/bad-squad.json", "--output", out, "--n-best-size", "-1"),
            p("--batch-size", "predict", "mrpc", "--checkpoint", model, "--predict-file", w + "/mrpc/dev.tsv", "--output", out, "--batch-size", "-2"),
            p("--batch-size", "eval-mlm", "--checkpoint", model, "--input-dir", w + "/shards", "--batch-size", "0"),
            p("--top-k", "fill-mask", "--checkpoint", model, "--top-k", "0", "a [MASK] b"),
            p("--top-k", "fill-mask", "--checkpoint", model, "--top-k", "-4", "a [MASK] b"),
            p("--batch", "bench", "--model", "bert-tiny", "--batch", "0"),
            p("--seq-len", "bench", "--model", "bert-tiny", "--seq-len", "-1"),
            p("--steps", "bench", "--model", "bert-tiny", "--steps", "0"),
            p("--threads", "bench", "--model", "bert-tiny", "--threads", "0"),
            p("--threads", "tokenize", "--vocab", w + "/vocab.txt", "--threads", "0"),
            // a directory, a missing path or a plain file where something else is expected
            Probe(arguments: ["prepare", "--input", w + "/corpus.txt", "--vocab-file", w + "/dir", "--output-dir", out], names: w + "/dir"),
            Probe(arguments: ["prepare", "--input", w + "/missing.txt", "--vocab-file", w + "/vocab.txt", "--output-dir", out], names: "missing.txt"),
            Probe(arguments: ["prepare", "--input", w + "/corpus.txt", "--vocab-file", w + "/vocab.txt", "--output-dir", w + "/file/x"], names: w + "/file/x"),
            p(w + "/file", "pretrain", "--input-dir", w + "/file", "--output-dir", out, "--model", "bert-tiny"),
            p(w + "/dir", "pretrain", "--input-dir", w + "/dir", "--output-dir", out, "--model", "bert-tiny"),
            p(w + "/dir", "pretrain", "--input-dir", w + "/shards", "--output-dir", out, "--config-file", w + "/dir"),
            p(w + "/file", "eval-mlm", "--checkpoint", w + "/file", "--input-dir", w + "/shards"),
            p(w + "/dir", "fill-mask", "--checkpoint", w + "/dir", "a [MASK] b"),
            p(w + "/dir", "fill-mask", "--checkpoint", model, "--input", w + "/dir"),
            p(w + "/dir", "tokenize", "--vocab", w + "/dir"),
            p(w + "/missing", "predict", "squad", "--checkpoint", w + "/missing", "--predict-file", w + "/bad-squad.json", "--output", out),
            p(w + "/dir", "evaluate", "squad", "--dataset", w + "/dir", "--predictions", w + "/file"),
            p(w + "/file", "convert", "--to", "hf", "--checkpoint", w + "/file", "--output", out),
            p(w + "/missing.jsonl", "plot", w + "/missing.jsonl", "-o", out + ".svg"),
            // hostile contents
            p(w + "/garbage-ckpt/model.safetensors", "eval-mlm", "--checkpoint", w + "/garbage-ckpt", "--input-dir", w + "/shards"),
            p(w + "/garbage-ckpt/model.safetensors", "fill-mask", "--checkpoint", w + "/garbage-ckpt", "a [MASK] b"),
            p("bert.encoder.layer.2", "fill-mask", "--checkpoint", w + "/mismatch-ckpt", "a [MASK] b"),
            p(w + "/badjson-ckpt/config.json", "fill-mask", "--checkpoint", w + "/badjson-ckpt", "a [MASK] b"),
            p(w + "/garbage-shards/g_training_0.hdf5", "eval-mlm", "--checkpoint", model, "--input-dir", w + "/garbage-shards"),
            p(w + "/garbage-shards/g_training_0.hdf5", "pretrain", "--input-dir", w + "/garbage-shards", "--output-dir", out, "--model", "bert-tiny"),
            p("input_ids", "eval-mlm", "--checkpoint", model, "--input-dir", w + "/shards"),   // ids beyond the model's 1000-token vocabulary
            p(w + "/empty.txt", "tokenize", "--vocab", w + "/empty.txt"),
            p(w + "/empty.txt", "prepare", "--input", w + "/corpus.txt", "--vocab-file", w + "/empty.txt", "--output-dir", out),
            p("bad-squad.json", "predict", "squad", "--checkpoint", w + "/qa", "--predict-file", w + "/bad-squad.json", "--output", out),
            p("bad-squad.json", "evaluate", "squad", "--dataset", w + "/bad-squad.json", "--predictions", w + "/file"),
            p("train.tsv", "finetune", "mrpc", "--init-checkpoint", model, "--output-dir", out, "--data-dir", w + "/mrpc"),
            p("[MASK]", "fill-mask", "--checkpoint", model, "no mask here"),
            p("--model bert-nonexistent", "bench", "--model", "bert-nonexistent"),
        ]
        all.append(p(w + "/shards", "pretrain", "--input-dir", w + "/shards", "--output-dir", out, "--model", "bert-tiny",
                     "--max-seq-length", "64"))   // shards of another sequence length
        return all
    }

    @Test(.enabled(if: BertProgram.present)) func everyBadInputEndsInOneClearError() throws {
        var clean = 0, crashes: [String] = [], silent: [String] = [], unclear: [String] = []
        let probes = Self.probes
        for probe in probes {
            try? FileManager.default.removeItem(atPath: Self.w + "/out")
            let r = try BertProgram.run(probe.arguments)
            // The error line (progress lines may come before it, a usage hint after it).
            let errors = r.err.split(separator: "\n").filter { $0.hasPrefix("Error: ") }
            let first = errors.count == 1 ? String(errors[0]) : "\(errors.count) error lines in: \(r.err)"
            if r.signaled { crashes.append("\(probe): signal \(r.status)"); continue }
            if r.status == 0 { silent.append("\(probe): exit 0"); continue }
            if !(first.hasPrefix("Error: ") && first.contains(probe.names)) { unclear.append("\(probe): \(first)"); continue }
            // Nothing left under the output path, but for a shard manifest that records the set as unfinished.
            let left = (try? FileManager.default.contentsOfDirectory(atPath: Self.w + "/out")).map { $0.filter { !$0.hasSuffix("_manifest.json") } }
                ?? (FileManager.default.fileExists(atPath: Self.w + "/out") ? ["out"] : [])
            if !left.isEmpty { unclear.append("\(probe): left \(left) in \(Self.w)/out"); continue }
            clean += 1
        }
        print("probes: \(probes.count) tried, \(clean) clean errors, \(crashes.count) crashes, \(silent.count) silent results, \(unclear.count) unclear")
        #expect(crashes.isEmpty, "\(crashes)")
        #expect(silent.isEmpty, "\(silent)")
        #expect(unclear.isEmpty, "\(unclear.joined(separator: "\n"))")
    }
}
