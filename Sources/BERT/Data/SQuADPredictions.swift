import Foundation

/// One candidate answer of a question's n-best list.
public struct SQuADCandidate: Sendable, Equatable {
    /// The answer as it reads in the paragraph (original case, accents and punctuation).
    public let text: String
    /// Softmax of start + end logit over the n-best list.
    public let probability: Double
    /// The start logit of the answer's first token.
    public let startLogit: Double
    /// The end logit of the answer's last token.
    public let endLogit: Double
}

/// A question's predicted answer and its n-best list.
public struct SQuADPrediction: Sendable {
    /// The question id.
    public let id: String
    /// The best answer (`nBest[0].text`).
    public var text: String { nBest[0].text }
    /// The candidates, best first; never empty.
    public let nBest: [SQuADCandidate]
}

/// Turns per-feature start/end logits into answers, as `run_squad.py`'s `write_predictions` does (SQuAD
/// v1.1: no null answer).
///
/// For every feature the `nBestSize` highest start and end logits are paired; a pair counts when both
/// tokens lie in the document window, the start token has its max context in this window, end ≥ start and
/// the span is at most `maxAnswerLength` tokens. Pairs over all of a question's features are ranked by
/// start + end logit; each is turned back into paragraph text (`finalText`), repeats are dropped, and the
/// first `nBestSize` make the n-best list, with softmax probabilities.
public struct SQuADPostProcessor: Sendable {
    /// The vocabulary the features' ids refer to.
    public let vocabulary: Vocabulary
    /// Whether the model is uncased (lower-cases and strips accents when aligning text).
    public let lowercase: Bool
    /// Candidates kept per question, and start/end logits tried per feature (`n_best_size`, 20).
    public let nBestSize: Int
    /// The longest answer in tokens (`max_answer_length`, 30).
    public let maxAnswerLength: Int

    /// - Parameters:
    ///   - vocabulary: the vocabulary of the features' ids.
    ///   - lowercase: the model is uncased (as the tokenizer that built the features).
    ///   - nBestSize: candidates kept per question (run_squad.py's `n_best_size`).
    ///   - maxAnswerLength: the longest answer in WordPieces (`max_answer_length`).
    public init(vocabulary: Vocabulary, lowercase: Bool, nBestSize: Int = 20, maxAnswerLength: Int = 30) {
        self.vocabulary = vocabulary
        self.lowercase = lowercase
        self.nBestSize = nBestSize
        self.maxAnswerLength = maxAnswerLength
    }

    /// The predictions for every example, in example order.
    /// - Parameters:
    ///   - examples: the examples the features were built from.
    ///   - features: the features, each with `exampleIndex` into `examples`.
    ///   - startLogits: per feature (same order as `features`), the start logit of every position, `[F][S]`.
    ///   - endLogits: per feature, the end logit of every position, `[F][S]`.
    public func predictions(examples: [SQuADExample], features: [SQuADFeature], startLogits: [[Float]],
                            endLogits: [[Float]]) -> [SQuADPrediction] {
        precondition(startLogits.count == features.count && endLogits.count == features.count,
                     "one row of start and end logits per feature")
        var featuresOfExample = [[Int]](repeating: [], count: examples.count)
        for (f, feature) in features.enumerated() { featuresOfExample[feature.exampleIndex].append(f) }
        return examples.indices.map { e in
            prediction(example: examples[e], features: featuresOfExample[e].map { features[$0] },
                       startLogits: featuresOfExample[e].map { startLogits[$0] },
                       endLogits: featuresOfExample[e].map { endLogits[$0] })
        }
    }

    /// `_get_best_indexes`: the positions of the `n` largest values, largest first, ties in position order.
    static func bestIndexes(_ logits: [Float], _ n: Int) -> [Int] {
        let order = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        return Array(order.prefix(n))
    }

    /// `_compute_softmax` in Double.
    static func softmax(_ scores: [Double]) -> [Double] {
        guard let maxScore = scores.max() else { return [] }
        let exps = scores.map { Foundation.exp($0 - maxScore) }
        var total = 0.0
        for x in exps { total += x }
        return exps.map { $0 / total }
    }

