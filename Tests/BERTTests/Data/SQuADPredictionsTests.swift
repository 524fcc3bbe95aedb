import Foundation
import Testing
@testable import BERT

/// From start/end logits to answer text: hand-made logits, and run_squad.py's write_predictions (ported in
/// `scripts/reference/squad_features_reference.py`) on real dev examples with synthetic logits.
@Suite struct SQuADPredictionsTests {
    static let tokenizer = BertTokenizer(vocabulary: TokenizerFixtures.vocabulary, lowercase: true)

    func same(_ a: String, _ b: String) -> Bool { Array(a.unicodeScalars) == Array(b.unicodeScalars) }

    /// The positions of `pieces` in the feature's tokens.
    func locate(_ pieces: [String], in feature: SQuADFeature) -> (Int, Int)? {
        let tokens = feature.inputIds[0..<feature.tokenCount].map { Self.tokenizer.vocabulary.tokens[Int($0)] }
        for s in tokens.indices where s + pieces.count <= tokens.count && Array(tokens[s..<(s + pieces.count)]) == pieces {
            return (s, s + pieces.count - 1)
        }
        return nil
    }

    @Test func finalTextRecoversOriginalSpelling() {
        #expect(SQuADPostProcessor.finalText(predicted: "steve smith", original: "Steve Smith's", lowercase: true) == "Steve Smith")
        #expect(SQuADPostProcessor.finalText(predicted: "denver broncos", original: "Denver Broncos,", lowercase: true) == "Denver Broncos")
        #expect(SQuADPostProcessor.finalText(predicted: "the 1990s", original: "(the 1990s)", lowercase: true) == "the 1990s")
        #expect(same(SQuADPostProcessor.finalText(predicted: "montreal", original: "(Montréal).", lowercase: true), "Montréal"))
        // Not found: the original words come back whole.
        #expect(SQuADPostProcessor.finalText(predicted: "paris", original: "(Montréal).", lowercase: true) == "(Montréal).")
        // A decomposed accent makes the lengths differ after stripping spaces: the original comes back.
        #expect(same(SQuADPostProcessor.finalText(predicted: "cafe", original: "Cafe\u{301}!", lowercase: true), "Cafe\u{301}!"))
        #expect(SQuADPostProcessor.finalText(predicted: "", original: "Denver", lowercase: true) == "Denver")
        #expect(SQuADPostProcessor.finalText(predicted: "Broncos", original: "Denver Broncos'", lowercase: false) == "Broncos")
    }

    @Test func detokenize() {
        #expect(SQuADPostProcessor.detokenize(["den", "##ver", "bron", "##cos"]).string == "denver broncos")
        #expect(SQuADPostProcessor.detokenize(["##s", "1990", "##s"]).string == "s 1990s")
        #expect(SQuADPostProcessor.detokenize(["#", "#", "##"]).string == "# #")
    }

