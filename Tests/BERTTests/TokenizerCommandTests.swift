import Foundation
import Testing
@testable import BERT

/// `bert tokenize` and `bert vocab` run as a user runs them (the debug binary `swift build` made).
@Suite struct TokenizerCommandTests {
    static let binary = TokenizerFixtures.packageRoot.appendingPathComponent(".build/debug/bert").path
    static var binaryPresent: Bool {
        let present = FileManager.default.isExecutableFile(atPath: binary)
        if !present { print("note: \(binary) is absent (run `swift build --build-tests`); command tests skipped") }
        return present
    }

    static func run(_ arguments: [String], input: String = "") throws -> (status: Int32, out: String, err: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    @Test(.enabled(if: binaryPresent)) func tokenizeLinesAndPairs() throws {
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

    @Test(.enabled(if: binaryPresent)) func vocabThenTokenize() throws {
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
