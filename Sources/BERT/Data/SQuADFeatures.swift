import Foundation

/// One model input for SQuAD: `[CLS] query [SEP] document window [SEP]`, padded to `S` (`run_squad.py`'s
/// `InputFeatures`).
///
/// S = `maxSeqLength`. Positions index the padded sequence; `startPosition`/`endPosition` point at the
/// answer's first and last WordPiece, or at 0 (`[CLS]`) when the answer is not inside this window.
public struct SQuADFeature: Sendable {
    /// 1000000000 + the feature's index over all features, as run_squad.py numbers them.
    public let uniqueId: Int
    /// The example (question) this window belongs to: an index into the examples given to the builder.
    public let exampleIndex: Int
    /// Which window of the example's document this is (0, 1, …).
    public let docSpanIndex: Int
    /// Token ids, `[S]`, padded with 0.
    public let inputIds: [Int32]
    /// 1 for real tokens, 0 for padding, `[S]`.
    public let inputMask: [Int32]
    /// 0 for `[CLS] query [SEP]`, 1 for `document [SEP]`, 0 for padding, `[S]`.
    public let segmentIds: [Int32]
    /// For each position, the index of the example's document word the token came from; -1 outside the
    /// document window (`[CLS]`, query, `[SEP]`, padding). `[S]`.
    public let tokenToOriginalWord: [Int32]
    /// For each position, whether this window gives the token its most context of all windows holding it
    /// (`_check_is_max_context`); false outside the document window. `[S]`.
    public let tokenIsMaxContext: [Bool]
    /// The answer's first token, 0 when the answer lies outside this window or without training labels.
    public let startPosition: Int
    /// The answer's last token, 0 when the answer lies outside this window or without training labels.
    public let endPosition: Int
    /// How many positions hold real tokens (`len(tokens)` in run_squad.py).
    public let tokenCount: Int
}

/// Builds `SQuADFeature`s from examples as `run_squad.py`'s `convert_examples_to_features` does: the query
/// cut to `maxQueryLength` WordPieces; the document's WordPieces in windows of at most
/// `maxSeqLength - queryLength - 3`, each starting `min(window length, docStride)` after the previous one;
/// answer positions moved to the WordPieces that spell the answer best (`_improve_answer_span`).
public struct SQuADFeatureBuilder: Sendable {
    /// The tokenizer the model was trained with.
    public let tokenizer: BertTokenizer
    /// S, the padded length of every feature (run_squad.py's `max_seq_length`, 384).
    public let maxSeqLength: Int
    /// How far apart windows start, in WordPieces (`doc_stride`, 128).
    public let docStride: Int
    /// The most WordPieces kept of a question (`max_query_length`, 64).
    public let maxQueryLength: Int

    /// - Parameters:
    ///   - tokenizer: the model's tokenizer.
    ///   - maxSeqLength: S; must exceed `maxQueryLength + 3`.
    ///   - docStride: the distance between window starts.
    ///   - maxQueryLength: the most question WordPieces kept.
    /// - Throws: `BertError.invalidConfig` when the lengths leave no room for the document.
    public init(tokenizer: BertTokenizer, maxSeqLength: Int = 384, docStride: Int = 128,
                maxQueryLength: Int = 64) throws {
        guard maxSeqLength > maxQueryLength + 3 else {
            throw BertError.invalidConfig(
                "--max-seq-length (\(maxSeqLength)) must be greater than --max-query-length (\(maxQueryLength)) + 3")
        }
        guard docStride > 0 else { throw BertError.invalidConfig("--doc-stride must be positive (got \(docStride))") }
        self.tokenizer = tokenizer
        self.maxSeqLength = maxSeqLength
        self.docStride = docStride
        self.maxQueryLength = maxQueryLength
    }

