// How the model reads a pre-training batch's rows, packed (MLPerf's layout: up to N sequences one after another in
// a row, `inputMask` the 1-based sequence index) or not (a pack of one). Shapes: B batch, S sequence, N slots.
//   positions [B, S]: the embedding's position ids (nil unpacked: position s)
//   keyRanges [B, S, 2]: the keys query (b, s) may see, [lo, hi) — its own sequence, which is contiguous; a padding
//     query sees the span of the row's real tokens (the key bias hides padding inside it), as BERT's key mask alone would
//   clsRows [sequences]: b·S + the [CLS] position of each weighted NSP slot, row-major (the pooler's input rows)

/// What the encoder reads of a batch beyond its tokens: packed rows' position ids and key ranges, and the rows of
/// the [CLS] tokens the pooler runs on.
struct SequenceLayout {
    /// `[B, S]` position ids; nil for position s.
    var positions: [Int32]?
    /// `[B, S, 2]` each query's visible keys; nil for every key (the key bias alone).
    var keyRanges: [Int32]?
    /// `[sequences]` the token row of each sequence's [CLS].
    var clsRows: [Int32]
    /// N, which bounds the pooler's rows at B·N.
    var sequencesPerRow: Int
}

extension PretrainingBatch {
    /// Whether the model must read rows as packs: with position ids, or with room for more than one sequence.
    var readsAsPacked: Bool { isPacked || sequencesPerRow > 1 }

    /// The row positions `[lo, hi)` of each sequence 1…N of row `b` (nil where absent), and of all its real tokens.
    /// - Throws: `BertError.invalidInput` when a sequence index is outside [0, N] or a sequence is not contiguous.
    func sequenceSpans(row b: Int) throws -> (sequences: [Range<Int>?], real: Range<Int>?) {
        let S = seqLength, N = sequencesPerRow
        var spans = [Range<Int>?](repeating: nil, count: N), real: Range<Int>?
        for s in 0..<S {
            let m = Int(inputMask[b * S + s])
            guard m >= 0 && m <= N else {
                throw BertError.invalidInput("input_mask holds \(m) at row \(b), position \(s); packed rows number their sequences 1…\(N) (0 is padding)")
            }
            guard m > 0 else { continue }
            real = (real?.lowerBound ?? s)..<(s + 1)
            if let span = spans[m - 1] {
                guard span.upperBound == s else {
                    throw BertError.invalidInput("input_mask: sequence \(m) of row \(b) is not contiguous (it resumes at position \(s)); a packed sequence's tokens must be adjacent")
                }
                spans[m - 1] = span.lowerBound..<(s + 1)
            } else {
                spans[m - 1] = s..<(s + 1)
            }
        }
        return (spans, real)
    }

    /// Checks the packed fields against `config` and the rows, and returns what the encoder reads.
    /// - Throws: `BertError.invalidInput` naming the field, row and position at fault.
    func sequenceLayout(maxPositionEmbeddings: Int) throws -> SequenceLayout {
        let B = batchSize, S = seqLength, N = sequencesPerRow
        if let bad = nextSentenceWeights.first(where: { $0 != 0 && $0 != 1 }) {
            throw BertError.invalidInput("next_sentence_weights holds \(bad); weights are 0 (empty slot) or 1")
        }
        if let bad = nextSentencePositions.first(where: { $0 < 0 || Int($0) >= S }) {
            throw BertError.invalidInput("next_sentence_positions holds \(bad), outside [0, \(S))")
        }
        var clsRows: [Int32] = []
        for (i, w) in nextSentenceWeights.enumerated() where w != 0 {
            clsRows.append(Int32((i / N) * S) + nextSentencePositions[i])
        }
        guard readsAsPacked else { return SequenceLayout(positions: nil, keyRanges: nil, clsRows: clsRows, sequencesPerRow: N) }

        if let positions, let bad = positions.firstIndex(where: { $0 < 0 || Int($0) >= maxPositionEmbeddings }) {
            throw BertError.invalidInput("positions holds \(positions[bad]) at row \(bad / S), position \(bad % S), outside [0, max_position_embeddings = \(maxPositionEmbeddings))")
        }
        var keyRanges = [Int32](repeating: 0, count: 2 * B * S)
        for b in 0..<B {
            let (spans, real) = try sequenceSpans(row: b)
            for n in 0..<N {
                let slot = b * N + n, at = Int(nextSentencePositions[slot])
                switch (spans[n], nextSentenceWeights[slot] != 0) {
                case (nil, true):
                    throw BertError.invalidInput("next_sentence_weights: row \(b) slot \(n) is weighted but the row has no sequence \(n + 1)")
                case (.some, false):
                    throw BertError.invalidInput("next_sentence_weights: row \(b) holds sequence \(n + 1) but its slot \(n) has weight 0")
                case (.some(let span), true) where span.lowerBound != at:
                    throw BertError.invalidInput("next_sentence_positions: row \(b) slot \(n) is \(at), but sequence \(n + 1) starts at \(span.lowerBound) (its [CLS])")
                default: break
                }
            }
            for s in 0..<S {
                let m = Int(inputMask[b * S + s])
                let visible = m > 0 ? spans[m - 1]! : real ?? 0..<S
                keyRanges[2 * (b * S + s)] = Int32(visible.lowerBound)
                keyRanges[2 * (b * S + s) + 1] = Int32(visible.upperBound)
            }
        }
        for b in 0..<B {
            for p in 0..<predictionCount(row: b) where inputMask[b * S + Int(maskedLMPositions[b * maxPredictions + p])] == 0 {
                throw BertError.invalidInput("masked_lm_positions: row \(b) masks position \(maskedLMPositions[b * maxPredictions + p]), which is padding")
            }
        }
        return SequenceLayout(positions: positions, keyRanges: keyRanges, clsRows: clsRows, sequencesPerRow: N)
    }
}
