import Foundation
import Testing
@testable import BERT

/// SQuAD reading and feature building, against `scripts/reference/squad_features_reference.py` (a port of
/// run_squad.py) on the real dev set.
@Suite struct SQuADTests {
    static let devPath = sharedDatasets + "/squad_v1.1/dev-v1.1.json"
    static var devPresent: Bool {
        let present = FileManager.default.fileExists(atPath: devPath)
        if !present { print("note: \(devPath) is absent; SQuAD dev-set tests skipped") }
        return present
    }

    struct Reference: Decodable {
        struct Feature: Decodable {
            let span: Int, tokens: Int, start: Int, end: Int
            let ids: String, layout: String
        }
        struct Example: Decodable {
            let id: String
            let start_word: Int
            let end_word: Int
            let features: [Feature]
        }
        let max_seq_length: Int, doc_stride: Int, max_query_length: Int
        let examples: Int, features: Int
        let skipped: [String]
        let detail: [Example]
        let digests: [String]
        struct Oracle: Decodable { let exact_match: Double; let f1: Double; let answers: [String] }
        let oracle: Oracle
    }

    /// FNV-1a 64 over the UTF-8 of `text`, as the reference script hashes.
    static func fnv1a64(_ text: String) -> String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    static func record(_ f: SQuADFeature) -> Reference.Feature {
        func joined<T>(_ xs: [T]) -> String { xs.map { "\($0)" }.joined(separator: ",") }
        let layout = joined(f.inputMask) + "|" + joined(f.segmentIds) + "|" + joined(f.tokenToOriginalWord) + "|"
            + joined(f.tokenIsMaxContext.map { $0 ? 1 : 0 })
        return Reference.Feature(span: f.docSpanIndex, tokens: f.tokenCount, start: f.startPosition,
                                 end: f.endPosition, ids: fnv1a64(joined(f.inputIds)), layout: fnv1a64(layout))
    }

    static func digest(_ records: [Reference.Feature]) -> String {
        String(fnv1a64(records.map { "\($0.span),\($0.tokens),\($0.start),\($0.end),\($0.ids),\($0.layout)" }
            .joined(separator: ";")).prefix(12))
    }

    @Test func wordSplitAndOffsets() {
        let (words, offsets) = SQuADDataset.splitWords(" The  leader\u{202F}was\u{A0}John (1895-1943).\n")
        #expect(words == ["The", "leader", "was\u{A0}John", "(1895-1943)."])
        #expect(offsets.count == 35)
        #expect(offsets[0] == -1 && offsets[1] == 0 && offsets[4] == 0 && offsets[5] == 0 && offsets[6] == 1)
        #expect(offsets[13] == 2 && offsets[16] == 2 && offsets[22] == 3 && offsets[34] == 3)
    }

