import Foundation

/// SQuAD v1.1 exact match and F1 with the official `evaluate-v1.1.py` semantics.
///
/// Answers are normalised (lower-case, ASCII punctuation removed, the whole words a/an/the replaced by a
/// space, whitespace collapsed), each prediction is scored against every gold answer and the best score
/// kept; a question without a prediction scores 0. Totals are 100 × the mean over all questions of the
/// dataset. Strings are compared code point by code point, as Python does.
public enum SQuADEvaluation {
    /// The totals, and the questions that had no prediction.
    public struct Score: Sendable, Equatable {
        /// 100 × the fraction of questions answered exactly.
        public let exactMatch: Double
        /// 100 × the mean token F1.
        public let f1: Double
        /// How many questions the dataset holds.
        public let questionCount: Int
        /// Ids of the questions that had no prediction (scored 0), in dataset order.
        public let unanswered: [String]

        /// `{"exact_match": …, "f1": …}` as the official script prints it.
        public var json: String {
            "{\"exact_match\": \(PythonText.floatLiteral(exactMatch)), \"f1\": \(PythonText.floatLiteral(f1))}"
        }
    }

    /// The official `normalize_answer`, on code points.
    public static func normalizeAnswer(_ s: String) -> String { normalize(Array(s.unicodeScalars)).string }

    /// The normalised answer's tokens.
    static func normalizedTokens(_ s: String) -> [[Unicode.Scalar]] { PythonText.split(normalize(Array(s.unicodeScalars))) }

    static func normalize(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        let lower = PythonText.lowercased(s)
        let noPunctuation = lower.filter { !PythonText.isASCIIPunctuation($0) }
        return PythonText.collapseWhitespace(removeArticles(noPunctuation))
    }

    /// `re.sub(r'\b(a|an|the)\b', ' ', text)`: the leftmost alternative that matches wins at each position
    /// ("a" before "an"), matches do not overlap, and `\b` uses Python's Unicode word characters.
    static func removeArticles(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        func isWord(_ i: Int) -> Bool { i >= 0 && i < text.count && PythonText.isWordCharacter(text[i]) }
        func boundary(_ i: Int) -> Bool { isWord(i - 1) != isWord(i) }
        let articles: [[Unicode.Scalar]] = [["a"], ["a", "n"], ["t", "h", "e"]]
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            var matched = 0
            if boundary(i) {
                for article in articles where i + article.count <= text.count
                    && text[i..<(i + article.count)].elementsEqual(article) && boundary(i + article.count) {
                    matched = article.count
                    break
                }
            }
            if matched > 0 {
                out.append(" ")
                i += matched
            } else {
                out.append(text[i])
                i += 1
            }
        }
        return out
    }

    /// The official `exact_match_score`: the normalised strings are equal.
    public static func exactMatch(_ prediction: String, _ groundTruth: String) -> Bool {
        normalize(Array(prediction.unicodeScalars)) == normalize(Array(groundTruth.unicodeScalars))
    }

    /// The official `f1_score`: harmonic mean of token precision and recall over the multiset of common
    /// normalised tokens; 0 when nothing is shared.
    public static func f1(_ prediction: String, _ groundTruth: String) -> Double {
        let predicted = normalizedTokens(prediction), truth = normalizedTokens(groundTruth)
        var counts: [[Unicode.Scalar]: Int] = [:]
        for t in truth { counts[t, default: 0] += 1 }
        var same = 0
        for t in predicted {
            if let c = counts[t], c > 0 { same += 1; counts[t] = c - 1 }
        }
        if same == 0 { return 0 }
        let precision = 1.0 * Double(same) / Double(predicted.count)
        let recall = 1.0 * Double(same) / Double(truth.count)
        return (2 * precision * recall) / (precision + recall)
    }

    /// The best exact match and the best F1 of `prediction` over `groundTruths`.
    public static func score(_ prediction: String, groundTruths: [String]) -> (exactMatch: Bool, f1: Double) {
        var em = false, best = -Double.infinity
        for truth in groundTruths {
            em = em || exactMatch(prediction, truth)
            best = max(best, f1(prediction, truth))
        }
        return (em, groundTruths.isEmpty ? 0 : best)
    }

    /// The official `evaluate`: every question of `dataset` scored against `predictions` (keyed by id);
    /// predictions for ids not in the dataset are ignored.
    public static func evaluate(dataset: SQuADDataset, predictions: [String: String]) -> Score {
        var exact = 0.0, f1Sum = 0.0, total = 0
        var unanswered: [String] = []
        for question in dataset.questions {
            total += 1
            guard let prediction = predictions[question.id] else { unanswered.append(question.id); continue }
            let (em, f) = score(prediction, groundTruths: question.answers.map(\.text))
            exact += em ? 1 : 0
            f1Sum += f
        }
        return Score(exactMatch: total == 0 ? 0 : 100.0 * exact / Double(total),
                     f1: total == 0 ? 0 : 100.0 * f1Sum / Double(total), questionCount: total, unanswered: unanswered)
    }

    /// Reads `predictions.json`: one JSON object of question id to answer text.
    /// - Throws: `BertError.io` when the file cannot be read, `BertError.invalidInput` naming the file when it
    ///   is not such an object.
    public static func readPredictions(contentsOf path: String) throws -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BertError.io("predictions \(path): cannot read the file (missing or unreadable)")
        }
        do {
            return try JSONDecoder().decode([String: String].self, from: data)
        } catch let error as DecodingError {
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty,
               (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) != nil {
                throw BertError.invalidInput("predictions \(path): expected a JSON object of question id to answer text")
            }
            if case .typeMismatch(_, let context) = error {
                let place = context.codingPath.last.map { " (at \"\($0.stringValue)\")" } ?? ""
                throw BertError.invalidInput(
                    "predictions \(path): expected a JSON object of question id to answer text\(place)")
            }
            throw BertError.invalidInput("predictions \(path): \(SQuADDataset.describe(error, data: data))")
        } catch {
            throw BertError.invalidInput("predictions \(path): not valid JSON (\(SQuADDataset.oneLine("\(error)")))")
        }
    }
}