    @Test func handMadeLogitsGiveOriginalText() throws {
        let context = "In the 1990s, the Denver Broncos played at Mile High; their coach was Dan Reeves (a Texan) "
            + "and their fans met at Café Déjà-Vu's bar in Montréal."
        let json = """
            {"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": \(PythonText.jsonLiteral(context)), "qas": [
              {"id": "team", "question": "Which team?", "answers": [{"text": "Denver Broncos", "answer_start": 18}]},
              {"id": "decade", "question": "When?", "answers": [{"text": "the 1990s", "answer_start": 3}]},
              {"id": "cafe", "question": "Where did fans meet?", "answers": [{"text": "Café Déjà-Vu", "answer_start": 108}]},
              {"id": "city", "question": "Which city?", "answers": [{"text": "Montréal", "answer_start": 132}]}]}]}]}
            """
        let dataset = try SQuADDataset(data: Data(json.utf8), source: "inline.json")
        let (examples, _) = try dataset.examples(training: false)
        let builder = try SQuADFeatureBuilder(tokenizer: Self.tokenizer, maxSeqLength: 64, docStride: 16, maxQueryLength: 16)
        let features = builder.features(for: examples, training: false)
        let targets: [String: [String]] = [
            "team": ["denver", "broncos"], "decade": ["the", "1990s"], "cafe": ["cafe", "deja", "-", "vu"],
            "city": ["montreal"],
        ]
        var starts: [[Float]] = [], ends: [[Float]] = []
        for feature in features {
            var s = [Float](repeating: 0, count: 64), e = [Float](repeating: 0, count: 64)
            // The question tokens score highest of all, and must be ignored.
            s[1] = 9; e[1] = 9
            let id = examples[feature.exampleIndex].id
            let pieces = targets[id]!.flatMap { Self.tokenizer.tokenize($0) }
            if let (a, b) = locate(pieces, in: feature), feature.tokenIsMaxContext[a] {
                s[a] = 5; e[b] = 5
                // A longer competitor with a lower score.
                if b + 1 < feature.tokenCount - 1 { e[b + 1] = 4 }
            }
            starts.append(s)
            ends.append(e)
        }
        let processor = SQuADPostProcessor(vocabulary: Self.tokenizer.vocabulary, lowercase: true)
        let predictions = processor.predictions(examples: examples, features: features, startLogits: starts, endLogits: ends)
        let answers = Dictionary(uniqueKeysWithValues: predictions.map { ($0.id, $0.text) })
        #expect(answers["team"] == "Denver Broncos")
        #expect(answers["decade"] == "the 1990s")
        #expect(same(answers["cafe"] ?? "", "Café Déjà-Vu"), "\(answers["cafe"] ?? "nil")")
        #expect(same(answers["city"] ?? "", "Montréal"), "\(answers["city"] ?? "nil")")
        for p in predictions {
            #expect(p.nBest.count <= 20 && abs(p.nBest.reduce(0) { $0 + $1.probability } - 1) < 1e-12)
            #expect(zip(p.nBest, p.nBest.dropFirst()).allSatisfy { $0.startLogit + $0.endLogit >= $1.startLogit + $1.endLogit })
        }
        let written = SQuADPostProcessor.predictionsJSON(predictions)
        #expect(written.hasPrefix("{\n    \"team\": \"Denver Broncos\",\n"))
        #expect(written.contains("\"cafe\": \"Caf\\u00e9 D\\u00e9j\\u00e0-Vu\""))
        #expect(written.hasSuffix("\"Montr\\u00e9al\"\n}\n"))
    }

    @Test func noValidSpanGivesTheNonceAnswer() throws {
        let example = SQuADExample(id: "x", question: "q", documentWords: ["a", "b"], paragraphIndex: 0, answers: [],
                                   answerText: nil, startWord: nil, endWord: nil)
        let builder = try SQuADFeatureBuilder(tokenizer: Self.tokenizer, maxSeqLength: 16, docStride: 4, maxQueryLength: 4)
        let features = builder.features(for: [example], training: false)
        var s = [Float](repeating: 0, count: 16), e = [Float](repeating: 0, count: 16)
        for i in 0..<3 { s[i] = 10; e[i] = 10 }  // only [CLS] q [SEP]
        let processor = SQuADPostProcessor(vocabulary: Self.tokenizer.vocabulary, lowercase: true, nBestSize: 3)
        let p = processor.predictions(examples: [example], features: features, startLogits: [s], endLogits: [e])
        #expect(p[0].nBest == [SQuADCandidate(text: "empty", probability: 1, startLogit: 0, endLogit: 0)])
    }

    struct Reference: Decodable {
        struct Candidate: Decodable { let text: String; let probability: Double; let start_logit: Double; let end_logit: Double }
        struct Case: Decodable { let id: String; let start_logits: [[Float]]; let end_logits: [[Float]]; let nbest: [Candidate] }
        let n_best_size: Int
        let max_answer_length: Int
        let cases: [Case]
    }

