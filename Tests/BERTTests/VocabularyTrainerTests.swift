import Foundation
import Testing
@testable import BERT

@Suite struct VocabularyTrainerTests {
    /// The texts of the tokenizer fixture (about 300 lines, mostly Wikipedia) as a small corpus.
    static let corpus: [String] = {
        let url = TokenizerFixtures.directory.appendingPathComponent("expected.jsonl")
        let text = try! String(contentsOf: url, encoding: .utf8)
        return text.split(separator: "\n").map {
            (try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["text"] as! String
        }
    }()

    static func train(size: Int, threads: Int = 2, lowercase: Bool = true, lines: [String] = corpus) throws
        -> (Vocabulary, VocabularyTrainer.Summary) {
        let trainer = VocabularyTrainer(options: .init(vocabSize: size, lowercase: lowercase, threads: threads))
        trainer.add(text: lines.joined(separator: "\n"))
        let vocabulary = try trainer.train()
        return (vocabulary, trainer.summary)
    }

    @Test func layoutAndSize() throws {
        let (vocab, summary) = try Self.train(size: 3000)
        #expect(vocab.count == 3000 && summary.vocabularySize == 3000)
        #expect(vocab.padId == 0 && vocab.unknownId == 100 && vocab.clsId == 101)
        #expect(vocab.sepId == 102 && vocab.maskId == 103)
        #expect(vocab.tokens[1] == "[unused0]" && vocab.tokens[99] == "[unused98]")
        // Characters (code-point order), then their ## forms, then merged pieces.
        let a = summary.alphabet, c = summary.continuationCharacters
        let chars = vocab.tokens[104..<(104 + a)]
        #expect(chars.allSatisfy { $0.unicodeScalars.count == 1 })
        #expect(chars.map { $0.unicodeScalars.first!.value } == chars.map { $0.unicodeScalars.first!.value }.sorted())
        let hashed = vocab.tokens[(104 + a)..<(104 + a + c)]
        // (Scalars, not `hasPrefix`: "##" + a combining mark is not a String with prefix "##".)
        #expect(hashed.allSatisfy { $0.unicodeScalars.starts(with: "##".unicodeScalars) && $0.unicodeScalars.count == 3 })
        #expect(vocab.tokens[(104 + a + c)...].allSatisfy { $0.unicodeScalars.count >= 2 })
        #expect(summary.merges >= 3000 - 104 - a - c)
    }

    @Test func everyCharacterIsInTheVocabulary() throws {
        let (vocab, _) = try Self.train(size: 2000)
        let basic = BasicTokenizer(lowercase: true)
        var missing = Set<String>()
        for line in Self.corpus {
            for word in basic.tokenize(line) {
                for (i, s) in word.unicodeScalars.enumerated() {
                    let piece = (i == 0 ? "" : "##") + String(s)
                    if vocab.id(of: piece) == nil { missing.insert(piece) }
                }
            }
        }
        #expect(missing.isEmpty, "missing: \(missing.sorted().prefix(20))")
    }

    @Test func deterministicAcrossRunsAndThreads() throws {
        let (one, _) = try Self.train(size: 2500, threads: 1)
        let (two, _) = try Self.train(size: 2500, threads: 2)
        let (again, _) = try Self.train(size: 2500, threads: 2)
        #expect(one.tokens == two.tokens)
        #expect(two.tokens == again.tokens)
    }

    @Test func trainedVocabularyTokenizesItsTextWithFewUnknowns() throws {
        for lowercase in [true, false] {
            let (vocab, _) = try Self.train(size: 4000, lowercase: lowercase)
            let tokenizer = BertTokenizer(vocabulary: vocab, lowercase: lowercase)
            var tokens = 0, unknown = 0
            for line in Self.corpus {
                let ids = tokenizer.encode(line)
                tokens += ids.count
                unknown += ids.filter { $0 == vocab.unknownId }.count
            }
            // The only [UNK]s left are the words over 100 characters of the hand-written cases.
            #expect(tokens > 15_000)
            #expect(unknown <= 5, "lowercase \(lowercase): \(unknown) [UNK] in \(tokens) tokens")
        }
    }

    @Test func mergesFollowPairFrequency() throws {
        // "low" ×5, "lower" ×2, "newest" ×6, "widest" ×3 (the BPE paper's example).
        let lines = Array(repeating: "low", count: 5) + Array(repeating: "lower", count: 2)
            + Array(repeating: "newest", count: 6) + Array(repeating: "widest", count: 3)
        let alphabet = 104 + 10 + 8  // d e i l n o r s t w, then ## of d e i o r s t w
        let (vocab, summary) = try Self.train(size: alphabet + 4, lines: lines)
        #expect(summary.alphabet == 10 && summary.continuationCharacters == 8)
        // (##e, ##s) and (##s, ##t) both occur 9 times: "##e" < "##s" goes first; then (##es, ##t) 9.
        // (l, ##o) and (##o, ##w) both occur 7 times: "##o" < "l" goes first; then (l, ##ow) 7.
        #expect(Array(vocab.tokens.suffix(4)) == ["##es", "##est", "##ow", "low"])
    }

    @Test func documentMarkersAreSkipped() throws {
        let lines = ["<doc id=\"1\" url=\"x\" title=\"Title\">", "alpha beta", "</doc>"]
        let trainer = VocabularyTrainer(options: .init(vocabSize: 200, threads: 1))
        trainer.add(text: lines.joined(separator: "\n"))
        let vocab = try trainer.train()
        #expect(vocab.id(of: "<") == nil && vocab.id(of: "d") == nil)
        #expect(vocab.id(of: "a") != nil && vocab.id(of: "##l") != nil)
        #expect(trainer.summary.words == 2)
    }

    @Test func tooSmallVocabularyIsAnError() {
        #expect(throws: VocabularyTrainer.Error.self) { try Self.train(size: 110) }
    }
}

/// Training on a real Wikipedia file from `shared/datasets` (skipped when it is absent).
@Suite struct VocabularyTrainerWikipediaTests {
    static let wiki = TokenizerFixtures.sharedDatasets.appendingPathComponent("wikipedia/enwiki_wikiextractor_2015")

    @Test(.enabled(if: TokenizerFixtures.sharedDatasetsPresent))
    func trainOnOneFileTokenizeAnother() throws {
        let trainer = VocabularyTrainer(options: .init(vocabSize: 8000, threads: 2))
        try trainer.addFile(atPath: Self.wiki.appendingPathComponent("wiki_00").path)
        let vocab = try trainer.train()
        #expect(vocab.count == 8000 && vocab.unknownId == 100)
        #expect(trainer.summary.files == 1 && trainer.summary.words > 150_000)
        // Held-out text: few [UNK]s (only characters never seen in training).
        let heldOut = try String(contentsOf: Self.wiki.appendingPathComponent("wiki_01"), encoding: .utf8)
        let lines = heldOut.split(separator: "\n").filter { !$0.hasPrefix("<doc") && !$0.hasPrefix("</doc>") }.map(String.init)
        let tokenizer = BertTokenizer(vocabulary: vocab, lowercase: true)
        let ids = tokenizer.encodeBatch(lines, threads: 2).joined()
        let unknown = ids.filter { $0 == vocab.unknownId }.count
        #expect(ids.count > 150_000)
        #expect(Double(unknown) / Double(ids.count) < 0.001, "\(unknown) [UNK] in \(ids.count) tokens")
    }
}