    /// The features of `examples`, in example order and window order within an example.
    /// - Parameters:
    ///   - examples: from `SQuADDataset.examples(training:)`.
    ///   - training: label each window with the answer's positions (0 when outside the window); without it
    ///     the positions are 0.
    ///   - threads: worker threads; the result does not depend on it.
    public func features(for examples: [SQuADExample], training: Bool,
                         threads: Int = ProcessInfo.processInfo.activeProcessorCount) -> [SQuADFeature] {
        let chunks = max(1, min(examples.count, threads * 4))
        var parts = [[SQuADFeature]](repeating: [], count: chunks)
        parts.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let out = out
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let lo = examples.count * c / chunks, hi = examples.count * (c + 1) / chunks
                var cache = DocumentCache()
                var features: [SQuADFeature] = []
                for e in lo..<hi {
                    appendFeatures(of: examples[e], index: e, training: training, cache: &cache, to: &features)
                }
                out[c] = features
            }
        }
        var all: [SQuADFeature] = []
        all.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for part in parts {
            for f in part {
                all.append(SQuADFeature(
                    uniqueId: 1_000_000_000 + all.count, exampleIndex: f.exampleIndex, docSpanIndex: f.docSpanIndex,
                    inputIds: f.inputIds, inputMask: f.inputMask, segmentIds: f.segmentIds,
                    tokenToOriginalWord: f.tokenToOriginalWord, tokenIsMaxContext: f.tokenIsMaxContext,
                    startPosition: f.startPosition, endPosition: f.endPosition, tokenCount: f.tokenCount))
            }
        }
        return all
    }

    /// A paragraph's WordPieces, reused by the questions about it.
    struct DocumentCache {
        var paragraphIndex = -1
        var words: [String] = []
        /// `all_doc_tokens` as ids.
        var pieces: [Int32] = []
        /// `tok_to_orig_index`: the word of each piece.
        var pieceToWord: [Int32] = []
        /// `orig_to_tok_index`: each word's first piece.
        var wordToPiece: [Int] = []
    }

    /// A window of document pieces (`_DocSpan`).
    struct DocSpan: Equatable {
        let start: Int
        let length: Int
    }

    /// The windows over `pieceCount` document pieces with room for `maxTokensForDoc` pieces each.
    static func docSpans(pieceCount: Int, maxTokensForDoc: Int, docStride: Int) -> [DocSpan] {
        var spans: [DocSpan] = []
        var start = 0
        while start < pieceCount {
            let length = min(pieceCount - start, maxTokensForDoc)
            spans.append(DocSpan(start: start, length: length))
            if start + length == pieceCount { break }
            start += min(length, docStride)
        }
        return spans
    }

    /// `_check_is_max_context`: whether span `current` holds `position` with the largest
    /// min(left context, right context) + 0.01 × span length, the first such span winning ties.
    static func isMaxContext(_ spans: [DocSpan], current: Int, position: Int) -> Bool {
        var bestScore = -Double.infinity, bestSpan = -1
        for (index, span) in spans.enumerated() {
            let end = span.start + span.length - 1
            if position < span.start || position > end { continue }
            let left = position - span.start, right = end - position
            let score = Double(min(left, right)) + 0.01 * Double(span.length)
            if bestSpan < 0 || score > bestScore { bestScore = score; bestSpan = index }
        }
        return current == bestSpan
    }

    /// `_improve_answer_span`: the first (start, then longest) sub-span of `[start, end]` whose pieces
    /// equal the tokenized answer; `(start, end)` when none does.
    static func improveAnswerSpan(pieces: [Int32], start: Int, end: Int, answer: [Int32]) -> (Int, Int) {
        guard start <= end else { return (start, end) }
        for newStart in start...end {
            for newEnd in stride(from: end, through: newStart, by: -1)
            where newEnd - newStart + 1 == answer.count && pieces[newStart...newEnd].elementsEqual(answer) {
                return (newStart, newEnd)
            }
        }
        return (start, end)
    }

    func appendFeatures(of example: SQuADExample, index exampleIndex: Int, training: Bool,
                        cache: inout DocumentCache, to features: inout [SQuADFeature]) {
        let vocabulary = tokenizer.vocabulary
        var query = tokenizer.encode(example.question)
        if query.count > maxQueryLength { query.removeSubrange(maxQueryLength...) }

        // The questions of a paragraph share its words' storage, so the comparison is one pointer check.
        if cache.paragraphIndex != example.paragraphIndex || cache.words != example.documentWords {
            cache.paragraphIndex = example.paragraphIndex
            cache.words = example.documentWords
            cache.pieces.removeAll(keepingCapacity: true)
            cache.pieceToWord.removeAll(keepingCapacity: true)
            cache.wordToPiece.removeAll(keepingCapacity: true)
            for (w, word) in example.documentWords.enumerated() {
                cache.wordToPiece.append(cache.pieces.count)
                let ids = tokenizer.encode(word)
                cache.pieces.append(contentsOf: ids)
                cache.pieceToWord.append(contentsOf: repeatElement(Int32(w), count: ids.count))
            }
        }
        let pieces = cache.pieces

        // The answer in pieces.
        var answerStart = -1, answerEnd = -1
        let labelled = training && example.startWord != nil && example.endWord != nil
        if labelled, let startWord = example.startWord, let endWord = example.endWord {
            answerStart = cache.wordToPiece[startWord]
            answerEnd = endWord < example.documentWords.count - 1 ? cache.wordToPiece[endWord + 1] - 1 : pieces.count - 1
            (answerStart, answerEnd) = Self.improveAnswerSpan(
                pieces: pieces, start: answerStart, end: answerEnd, answer: tokenizer.encode(example.answerText ?? ""))
        }

        let maxTokensForDoc = maxSeqLength - query.count - 3
        let spans = Self.docSpans(pieceCount: pieces.count, maxTokensForDoc: maxTokensForDoc, docStride: docStride)
        let S = maxSeqLength
        for (spanIndex, span) in spans.enumerated() {
            var ids = [Int32](repeating: 0, count: S)
            var segments = [Int32](repeating: 0, count: S)
            var toWord = [Int32](repeating: -1, count: S)
            var maxContext = [Bool](repeating: false, count: S)
            ids[0] = vocabulary.clsId
            for (i, q) in query.enumerated() { ids[1 + i] = q }
            ids[1 + query.count] = vocabulary.sepId
            let docOffset = query.count + 2
            for i in 0..<span.length {
                let piece = span.start + i, position = docOffset + i
                ids[position] = pieces[piece]
                segments[position] = 1
                toWord[position] = cache.pieceToWord[piece]
                maxContext[position] = Self.isMaxContext(spans, current: spanIndex, position: piece)
            }
            let count = docOffset + span.length + 1
            ids[count - 1] = vocabulary.sepId
            segments[count - 1] = 1
            var mask = [Int32](repeating: 0, count: S)
            for i in 0..<count { mask[i] = 1 }

            var startPosition = 0, endPosition = 0
            if labelled {
                let docStart = span.start, docEnd = span.start + span.length - 1
                if answerStart >= docStart && answerEnd <= docEnd {
                    startPosition = answerStart - docStart + docOffset
                    endPosition = answerEnd - docStart + docOffset
                }
            }
            features.append(SQuADFeature(
                uniqueId: 0, exampleIndex: exampleIndex, docSpanIndex: spanIndex, inputIds: ids, inputMask: mask,
                segmentIds: segments, tokenToOriginalWord: toWord, tokenIsMaxContext: maxContext,
                startPosition: startPosition, endPosition: endPosition, tokenCount: count))
        }
    }
}
