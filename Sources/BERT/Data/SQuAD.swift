import Foundation

/// A SQuAD v1.1 file: articles of paragraphs, each with its questions and gold answers.
///
/// The layout is the official one: `{"data": [{"title", "paragraphs": [{"context", "qas": [{"id",
/// "question", "answers": [{"text", "answer_start"}]}]}]}], "version": "1.1"}`.
public struct SQuADDataset: Sendable {
    /// One gold answer: its text and the code-point offset of its first character in the paragraph.
    public struct Answer: Sendable, Decodable {
        public let text: String
        public let answerStart: Int?
        enum CodingKeys: String, CodingKey { case text, answerStart = "answer_start" }
    }
    /// One question.
    public struct Question: Sendable, Decodable {
        public let id: String
        public let question: String
        public let answers: [Answer]
    }
    /// A paragraph and the questions about it.
    public struct Paragraph: Sendable, Decodable {
        public let context: String
        public let qas: [Question]
    }
    /// An article: a title and its paragraphs.
    public struct Article: Sendable, Decodable {
        public let title: String?
        public let paragraphs: [Paragraph]
    }
    private struct File: Decodable {
        let data: [Article]
        let version: String?
    }

    /// The file's `version` ("1.1" for SQuAD v1.1), when it has one.
    public let version: String?
    /// The articles in file order.
    public let articles: [Article]
    /// Where the dataset was read from (for messages).
    public let source: String

    /// Every question in file order.
    public var questions: [Question] { articles.flatMap { $0.paragraphs.flatMap(\.qas) } }