    @Test func examplesLocateAnswersAndSkipUnrecoverable() throws {
        let json = """
            {"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": "The leader was John Smith (1895-1943).",
             "qas": [{"id": "a", "question": "Born?", "answers": [{"text": "1895", "answer_start": 27}]},
                     {"id": "b", "question": "Who?", "answers": [{"text": "Jon", "answer_start": 15}, {"text": "x", "answer_start": 0}]},
                     {"id": "c", "question": "Who led?", "answers": [{"text": "John Smith", "answer_start": 15}]}]}]}]}
            """
        let dataset = try SQuADDataset(data: Data(json.utf8), source: "inline.json")
        let (train, skipped) = try dataset.examples(training: true)
        #expect(train.map(\.id) == ["a", "c"] && skipped == ["b"])
        #expect(train[0].startWord == 5 && train[0].endWord == 5)
        #expect(train[1].startWord == 3 && train[1].endWord == 4 && train[1].answerText == "John Smith")
        let (all, none) = try dataset.examples(training: false)
        #expect(all.count == 3 && none.isEmpty && all[1].answers == ["Jon", "x"])

        // "(1895-1943)." is one word; the answer moves to the WordPiece "1895".
        let tokenizer = BertTokenizer(vocabulary: TokenizerFixtures.vocabulary, lowercase: true)
        let builder = try SQuADFeatureBuilder(tokenizer: tokenizer, maxSeqLength: 32, docStride: 8, maxQueryLength: 4)
        let features = builder.features(for: train, training: true)
        #expect(features.count == 2)
        let f = features[0]
        let tokens = f.inputIds[0..<f.tokenCount].map { tokenizer.vocabulary.tokens[Int($0)] }
        #expect(tokens == ["[CLS]", "born", "?", "[SEP]", "the", "leader", "was", "john", "smith", "(", "1895", "-",
                           "1943", ")", ".", "[SEP]"])
        #expect(f.startPosition == 10 && f.endPosition == 10)
        #expect(Array(f.segmentIds[0..<f.tokenCount]) == [0, 0, 0, 0] + Array(repeating: 1, count: 12))
        #expect(f.tokenToOriginalWord[0..<f.tokenCount] == [-1, -1, -1, -1, 0, 1, 2, 3, 4, 5, 5, 5, 5, 5, 5, -1])
        #expect(f.inputMask.reduce(0, +) == 16 && f.inputIds[16...].allSatisfy { $0 == 0 })
        #expect(features[1].startPosition == 8 && features[1].endPosition == 9)
        #expect(features.map(\.uniqueId) == [1_000_000_000, 1_000_000_001])
    }

    @Test func slidingWindowsAndMaxContext() {
        // run_squad.py's comment: "the man went to the store and bought a gallon of milk".
        let spans = SQuADFeatureBuilder.docSpans(pieceCount: 12, maxTokensForDoc: 5, docStride: 2)
        #expect(spans.map(\.start) == [0, 2, 4, 6, 8])
        #expect(spans.map(\.length) == [5, 5, 5, 5, 4])
        // Piece 7 lies in spans 2 (4...8: left 3, right 1) and 3 (6...10: left 1, right 3): equal scores, the
        // first wins.
        #expect(SQuADFeatureBuilder.isMaxContext(spans, current: 3, position: 7) == false)
        #expect(SQuADFeatureBuilder.isMaxContext(spans, current: 2, position: 7))
        // Equal min-context: the longer span wins by 0.01 × length; equal everything: the first.
        let uneven = [SQuADFeatureBuilder.DocSpan(start: 0, length: 5), SQuADFeatureBuilder.DocSpan(start: 2, length: 3)]
        #expect(SQuADFeatureBuilder.isMaxContext(uneven, current: 0, position: 3))
        let twins = [SQuADFeatureBuilder.DocSpan(start: 0, length: 4), SQuADFeatureBuilder.DocSpan(start: 0, length: 4)]
        #expect(SQuADFeatureBuilder.isMaxContext(twins, current: 0, position: 1))
        #expect(!SQuADFeatureBuilder.isMaxContext(twins, current: 1, position: 1))
        #expect(SQuADFeatureBuilder.docSpans(pieceCount: 0, maxTokensForDoc: 5, docStride: 2).isEmpty)
    }

    @Test func improveAnswerSpan() {
        // pieces: ( 1895 - 1943 ) .
        let pieces: [Int32] = [1, 2, 3, 4, 5, 6]
        #expect(SQuADFeatureBuilder.improveAnswerSpan(pieces: pieces, start: 0, end: 5, answer: [2]) == (1, 1))
        #expect(SQuADFeatureBuilder.improveAnswerSpan(pieces: pieces, start: 0, end: 5, answer: [2, 3, 4]) == (1, 3))
        #expect(SQuADFeatureBuilder.improveAnswerSpan(pieces: pieces, start: 0, end: 5, answer: [9]) == (0, 5))
        #expect(SQuADFeatureBuilder.improveAnswerSpan(pieces: pieces, start: 2, end: 5, answer: [2]) == (2, 5))
    }

    @Test func malformedFilesGiveOneLineErrorsNamingTheFile() throws {
        let cases: [(String, String)] = [
            ("{\"data\": [", "not valid JSON"),
            ("{\"version\": \"1.1\"}", "missing key \"data\""),
            ("{\"data\": [{\"paragraphs\": [{\"qas\": []}]}]}", "data[0].paragraphs[0]: missing key \"context\""),
            ("{\"data\": [{\"paragraphs\": [{\"context\": \"c\", \"qas\": [{\"id\": 5, \"question\": \"q\", \"answers\": []}]}]}]}",
             "data[0].paragraphs[0].qas[0].id: expected a string"),
        ]
        for (json, expected) in cases {
            do {
                _ = try SQuADDataset(data: Data(json.utf8), source: "/tmp/bad-squad.json")
                Issue.record("accepted \(json)")
            } catch let error as BertError {
                let message = error.description
                #expect(message.hasPrefix("squad /tmp/bad-squad.json: ") && message.contains(expected)
                        && !message.contains("\n"), "\(message)")
            }
        }
        #expect(throws: BertError.self) { try SQuADDataset(contentsOf: "/nonexistent/dev.json") }
    }

    @Test(.enabled(if: devPresent)) func devSetFeaturesMatchReference() throws {
        let reference = try JSONDecoder().decode(
            Reference.self, from: Data(contentsOf: URL(fileURLWithPath: fixture("squad/features_reference.json"))))
        let dataset = try SQuADDataset(contentsOf: Self.devPath)
        #expect(dataset.version == "1.1" && dataset.questions.count == 10570)
        let (examples, skipped) = try dataset.examples(training: true)
        #expect(examples.count == reference.examples && skipped == reference.skipped)
        let tokenizer = BertTokenizer(vocabulary: TokenizerFixtures.vocabulary, lowercase: true)
        let builder = try SQuADFeatureBuilder(tokenizer: tokenizer, maxSeqLength: reference.max_seq_length,
                                              docStride: reference.doc_stride, maxQueryLength: reference.max_query_length)
        let features = builder.features(for: examples, training: true)
        var byExample = [[Reference.Feature]](repeating: [], count: examples.count)
        for f in features { byExample[f.exampleIndex].append(Self.record(f)) }

        // The first examples field by field.
        var detailMismatches = 0
        for (i, expected) in reference.detail.enumerated() {
            let example = examples[i], got = byExample[i]
            var ok = example.id == expected.id && example.startWord == expected.start_word
                && example.endWord == expected.end_word && got.count == expected.features.count
            for (g, e) in zip(got, expected.features) {
                ok = ok && g.span == e.span && g.tokens == e.tokens && g.start == e.start && g.end == e.end
                    && g.ids == e.ids && g.layout == e.layout
            }
            if !ok {
                detailMismatches += 1
                if detailMismatches <= 5 { Issue.record("example \(i) (\(expected.id)) differs: got \(got), expected \(expected.features)") }
            }
        }
        // The whole dev set by digest.
        var matched = 0
        for (i, digest) in reference.digests.enumerated() where i < examples.count && Self.digest(byExample[i]) == digest {
            matched += 1
        }
        print("SQuAD dev features: \(features.count) (reference \(reference.features)); examples matching the reference: \(matched)/\(reference.digests.count)")
        #expect(features.count == reference.features)
        #expect(detailMismatches == 0)
        #expect(matched == reference.digests.count)
    }
}
