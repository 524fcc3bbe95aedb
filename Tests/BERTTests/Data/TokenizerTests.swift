import Foundation
import Synchronization
import Testing
@testable import BERT

/// Paths for the tokenizer tests, found from this file's location.
enum TokenizerFixtures {
    static let packageRoot = URL(fileURLWithPath: BERTTests.packageRoot)
    static let directory = URL(fileURLWithPath: fixture("tokenizer"))
    static let vocabPath = directory.appendingPathComponent("bert-base-uncased-vocab.txt").path
    static let sharedDatasets = URL(fileURLWithPath: BERTTests.sharedDatasets).standardized
    static var sharedDatasetsPresent: Bool { BERTTests.sharedDatasetsPresent }
    static let vocabulary: Vocabulary = try! Vocabulary(contentsOf: vocabPath)
}

@Suite struct TokenizerTests {
    let vocab = TokenizerFixtures.vocabulary

    @Test func vocabularySpecialIds() throws {
        #expect(vocab.count == 30522)
        #expect(vocab.padId == 0 && vocab.unknownId == 100 && vocab.clsId == 101)
        #expect(vocab.sepId == 102 && vocab.maskId == 103)
        #expect(vocab.id(of: "the") == 1996)
        #expect(vocab.id(of: "##ing") == 2075)
        #expect(vocab.id(of: "no-such-token") == nil)
    }

    @Test func vocabularyErrorsNameTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vocab-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func expectError(_ content: String?, _ name: String, mentions: String) {
            let path = dir.appendingPathComponent(name).path
            if let content { _ = FileManager.default.createFile(atPath: path, contents: Data(content.utf8)) }
            do {
                _ = try Vocabulary(contentsOf: path)
                Issue.record("\(name): no error")
            } catch {
                let message = "\(error)"
                #expect(message.contains(path), "\(message)")
                #expect(message.contains(mentions), "\(message)")
            }
        }
        expectError(nil, "missing.txt", mentions: "cannot read")
        expectError("", "empty.txt", mentions: "empty")
        expectError("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\na\n", "dup.txt", mentions: "duplicate token \"a\" on lines 6 and 7")
        // The first line that repeats an earlier one is named, with the earlier one.
        expectError("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nb\nc\nc\nb\n", "dup2.txt", mentions: "duplicate token \"c\" on lines 7 and 8")
        expectError("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n\na\n", "blank.txt", mentions: "line 6 is empty")
        expectError("[PAD]\n[CLS]\n[SEP]\n[MASK]\na\n", "nounk.txt", mentions: "[UNK]")
    }

    @Test func vocabularyReadsCRLFAndKeepsCanonicalTwinsApart() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vocab-\(UUID().uuidString).txt").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let text = "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]  \r\n[MASK]\r\n;\r\n\u{37E}\r\n\u{C5}\r\n\u{212B}\r\n"
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        let v = try Vocabulary(contentsOf: path)
        #expect(v.count == 9 && v.sepId == 3)
        #expect(v.id(of: ";") == 5 && v.id(of: "\u{37E}") == 6 && v.id(of: "\u{C5}") == 7 && v.id(of: "\u{212B}") == 8)
    }

    @Test func vocabularyRoundTrip() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vocab-\(UUID().uuidString).txt").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try vocab.write(to: path)
        let again = try Vocabulary(contentsOf: path)
        #expect(again.tokens == vocab.tokens)
    }

    @Test func basicExamples() {
        let uncased = BertTokenizer(vocabulary: vocab, lowercase: true)
        #expect(uncased.tokenize("Hello, World!") == ["hello", ",", "world", "!"])
        #expect(uncased.tokenize("unaffable") == ["una", "##ffa", "##ble"])  // as HF tokenizers 0.23.3
        #expect(uncased.tokenize("The [MASK] sat.") == ["the", "[MASK]", "sat", "."])
        #expect(uncased.tokenize("Café") == ["cafe"])
        #expect(uncased.tokenize(String(repeating: "a", count: 101)) == ["[UNK]"])
        #expect(uncased.tokenize("中文") == ["中", "文"])
        let model = uncased.encodeForModel("a b", pair: "c")
        #expect(model.ids.first == vocab.clsId && model.ids.last == vocab.sepId)
        #expect(model.ids.count == 6 && model.segmentIds == [0, 0, 0, 0, 1, 1])
        let single = uncased.encodeForModel("a", pair: nil)
        #expect(single.ids == [101, vocab.id(of: "a")!, 102] && single.segmentIds == [0, 0, 0])
        #expect(uncased.encodeBatch(["Hello", "world"], threads: 2) == [uncased.encode("Hello"), uncased.encode("world")])
    }

    @Test func wordLengthLimit() {
        let word = String(repeating: "a", count: 150)
        let hf = BertTokenizer(vocabulary: vocab, lowercase: true)
        let google = BertTokenizer(vocabulary: vocab, lowercase: true, maxCharactersPerWord: 200)
        #expect(hf.tokenize(word) == ["[UNK]"])
        #expect(google.tokenize(word).count > 1 && !google.tokenize(word).contains("[UNK]"))
        // The limit counts characters after normalization: 100 "é" are 100 "e" once accents are stripped.
        #expect(hf.tokenize(String(repeating: "e\u{301}", count: 100)) != ["[UNK]"])
        #expect(BertTokenizer(vocabulary: vocab, lowercase: false).tokenize(String(repeating: "e\u{301}", count: 100)) == ["[UNK]"])
    }

    @Test func batchMatchesOneByOne() {
        let tokenizer = BertTokenizer(vocabulary: vocab, lowercase: true)
        let texts = (0..<500).map { "Line \($0): the quick brown fox, \($0 * 7919) jumps — déjà vu 中文 [MASK]." }
        #expect(tokenizer.encodeBatch(texts, threads: 2) == texts.map { tokenizer.encode($0) })
    }

    @Test func basicTokenizerWords() {
        let basic = BasicTokenizer(lowercase: true)
        #expect(basic.tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["hello", "!", "how", "are", "you", "?"])
        #expect(basic.tokenize("H\u{00E9}llo") == ["hello"])
        let cased = BasicTokenizer(lowercase: false)
        #expect(cased.tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["HeLLo", "!", "how", "Are", "yoU", "?"])
    }

    /// Every line of the HF fixture, uncased and cased; one failure listing all mismatches.
    @Test func matchesHuggingFaceFixture() throws {
        let url = TokenizerFixtures.directory.appendingPathComponent("expected.jsonl")
        let text = try String(contentsOf: url, encoding: .utf8)
        let uncased = BertTokenizer(vocabulary: vocab, lowercase: true)
        let cased = BertTokenizer(vocabulary: vocab, lowercase: false)
        var mismatches: [String] = []
        var lines = 0
        for line in text.split(separator: "\n") {
            let row = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let sample = row["text"] as! String
            lines += 1
            for (name, tokenizer) in [("uncased", uncased), ("cased", cased)] {
                let expected = (row[name] as! [Any]).map { Int32(($0 as! NSNumber).intValue) }
                let got = tokenizer.encode(sample)
                if got != expected {
                    let show = { (ids: [Int32]) in ids.map { vocab.tokens[Int($0)] }.joined(separator: " ") }
                    mismatches.append("\(name) line \(lines) \(sample.debugDescription)\n  expected: \(show(expected))\n  got:      \(show(got))")
                }
            }
        }
        #expect(lines > 300)
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches of \(2 * lines):\n\(mismatches.joined(separator: "\n"))")
    }
}

