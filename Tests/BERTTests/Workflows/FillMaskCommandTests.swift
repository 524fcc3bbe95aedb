import Foundation
import Testing
@testable import BERT

/// `bert fill-mask` against transformers' fill-mask pipeline (`scripts/reference/fill_mask.py`) on a small model of
/// ours, and its errors.
@Suite struct FillMaskCommandTests {
    struct Guess: Decodable, Equatable {
        let score: Double
        let token: Int
        let token_str: String
    }

    static let model = fixture("fill_mask/model")

    @Test(.enabled(if: BertProgram.present)) func topTokensAndScoresMatchTheTransformersPipeline() throws {
        let result = try BertProgram.run(["fill-mask", "--checkpoint", Self.model, "--input", fixture("fill_mask/texts.txt"),
                                          "--top-k", "10", "--json", "--threads", "2"])
        #expect(result.status == 0, "\(result.err)")
        let expected = try String(contentsOfFile: fixture("fill_mask/expected.jsonl"), encoding: .utf8).split(separator: "\n")
        let actual = result.out.split(separator: "\n")
        try #require(actual.count == expected.count, "\(actual.count) lines for \(expected.count) texts")
        var worst = 0.0, masks = 0
        for (line, (a, e)) in zip(actual, expected).enumerated() {
            let ours = try JSONDecoder().decode([[Guess]].self, from: Data(a.utf8))
            let theirs = try JSONDecoder().decode([[Guess]].self, from: Data(e.utf8))
            try #require(ours.count == theirs.count, "text \(line + 1): \(ours.count) masks, transformers \(theirs.count)")
            for (o, t) in zip(ours, theirs) {
                #expect(o.map(\.token) == t.map(\.token), "text \(line + 1): top tokens differ")
                #expect(o.map(\.token_str) == t.map(\.token_str), "text \(line + 1)")
                for (x, y) in zip(o, t) { worst = max(worst, abs(x.score - y.score)) }
                masks += 1
            }
        }
        #expect(masks >= 20)
        #expect(worst <= 1e-5, "largest probability difference \(worst)")
    }

    @Test(.enabled(if: BertProgram.present)) func readableListingOnePerMask() throws {
        let result = try BertProgram.run(["fill-mask", "--checkpoint", Self.model, "--top-k", "3",
                                          "[MASK] is the first word, and the last is [MASK]"])
        #expect(result.status == 0, "\(result.err)")
        let lines = result.out.split(separator: "\n")
        #expect(lines.count == 3 && lines[1].hasPrefix("  [MASK] 1: ") && lines[2].hasPrefix("  [MASK] 2: "), "\(result.out)")
        #expect(lines[1].components(separatedBy: " · ").count == 3)
    }

    @Test(.enabled(if: BertProgram.present)) func badInputGivesOneClearLine() throws {
        let dir = try temporaryDirectory("fill-mask")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let long = Array(repeating: "word", count: 200).joined(separator: " ") + " [MASK]"
        let noVocab = dir + "/no-vocab"
        try FileManager.default.createDirectory(atPath: noVocab, withIntermediateDirectories: true)
        for name in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(atPath: Self.model + "/" + name, toPath: noVocab + "/" + name)
        }
        let cases: [([String], String)] = [
            (["--checkpoint", Self.model, "no mask here"], "has no [MASK]"),
            (["--checkpoint", Self.model, long], "more than the model's 128 positions"),
            (["--checkpoint", fixture("heads/qa"), "--vocab-file", Self.model + "/vocab.txt", "a [MASK]"], "has no masked-LM head"),
            (["--checkpoint", noVocab, "a [MASK]"], "vocab.txt: no such file"),
            (["--checkpoint", Self.model, "--vocab-file", fixture("tokenizer/bert-base-uncased-vocab.txt"), "a [MASK]"],
             "has 30522 tokens but"),
            (["--checkpoint", Self.model, "--top-k", "0", "a [MASK]"], "--top-k must be at least 1"),
            (["--checkpoint", Self.model], "either as arguments or with --input"),
            (["--checkpoint", Self.model, "--input", dir], "not a readable file"),
            (["--checkpoint", dir + "/missing", "a [MASK]"], "missing"),
        ]
        for (arguments, message) in cases {
            let result = try BertProgram.run(["fill-mask"] + arguments)
            #expect(result.status != 0 && result.status < 128, "\(arguments): exit \(result.status)")
            #expect(result.out.isEmpty, "\(arguments): printed \(result.out)")
            let lines = result.err.split(separator: "\n").filter { !$0.hasPrefix("Usage:") && !$0.hasPrefix("  See ") }
            #expect(lines.count == 1 && result.err.contains(message), "\(arguments): \(result.err)")
        }
    }
}