    /// The prediction for one example from its features' logits.
    public func prediction(example: SQuADExample, features: [SQuADFeature], startLogits: [[Float]],
                           endLogits: [[Float]]) -> SQuADPrediction {
        struct Preliminary { let feature: Int, start: Int, end: Int, startLogit: Double, endLogit: Double }
        var preliminary: [Preliminary] = []
        for (f, feature) in features.enumerated() {
            let starts = Self.bestIndexes(startLogits[f], nBestSize)
            let ends = Self.bestIndexes(endLogits[f], nBestSize)
            for s in starts {
                for e in ends {
                    if s >= feature.tokenCount || e >= feature.tokenCount { continue }
                    if feature.tokenToOriginalWord[s] < 0 || feature.tokenToOriginalWord[e] < 0 { continue }
                    if !feature.tokenIsMaxContext[s] { continue }
                    if e < s || e - s + 1 > maxAnswerLength { continue }
                    preliminary.append(Preliminary(feature: f, start: s, end: e, startLogit: Double(startLogits[f][s]),
                                                   endLogit: Double(endLogits[f][e])))
                }
            }
        }
        // A stable sort, best first, as Python's sorted(reverse=True).
        let ranked = preliminary.indices.sorted {
            let a = preliminary[$0].startLogit + preliminary[$0].endLogit
            let b = preliminary[$1].startLogit + preliminary[$1].endLogit
            return a > b || (a == b && $0 < $1)
        }.map { preliminary[$0] }

        var seen = Set<[Unicode.Scalar]>()
        var nBest: [(text: String, startLogit: Double, endLogit: Double)] = []
        for candidate in ranked {
            if nBest.count >= nBestSize { break }
            let feature = features[candidate.feature]
            let text: String
            if candidate.start > 0 {
                let pieces = (candidate.start...candidate.end).map { vocabulary.tokens[Int(feature.inputIds[$0])] }
                let firstWord = Int(feature.tokenToOriginalWord[candidate.start])
                let lastWord = Int(feature.tokenToOriginalWord[candidate.end])
                let original = example.documentWords[firstWord...lastWord].joined(separator: " ")
                text = Self.finalText(predicted: Self.detokenize(pieces), original: original, lowercase: lowercase)
                let key = Array(text.unicodeScalars)
                if seen.contains(key) { continue }
                seen.insert(key)
            } else {
                text = ""
                seen.insert([])
            }
            nBest.append((text, candidate.startLogit, candidate.endLogit))
        }
        if nBest.isEmpty { nBest.append(("empty", 0, 0)) }
        let probabilities = Self.softmax(nBest.map { $0.startLogit + $0.endLogit })
        return SQuADPrediction(id: example.id, nBest: nBest.indices.map {
            SQuADCandidate(text: nBest[$0].text, probability: probabilities[$0], startLogit: nBest[$0].startLogit,
                           endLogit: nBest[$0].endLogit)
        })
    }

    /// WordPieces back to text: joined with spaces, `" ##"` then `"##"` removed, whitespace collapsed.
    static func detokenize(_ pieces: [String]) -> [Unicode.Scalar] {
        var text = Array(pieces.joined(separator: " ").unicodeScalars)
        text = PythonText.replace(text, [" ", "#", "#"], with: [])
        text = PythonText.replace(text, ["#", "#"], with: [])
        return PythonText.collapseWhitespace(PythonText.strip(text))
    }