    @Test(.enabled(if: SQuADTests.devPresent)) func devExamplesMatchReference() throws {
        let reference = try JSONDecoder().decode(
            Reference.self, from: Data(contentsOf: URL(fileURLWithPath: fixture("squad/postprocess_reference.json"))))
        let (examples, _) = try SQuADDataset(contentsOf: SQuADTests.devPath).examples(training: false)
        let builder = try SQuADFeatureBuilder(tokenizer: Self.tokenizer)
        let processor = SQuADPostProcessor(vocabulary: Self.tokenizer.vocabulary, lowercase: true,
                                           nBestSize: reference.n_best_size, maxAnswerLength: reference.max_answer_length)
        for c in reference.cases {
            let example = try #require(examples.first { $0.id == c.id })
            let features = builder.features(for: [example], training: false)
            #expect(features.count == c.start_logits.count, "\(c.id): \(features.count) features")
            guard features.count == c.start_logits.count else { continue }
            let p = processor.predictions(examples: [example], features: features, startLogits: c.start_logits,
                                          endLogits: c.end_logits)[0]
            #expect(p.nBest.count == c.nbest.count, "\(c.id): \(p.nBest.count) candidates, expected \(c.nbest.count)")
            for (got, expected) in zip(p.nBest, c.nbest) {
                #expect(same(got.text, expected.text), "\(c.id): \(got.text.debugDescription) vs \(expected.text.debugDescription)")
                #expect(got.startLogit == expected.start_logit && got.endLogit == expected.end_logit, "\(c.id): \(got)")
                #expect(abs(got.probability - expected.probability) <= 1e-12, "\(c.id): \(got.probability) vs \(expected.probability)")
            }
        }
    }

    /// The reference's patterned logits with the gold span 8 higher (`oracle_logits` in the script).
    static func oracleLogits(feature: Int, start: Int, end: Int, S: Int) -> ([Float], [Float]) {
        var s = (0..<S).map { Float((($0 * 37 + feature * 11) % 23)) / 4 - 2.75 }
        var e = (0..<S).map { Float((($0 * 29 + feature * 7) % 19)) / 4 - 2.25 }
        if start > 0 { s[start] += 8; e[end] += 8 }
        return (s, e)
    }

    /// Every dev question through features, oracle logits, n-best and get_final_text, against the reference
    /// port's answers; then the official EM/F1 of those answers.
    @Test(.enabled(if: SQuADTests.devPresent)) func devSetOracleAnswersMatchReference() throws {
        let reference = try JSONDecoder().decode(
            SQuADTests.Reference.self, from: Data(contentsOf: URL(fileURLWithPath: fixture("squad/features_reference.json"))))
        let dataset = try SQuADDataset(contentsOf: SQuADTests.devPath)
        let (examples, _) = try dataset.examples(training: true)
        let builder = try SQuADFeatureBuilder(tokenizer: Self.tokenizer)
        let features = builder.features(for: examples, training: true)
        var starts: [[Float]] = [], ends: [[Float]] = []
        for (f, feature) in features.enumerated() {
            let (s, e) = Self.oracleLogits(feature: f, start: feature.startPosition, end: feature.endPosition, S: 384)
            starts.append(s)
            ends.append(e)
        }
        let processor = SQuADPostProcessor(vocabulary: Self.tokenizer.vocabulary, lowercase: true)
        let predictions = processor.predictions(examples: examples, features: features, startLogits: starts, endLogits: ends)
        var matched = 0, shown = 0
        for (p, expected) in zip(predictions, reference.oracle.answers) {
            if SQuADTests.fnv1a64(p.text).prefix(8) == expected { matched += 1 } else if shown < 5 {
                shown += 1
                Issue.record("\(p.id): answer \(p.text.debugDescription) differs from the reference")
            }
        }
        let score = SQuADEvaluation.evaluate(dataset: dataset, predictions: Dictionary(
            uniqueKeysWithValues: predictions.map { ($0.id, $0.text) }))
        print("SQuAD dev oracle answers matching the reference: \(matched)/\(reference.oracle.answers.count); "
              + "EM \(score.exactMatch) F1 \(score.f1) (reference \(reference.oracle.exact_match), \(reference.oracle.f1))")
        #expect(matched == reference.oracle.answers.count)
        #expect(abs(score.exactMatch - reference.oracle.exact_match) <= 1e-9)
        #expect(abs(score.f1 - reference.oracle.f1) <= 1e-9)
    }
}
