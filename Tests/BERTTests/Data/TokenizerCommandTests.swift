import Foundation
import Testing
@testable import BERT

/// `bert tokenize` and `bert vocab` run as a user runs them (the debug binary `swift build` made).
@Suite struct TokenizerCommandTests {
    static func run(_ arguments: [String], input: String = "") throws -> BertProgram.Result {
        try BertProgram.run(arguments, input: input)
    }

    @Test(.enabled(if: BertProgram.present)) func tokenizeLinesAndPairs() throws {
        let vocab = TokenizerFixtures.vocabPath
        let lines = try Self.run(["tokenize", "--vocab", vocab], input: "Hello, World!\n\nThe [MASK] sat.")
        #expect(lines.status == 0, "\(lines.err)")
        #expect(lines.out == "[101,7592,1010,2088,999,102]\n[101,102]\n[101,1996,103,2938,1012,102]\n")
        let cased = try Self.run(["tokenize", "--vocab", vocab, "--cased", "--threads", "1"], input: "Hello\n")
        #expect(cased.out == "[101,100,102]\n")
        let pairs = try Self.run(["tokenize", "--vocab", vocab, "--pair"], input: "a b\tc\r\n")
        #expect(pairs.out == #"{"input_ids":[101,1037,1038,102,1039,102],"segment_ids":[0,0,0,0,1,1]}"# + "\n")
        let missing = try Self.run(["tokenize", "--vocab", "/nonexistent/vocab.txt"])
        #expect(missing.status != 0 && missing.err.contains("/nonexistent/vocab.txt"))
    }

    @Test(.enabled(if: BertProgram.present)) func vocabThenTokenize() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vocab-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let corpus = dir.appendingPathComponent("corpus.txt").path
        let text = "<doc id=\"1\">\n" + VocabularyTrainerTests.corpus.joined(separator: "\n") + "\n</doc>\n"
        _ = FileManager.default.createFile(atPath: corpus, contents: Data(text.utf8))
        let output = dir.appendingPathComponent("vocab.txt").path
        let result = try Self.run(["vocab", "--input", corpus, "--vocab-size", "1500", "--output", output])
        #expect(result.status == 0, "\(result.err)")
        #expect(result.out.contains("1500 tokens"), "\(result.out)")
        let vocab = try Vocabulary(contentsOf: output)
        #expect(vocab.count == 1500 && vocab.maskId == 103)
        let (library, _) = try VocabularyTrainerTests.train(size: 1500)
        #expect(vocab.tokens == library.tokens)
        let tokens = try Self.run(["tokenize", "--vocab", output], input: "the history of\n")
        #expect(tokens.status == 0 && tokens.out.hasPrefix("[101,") && !tokens.out.contains(",100,"))
    }
}
