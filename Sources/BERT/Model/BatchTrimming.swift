// Running a batch at its longest real sequence instead of the padded length. Padded keys get exactly zero attention
// (their −10000 bias underflows exp), the softmax sums lanes that only gain zeros, attention's products run in blocks
// of one shape (`AttentionTiles`) and, with oneDNN on AVX-512 CPUs, the other GEMMs keep a row's bits whatever the row
// count (`GEMM.Engine.keepsRowBits`; elsewhere the outputs agree to rounding), so the real positions' outputs are the
// bits of the full-length batch:
// predictions and evaluations do not change, they only stop paying for padding. Classification training trims too:
// its loss reads only the pooled [CLS], and its dropout masks are drawn at the full length (`DropoutStreams.
// streamLength`, `DropoutLayout`), so the loss and every gradient keep their bits. Span (QA) training keeps the full
// length: HF's span loss takes the softmax over the padded positions too.

extension TokenBatch {
    /// The length to run at: the last real token (or `extra` position) of any row, rounded up to a multiple of 8,
    /// at most S.
    func trimmedLength(covering extra: Int = 0) -> Int {
        var longest = extra
        for b in 0..<batchSize {
            let row = inputMask[(b * seqLength)..<((b + 1) * seqLength)]
            if let last = row.lastIndex(where: { $0 != 0 }) { longest = max(longest, last - b * seqLength + 1) }
        }
        return min(seqLength, (longest + 7) / 8 * 8)
    }
}

/// The first `length` positions of every row of a row-major `[B, S]` array.
private func leading(_ rows: [Int32], batch: Int, seqLength: Int, length: Int) -> [Int32] {
    (0..<batch).flatMap { b in rows[(b * seqLength)..<(b * seqLength + length)] }
}

extension TaskBatch {
    /// The batch cut to its longest real sequence (see the top of this file); for prediction, so targets must be nil.
    public func trimmed() -> TaskBatch {
        precondition(targets == nil, "trim prediction batches only: span targets index the padded length")
        return cut()
    }

    /// The batch cut to its longest real sequence, targets kept.
    fileprivate func cut() -> TaskBatch {
        let S = trimmedLength()
        guard S < seqLength else { return self }
        return TaskBatch(batchSize: batchSize, seqLength: S,
                         inputIds: leading(inputIds, batch: batchSize, seqLength: seqLength, length: S),
                         segmentIds: leading(segmentIds, batch: batchSize, seqLength: seqLength, length: S),
                         inputMask: leading(inputMask, batch: batchSize, seqLength: seqLength, length: S),
                         targets: targets)
    }
}

extension TaskBatch where Targets == [Int32] {
    /// A labelled classification batch cut to its longest real sequence, for training: its labels index no positions.
    /// Run it with `DropoutStreams.streamLength` set to this batch's `seqLength` to get the full batch's bits.
    public func trimmedForTraining() -> TaskBatch { cut() }
}

extension PretrainingBatch {
    /// The batch cut to its longest real sequence, masked positions kept (for evaluation).
    public func trimmed() -> PretrainingBatch {
        let S = trimmedLength(covering: Int(maskedLMPositions.max() ?? 0) + 1)
        guard S < seqLength else { return self }
        return PretrainingBatch(batchSize: batchSize, seqLength: S, maxPredictions: maxPredictions,
                                sequencesPerRow: sequencesPerRow,
                                inputIds: leading(inputIds, batch: batchSize, seqLength: seqLength, length: S),
                                segmentIds: leading(segmentIds, batch: batchSize, seqLength: seqLength, length: S),
                                inputMask: leading(inputMask, batch: batchSize, seqLength: seqLength, length: S),
                                positions: positions.map { leading($0, batch: batchSize, seqLength: seqLength, length: S) },
                                maskedLMPositions: maskedLMPositions, maskedLMIds: maskedLMIds,
                                nextSentencePositions: nextSentencePositions, nextSentenceLabels: nextSentenceLabels,
                                nextSentenceWeights: nextSentenceWeights)
    }
}