/// The scalar table skips Foundation for blocks with no canonical decomposition and decomposes Hangul syllables by
/// arithmetic; both must give Foundation's NFD exactly (and a vocabulary line that needs no trimming is read whole).
@Suite struct ScalarTableShortcutTests {
    @Test func shortcutsGiveFoundationsDecomposition() {
        var differing: [String] = []
        for range in ScalarTable.undecomposable + [ScalarTable.hangulSyllables, 0xC0...0x24F] {
            for value in range {
                let s = Unicode.Scalar(value)!
                let foundation = Array(String(Character(s)).decomposedStringWithCanonicalMapping.unicodeScalars)
                if ScalarTable.canonicalDecomposition(s) != foundation { differing.append(String(value, radix: 16)) }
            }
        }
        #expect(differing.isEmpty, "\(differing.count) differ: \(differing.prefix(10))")
        #expect(ScalarTable.canonicalDecomposition(Unicode.Scalar(0xD4DB)!).map(\.value) == [0x1111, 0x1171, 0x11B6])
        #expect(ScalarTable.canonicalDecomposition(Unicode.Scalar(0xAC00)!).map(\.value) == [0x1100, 0x1161])
    }

    /// The plane is classified a block at a time on first use, from whichever thread looks first: every entry, with
    /// four threads filling a fresh table in opposite orders, is what the rules give for that scalar.
    @Test func blocksFilledFromManyThreadsFollowTheRules() {
        let table = ScalarTable(lowercase: true)
        let mismatches = Mutex<[UInt32]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            var astral: [UInt32] = []
            for k in 0..<65536 {
                let v = UInt32(t % 2 == 0 ? k : 65535 - k)
                let e = table.lookup(v, astral: &astral)
                guard k % 4 == t else { continue }   // each scalar checked once
                let rule = ScalarTable.classify(v, lowercase: true)
                let outputs = (0..<e.count).map { e.outputs![$0] }
                if outputs != rule.outputs || (e.flags & ScalarTable.cjkFlag != 0) != rule.cjk
                    || (e.flags & ScalarTable.breakFlag != 0) != rule.isBreak {
                    mismatches.withLock { $0.append(v) }
                }
            }
        }
        let found = mismatches.withLock { $0 }
        #expect(found.isEmpty, "\(found.count) differ: \(found.prefix(10).map { String($0, radix: 16) })")
    }

    @Test func vocabularyLinesAreTrimmedOnlyOfTrailingWhiteSpace() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vocab-trim-\(getpid()).txt").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let lines = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "plain", "space \u{3000}", "tab\t", "é", "naïve\r"]
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let v = try Vocabulary(contentsOf: path)
        #expect(v.tokens == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "plain", "space", "tab", "é", "naïve"])
    }
}
