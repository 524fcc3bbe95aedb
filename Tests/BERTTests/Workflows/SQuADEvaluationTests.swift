import Foundation
import Testing
@testable import BERT

/// SQuAD v1.1 EM/F1 against `scripts/reference/squad_eval_reference.py` (the official evaluate-v1.1.py rules).
@Suite struct SQuADEvaluationTests {
    struct Cases: Decodable {
        struct Totals: Decodable { let exact_match: Double; let f1: Double }
        struct Question: Decodable {
            let id: String
            let answered: Bool
            let exact_match: Double
            let f1: Double
            let normalized_prediction: String?
            let normalized_answers: [String]?
        }
        struct Normalize: Decodable { let text: String; let normalized: String }
        let totals: Totals
        let questions: [Question]
        let normalize: [Normalize]
    }

    static let cases: Cases = try! JSONDecoder().decode(
        Cases.self, from: Data(contentsOf: URL(fileURLWithPath: fixture("squad/eval_cases.json"))))

    /// Code-point equality (Swift's `==` on strings is canonical equivalence, Python's is not).
    func same(_ a: String, _ b: String) -> Bool { Array(a.unicodeScalars) == Array(b.unicodeScalars) }

    @Test func normalizeMatchesReference() {
        for c in Self.cases.normalize {
            let got = SQuADEvaluation.normalizeAnswer(c.text)
            #expect(same(got, c.normalized), "normalize(\(c.text.debugDescription)) = \(got.debugDescription), expected \(c.normalized.debugDescription)")
        }
    }

    @Test func perQuestionScoresMatchReference() throws {
        let dataset = try SQuADDataset(contentsOf: fixture("squad/eval_dataset.json"))
        let predictions = try SQuADEvaluation.readPredictions(contentsOf: fixture("squad/eval_predictions.json"))
        let questions = dataset.questions
        #expect(questions.count == Self.cases.questions.count)
        for (question, expected) in zip(questions, Self.cases.questions) {
            #expect(question.id == expected.id)
            guard let prediction = predictions[question.id] else {
                #expect(!expected.answered, "\(question.id) has a prediction in the reference")
                continue
            }
            let (em, f1) = SQuADEvaluation.score(prediction, groundTruths: question.answers.map(\.text))
            #expect((em ? 1.0 : 0.0) == expected.exact_match, "\(question.id): EM \(em)")
            #expect(abs(f1 - expected.f1) <= 1e-12, "\(question.id): F1 \(f1), expected \(expected.f1)")
        }
    }

    @Test func totalsMatchReference() throws {
        let dataset = try SQuADDataset(contentsOf: fixture("squad/eval_dataset.json"))
        let predictions = try SQuADEvaluation.readPredictions(contentsOf: fixture("squad/eval_predictions.json"))
        let score = SQuADEvaluation.evaluate(dataset: dataset, predictions: predictions)
        #expect(abs(score.exactMatch - Self.cases.totals.exact_match) <= 1e-9, "EM \(score.exactMatch)")
        #expect(abs(score.f1 - Self.cases.totals.f1) <= 1e-9, "F1 \(score.f1)")
        #expect(score.unanswered == ["q-missing"])
        #expect(score.questionCount == Self.cases.questions.count)
    }

    @Test func handPickedRules() {
        // Articles are whole words only; the alternation tries "a" before "an".
        #expect(SQuADEvaluation.normalizeAnswer("An anthem, a theatre and THE end") == "anthem theatre and end")
        // A combining mark is not a word character in Python's `re`, so "the" before it is an article.
        #expect(same(SQuADEvaluation.normalizeAnswer("the\u{301}"), "\u{301}"))
        // Final sigma, as Python's str.lower().
        #expect(same(SQuADEvaluation.normalizeAnswer("ΟΔΟΣ ΣΑ"), "οδος σα"))
        #expect(SQuADEvaluation.f1("", "anything") == 0)
        #expect(SQuADEvaluation.exactMatch("The", "an"))
        #expect(SQuADEvaluation.f1("cat cat cat", "cat cat dog") == 2.0 / 3.0)
    }

    @Test func predictionsFileErrorsNameTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("squad-eval-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, text) in [("broken.json", "{\"a\": "), ("list.json", "[\"a\"]"), ("number.json", "{\"a\": 3}")] {
            let path = dir.appendingPathComponent(name).path
            _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
            do {
                _ = try SQuADEvaluation.readPredictions(contentsOf: path)
                Issue.record("\(name) was accepted")
            } catch let error as BertError {
                #expect(error.description.contains(path) && !error.description.contains("\n"), "\(error)")
            }
        }
    }
}