    /// Reads a SQuAD JSON file.
    /// - Parameter path: the file.
    /// - Throws: `BertError.io` when the file cannot be read, `BertError.invalidInput` (one line naming the
    ///   file and, for a missing key or a wrong type, where in the file) when it is not SQuAD JSON.
    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BertError.io("squad \(path): cannot read the file (missing or unreadable)")
        }
        try self.init(data: data, source: path)
    }

    /// Parses SQuAD JSON already in memory; `source` names it in errors.
    public init(data: Data, source: String) throws {
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: data)
        } catch let error as DecodingError {
            throw BertError.invalidInput("squad \(source): \(Self.describe(error, data: data))")
        } catch {
            throw BertError.invalidInput("squad \(source): not valid JSON (\(Self.oneLine("\(error)")))")
        }
        self.version = file.version
        self.articles = file.data
        self.source = source
    }

    /// A one-line account of a decoding error with its place, e.g. `data[0].paragraphs[3].qas[1]: missing key "id"`.
    static func describe(_ error: DecodingError, data: Data) -> String {
        func place(_ path: [CodingKey]) -> String {
            var s = ""
            for key in path {
                if let i = key.intValue { s += "[\(i)]" } else { s += (s.isEmpty ? "" : ".") + key.stringValue }
            }
            return s.isEmpty ? "the top level" : s
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(place(context.codingPath)): missing key \"\(key.stringValue)\""
        case .typeMismatch(let type, let context):
            return "\(place(context.codingPath)): expected \(Self.jsonTypeName(type))"
        case .valueNotFound(let type, let context):
            return "\(place(context.codingPath)): null where \(Self.jsonTypeName(type)) was expected"
        case .dataCorrupted(let context):
            let underlying = context.underlyingError.map { " (\(oneLine("\($0)")))" } ?? ""
            if context.codingPath.isEmpty { return "not valid JSON (\(parseProblem(data) ?? oneLine(context.debugDescription)))" }
            return "\(place(context.codingPath)): \(oneLine(context.debugDescription))\(underlying)"
        @unknown default:
            return oneLine("\(error)")
        }
    }

    private static func jsonTypeName(_ type: Any.Type) -> String {
        if type == String.self { return "a string" }
        if type == Int.self { return "an integer" }
        return "\(type)".hasPrefix("Array") ? "an array" : "an object"
    }

    /// What JSONSerialization says is wrong with `data` (e.g. "Unexpected end of file during JSON parse.").
    static func parseProblem(_ data: Data) -> String? {
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            return nil
        } catch {
            let info = (error as NSError).userInfo
            return (info["NSDebugDescription"] as? String).map(oneLine)
        }
    }

    static func oneLine(_ s: String) -> String {
        s.split(whereSeparator: { $0.isNewline }).joined(separator: " ")
    }

    /// The examples of `run_squad.py`'s `read_squad_examples`: one per question, the paragraph split into
    /// words at whitespace, the first gold answer located in those words.
    ///
    /// Whitespace is `run_squad.py`'s: space, tab, CR, LF and U+202F. Offsets are code points, as in the
    /// file. With `training`, a question whose answer text is not found in the words it spans is left out
    /// (as run_squad.py does, "likely due to weird Unicode stuff"); without it every question is kept and
    /// the answer positions are filled in where they can be. Unlike run_squad.py, training does not
    /// demand exactly one answer: the first one is used.
    /// - Parameter training: compute and check answer positions, drop questions whose answer is not found.
    /// - Returns: the examples in file order, and the ids of the questions left out.
    /// - Throws: `BertError.invalidInput` naming the file and the question when, in training, a question
    ///   has no answer, an empty one or one whose offset lies outside the paragraph; or, in prediction, when two
    ///   questions share an id.
    public func examples(training: Bool) throws -> (examples: [SQuADExample], skipped: [String]) {
        var examples: [SQuADExample] = []
        var skipped: [String] = []
        var paragraphIndex = 0
        var ids = Set<String>()
        for article in articles {
            for paragraph in article.paragraphs {
                defer { paragraphIndex += 1 }
                let (words, charToWord) = Self.splitWords(paragraph.context)
                for qa in paragraph.qas {
                    // The id is the key of predictions.json: a repeated one would silently lose an answer.
                    guard training || ids.insert(qa.id).inserted else {
                        throw BertError.invalidInput("squad \(source): question id \(PythonText.jsonLiteral(qa.id)) appears more than once; each question needs its own id")
                    }
                    var startWord: Int?, endWord: Int?
                    let first = qa.answers.first
                    if training && first == nil {
                        throw BertError.invalidInput("squad \(source): question \(qa.id) has no answer; training needs one")
                    }
                    if let first {
                        let length = first.text.unicodeScalars.count
                        if training && length == 0 {
                            throw BertError.invalidInput("squad \(source): question \(qa.id): the answer text is empty")
                        }
                        if let offset = first.answerStart, offset >= 0, length > 0, offset + length - 1 < charToWord.count {
                            // An answer that starts on whitespace before the first word has no start word.
                            if charToWord[offset] >= 0 {
                                startWord = charToWord[offset]
                                endWord = charToWord[offset + length - 1]
                            } else if training {
                                skipped.append(qa.id)
                                continue
                            }
                        } else if training {
                            let at = first.answerStart.map(String.init) ?? "none"
                            throw BertError.invalidInput(
                                "squad \(source): question \(qa.id): answer_start \(at) with \(length) characters lies outside its paragraph (\(charToWord.count) characters)")
                        }
                    }
                    if training, let s = startWord, let e = endWord, let first {
                        // Keep only answers whose text is recovered from the words they span.
                        let actual = PythonText.joined(words[s...e].map { Array($0.unicodeScalars) }, separator: " ")
                        let cleaned = PythonText.collapseWhitespace(Array(first.text.unicodeScalars))
                        if PythonText.find(actual, cleaned) == nil {
                            skipped.append(qa.id)
                            continue
                        }
                    }
                    examples.append(SQuADExample(
                        id: qa.id, question: qa.question, documentWords: words, paragraphIndex: paragraphIndex,
                        answers: qa.answers.map(\.text), answerText: first?.text,
                        startWord: startWord, endWord: endWord))
                }
            }
        }
        return (examples, skipped)
    }

    /// `run_squad.py`'s word split: words between runs of space, tab, CR, LF and U+202F, and for every code
    /// point the index of the word it belongs to (the previous word for whitespace, -1 before the first).
    static func splitWords(_ text: String) -> (words: [String], charToWord: [Int]) {
        var words: [String] = []
        var charToWord: [Int] = []
        var current = String.UnicodeScalarView()
        var previousIsWhitespace = true
        for c in text.unicodeScalars {
            let isWhitespace = c == " " || c == "\t" || c == "\r" || c == "\n" || c.value == 0x202F
            if isWhitespace {
                previousIsWhitespace = true
            } else {
                if previousIsWhitespace && !current.isEmpty {
                    words.append(String(current))
                    current = String.UnicodeScalarView()
                }
                current.append(c)
                previousIsWhitespace = false
            }
            charToWord.append(words.count + (current.isEmpty ? 0 : 1) - 1)
        }
        if !current.isEmpty { words.append(String(current)) }
        return (words, charToWord)
    }
}

/// One SQuAD question with its paragraph split into words (`run_squad.py`'s `SquadExample`).
public struct SQuADExample: Sendable {
    /// The question id (`qas_id`), the key of `predictions.json`.
    public let id: String
    /// The question text.
    public let question: String
    /// The paragraph split at whitespace (`doc_tokens`); shared storage between a paragraph's questions.
    public let documentWords: [String]
    /// The paragraph's position in the file (0-based, over all articles); features reuse its WordPieces.
    public let paragraphIndex: Int
    /// Every gold answer text, in file order.
    public let answers: [String]
    /// The first gold answer (`orig_answer_text`), the one training uses.
    public let answerText: String?
    /// The word holding the first character of `answerText` (`start_position`).
    public let startWord: Int?
    /// The word holding the last character of `answerText` (`end_position`).
    public let endWord: Int?

    /// An example with every field given (tests and other readers); `SQuADDataset.examples(training:)` makes them
    /// from a file.
    public init(id: String, question: String, documentWords: [String], paragraphIndex: Int, answers: [String],
                answerText: String?, startWord: Int?, endWord: Int?) {
        self.id = id
        self.question = question
        self.documentWords = documentWords
        self.paragraphIndex = paragraphIndex
        self.answers = answers
        self.answerText = answerText
        self.startWord = startWord
        self.endWord = endWord
    }
}