    /// `get_final_text`: the part of `original` (whitespace-joined paragraph words) that the normalised
    /// prediction spells, found by aligning `original` with its basic tokenization character by character
    /// once spaces are removed; `original` itself when the alignment fails (the prediction is not found in
    /// the tokenized text, or stripping spaces leaves the two with different lengths).
    ///
    /// For example "steve smith" in "Steve Smith's" gives "Steve Smith". The basic tokenizer is this
    /// package's (Hugging Face's rules; see `BertTokenizer`) without special tokens.
    /// - Parameters:
    ///   - predicted: the de-tokenized WordPieces, as code points.
    ///   - original: the paragraph words the prediction spans, joined by single spaces.
    ///   - lowercase: the model is uncased.
    public static func finalText(predicted: [Unicode.Scalar], original: String, lowercase: Bool) -> String {
        let originalScalars = Array(original.unicodeScalars)
        let tokenized = Array(BasicTokenizer(lowercase: lowercase).tokenize(original).joined(separator: " ").unicodeScalars)
        guard let start = PythonText.find(tokenized, predicted) else { return original }
        let end = start + predicted.count - 1

        func stripSpaces(_ text: [Unicode.Scalar]) -> (text: [Unicode.Scalar], toFull: [Int]) {
            var stripped: [Unicode.Scalar] = [], toFull: [Int] = []
            for (i, c) in text.enumerated() where c != " " { toFull.append(i); stripped.append(c) }
            return (stripped, toFull)
        }
        let (originalStripped, originalToFull) = stripSpaces(originalScalars)
        let (tokenizedStripped, tokenizedToFull) = stripSpaces(tokenized)
        guard originalStripped.count == tokenizedStripped.count else { return original }

        // Full tokenized position -> stripped position -> full original position.
        var tokenizedFullToStripped = [Int: Int]()
        for (i, full) in tokenizedToFull.enumerated() { tokenizedFullToStripped[full] = i }
        guard let strippedStart = tokenizedFullToStripped[start], strippedStart < originalToFull.count,
              let strippedEnd = tokenizedFullToStripped[end], strippedEnd < originalToFull.count else {
            return original
        }
        let originalStart = originalToFull[strippedStart], originalEnd = originalToFull[strippedEnd]
        guard originalStart <= originalEnd else { return "" }
        return Array(originalScalars[originalStart...originalEnd]).string
    }

    /// Convenience for tests: `finalText` with the prediction as a `String`.
    public static func finalText(predicted: String, original: String, lowercase: Bool) -> String {
        finalText(predicted: Array(predicted.unicodeScalars), original: original, lowercase: lowercase)
    }

    /// `predictions.json` as run_squad.py writes it: `{id: text}` in question order, indented by 4, non-ASCII
    /// escaped, with a final newline.
    public static func predictionsJSON(_ predictions: [SQuADPrediction]) -> String {
        if predictions.isEmpty { return "{}\n" }
        let entries = predictions.map { "    \(PythonText.jsonLiteral($0.id)): \(PythonText.jsonLiteral($0.text))" }
        return "{\n" + entries.joined(separator: ",\n") + "\n}\n"
    }

    /// `nbest_predictions.json`: `{id: [{"text", "probability", "start_logit", "end_logit"}, …]}`, best first.
    public static func nBestJSON(_ predictions: [SQuADPrediction]) -> String {
        if predictions.isEmpty { return "{}\n" }
        let entries = predictions.map { prediction -> String in
            let candidates = prediction.nBest.map { c in
                "        {\n"
                    + "            \"text\": \(PythonText.jsonLiteral(c.text)),\n"
                    + "            \"probability\": \(PythonText.floatLiteral(c.probability)),\n"
                    + "            \"start_logit\": \(PythonText.floatLiteral(c.startLogit)),\n"
                    + "            \"end_logit\": \(PythonText.floatLiteral(c.endLogit))\n"
                    + "        }"
            }
            return "    \(PythonText.jsonLiteral(prediction.id)): [\n" + candidates.joined(separator: ",\n") + "\n    ]"
        }
        return "{\n" + entries.joined(separator: ",\n") + "\n}\n"
    }

    /// Writes `predictions.json` and `nbest_predictions.json` (run_squad.py's names) into `directory`: both or
    /// neither, so that a failed write never leaves one file standing beside an older or missing other.
    /// - Throws: `BertError.io` naming the file that could not be written.
    public static func write(_ predictions: [SQuADPrediction], to directory: String) throws {
        let files = [("predictions.json", predictionsJSON(predictions)), ("nbest_predictions.json", nBestJSON(predictions))]
            .map { ((directory as NSString).appendingPathComponent($0.0), $0.1) }
        var written: [String] = []   // temporaries not yet renamed
        defer { for path in written { unlink(path) } }
        for (path, text) in files {
            let temporary = path + ".tmp-\(getpid())"
            written.append(temporary)   // removed on the way out, a half-written one included
            do {
                try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
            } catch {
                throw BertError.fromFoundation(error, path: path)
            }
        }
        for (index, (path, _)) in files.enumerated() {
            guard rename(written[index], path) == 0 else {
                let cause = String(cString: strerror(errno))
                for (placed, _) in files[..<index] { unlink(placed) }
                throw BertError.io("cannot write \(path): \(cause)")
            }
        }
        written = []
    }
}
