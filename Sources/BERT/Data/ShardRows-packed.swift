// The packed layout's row structure (Habana's `pack_pretraining_data_pytorch.py` writes it this way, and its
// `pretraining_dataset` and the model rely on it): one row is up to K sequences back to back, then padding.
//
//   input_mask               1 1 1 1 2 2 2 3 3 0 0     sequence index, runs 1, 2, … in order, 0 only at the end
//   positions                0 1 2 3 0 1 2 0 1 · ·     restarting at 0 at each sequence, counting up by 1
//   next_sentence_positions  0 4 7                     each sequence's first token ([CLS])
//   next_sentence_weights    1 1 1                     1 per sequence, 0 in an empty slot
//   masked_lm_positions      ascending, on real tokens, then zeros

extension ShardRows {
    /// What is wrong with packed row `r`, or nil when its structure holds (see the table above); values that are
    /// wrong on their own (ids, 0/1 labels) are `validate`'s business.
    func validatePackedRow(_ r: Int) -> String? {
        let S = seqLength, P = maxPredictions, K = sequencesPerRow
        let mask = inputMask[(r * S)..<((r + 1) * S)], pos = positions![(r * S)..<((r + 1) * S)]
        // Sequence starts, from the mask.
        var starts: [Int] = []
        var length = 0          // real tokens: the mask's non-zero prefix
        var previous: Int32 = 0
        for (t, v) in zip(0..., mask) {
            if v == 0 { previous = 0; continue }
            if length < t { return "input_mask holds \(v) at token \(t) after padding (a 0); sequences come first, padding after" }
            if v == previous + 1 {
                guard Int(v) <= K else {
                    return "input_mask holds sequence \(v) at token \(t), more sequences than the \(K) a row of this shard allows"
                }
                starts.append(t)
            } else if v != previous {
                return "input_mask goes from \(previous) to \(v) at token \(t); sequence indices must run 1, 2, 3 in order"
            }
            previous = v
            length = t + 1
        }
        if starts.isEmpty { return "input_mask holds no sequence" }
        // Positions restart at each sequence start and count up by 1.
        for (k, start) in starts.enumerated() {
            let end = k + 1 < starts.count ? starts[k + 1] : length
            for t in start..<end where Int(pos[pos.startIndex + t]) != t - start {
                return "positions holds \(pos[pos.startIndex + t]) at token \(t), expected \(t - start) (sequence \(k + 1) starts at token \(start))"
            }
        }
        // NSP slots: a weighted slot per sequence at its first token, nothing in empty slots.
        for j in 0..<K {
            let w = nextSentenceWeights![r * K + j], p = nextSentencePositions![r * K + j]
            guard w == 0 || w == 1 else { return "next_sentence_weights holds \(w) in slot \(j), expected 0 or 1" }
            if j < starts.count {
                guard w == 1 else { return "next_sentence_weights is 0 in slot \(j), but sequence \(j + 1) is present" }
                guard Int(p) == starts[j] else {
                    return "next_sentence_positions holds \(p) in slot \(j), but sequence \(j + 1) starts at token \(starts[j])"
                }
            } else if w != 0 {
                return "next_sentence_weights is 1 in slot \(j), but the row holds \(starts.count) sequence(s)"
            }
        }
        // Masked positions: ascending, on real tokens, zeros after the first zero.
        var last = 0, ended = false
        for k in 0..<P {
            let p = Int(maskedLMPositions[r * P + k])
            if ended || p == 0 {
                ended = true
                if p != 0 { return "masked_lm_positions holds \(p) in slot \(k) after the list's end (a 0)" }
                continue
            }
            guard p < length else { return "masked_lm_positions holds \(p) in slot \(k), beyond the row's \(length) real tokens" }
            guard p > last else { return "masked_lm_positions holds \(p) in slot \(k) after \(last); they must ascend" }
            last = p
        }
        return nil
    }
}
