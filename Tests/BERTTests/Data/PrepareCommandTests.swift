import Foundation
import Testing
@testable import BERT

/// `bert prepare` run as a user runs it (the debug binary `swift build --build-tests` made), on WikiExtractor
/// text with the bert-base-uncased vocabulary of the tokenizer fixtures.
@Suite struct PrepareCommandTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let binary = root.appendingPathComponent(".build/debug/bert").path
    static let vocab = root.appendingPathComponent("Tests/Fixtures/tokenizer/bert-base-uncased-vocab.txt").path
    static var ready: Bool {
        let ok = FileManager.default.isExecutableFile(atPath: binary) && FileManager.default.fileExists(atPath: vocab)
        if !ok { print("note: \(binary) or \(vocab) is absent (run `swift build --build-tests`); prepare command tests skipped") }
        return ok
    }

    static func run(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let stdout = Pipe(), stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    /// Ten small WikiExtractor articles.
    static func writeCorpus(in dir: String) throws {
        var text = ""
        for d in 0..<10 {
            text += "<doc id=\"\(d)\" url=\"x\" title=\"Article \(d)\">\nArticle \(d)\n\n"
            for p in 0..<4 {
                text += (0..<5).map { "Sentence \($0) of paragraph \(p) in article number \(d) talks about history and science." }
                    .joined(separator: " ") + "\n"
            }
            text += "</doc>\n"
        }
        try text.write(toFile: dir + "/wiki_00", atomically: true, encoding: .utf8)
    }

    @Test(.enabled(if: ready)) func prepareWritesValidShardsAndASummary() throws {
        let dir = try ShardFixtures.temporaryDirectory("cli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeCorpus(in: dir)
        let out = dir + "/shards"
        let r = try Self.run(["prepare", "--input", dir + "/wiki_00", "--vocab-file", Self.vocab, "--output-dir", out,
                              "--max-seq-length", "64", "--max-predictions-per-seq", "10", "--dupe-factor", "2",
                              "--num-shards", "2", "--eval-fraction", "0.2", "--threads", "2", "--do-whole-word-mask"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("prepare: 10 documents, 200 sentences"), "\(r.out)")
        #expect(r.out.contains("training: ") && r.out.contains("NSP random"), "\(r.out)")
        #expect(!r.err.contains("\r"))   // not a terminal: plain lines only
        let training = try PretrainingLoader.shardFiles(in: out)
        #expect(training.map { ($0 as NSString).lastPathComponent } == ["corpus_training_0.hdf5", "corpus_training_1.hdf5"])
        #expect(try PretrainingLoader.shardFiles(in: out, kind: "test").count == 1)
        for path in training {
            let rows = try readAndValidateShard(path: path, vocabSize: 30522)
            #expect(rows.seqLength == 64 && rows.maxPredictions == 10 && rows.count > 0)
            for r in 0..<rows.count { #expect(rows.inputIds[r * 64] == 101) }   // [CLS]
        }
        #expect(FileManager.default.fileExists(atPath: out + "/corpus_prepare.json"))
    }

    /// The default run-length deflate and a gzip level store the same rows (inflated by HDF5's own filter); a level
    /// outside `fast`, 1…9 is refused by name.
    @Test(.enabled(if: ready)) func everyCompressionLevelStoresTheSameRows() throws {
        let dir = try ShardFixtures.temporaryDirectory("clilevel")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeCorpus(in: dir)
        var shards: [ShardRows] = [], files: [Data] = []
        for level in [[], ["--compression-level", "4"], ["--compression-level", "fast"]] {
            let out = dir + "/shards\(shards.count)"
            let r = try Self.run(["prepare", "--input", dir + "/wiki_00", "--vocab-file", Self.vocab, "--output-dir", out,
                                  "--max-seq-length", "64", "--num-shards", "1"] + level)
            #expect(r.status == 0, "\(r.err)")
            shards.append(try ShardReader(path: out + "/corpus_training_0.hdf5").readAll())
            files.append(try Data(contentsOf: URL(fileURLWithPath: out + "/corpus_training_0.hdf5")))
        }
        #expect(shards[0].count > 0 && shards[1] == shards[0] && shards[2] == shards[0])
        #expect(files[1] != files[0] && files[2] == files[0])   // level 4 is another encoding; fast is the default
        let refused = try Self.run(["prepare", "--input", dir + "/wiki_00", "--vocab-file", Self.vocab, "--output-dir",
                                    dir + "/zero", "--compression-level", "0"])
        #expect(refused.status != 0 && refused.err.contains("--compression-level"), "\(refused.err)")
    }

    @Test(.enabled(if: ready)) func badInputGivesOneLine() throws {
        let r = try Self.run(["prepare", "--input", "/nonexistent/text", "--vocab-file", Self.vocab, "--output-dir", "/tmp/x"])
        #expect(r.status != 0)
        #expect(r.err.trimmingCharacters(in: .whitespacesAndNewlines)
                == "Error: /nonexistent/text: no such file, directory or matching glob; check --input")
    }
}
