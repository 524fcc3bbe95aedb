/// One batch of pre-training samples in NVIDIA's shard terms (B batch, S sequence length, P max predictions).
///
/// Every array is row-major and holds 32-bit ids. A row of `maskedLMPositions` lists the masked positions in
/// ascending order; the first `0` ends the list (position 0 is `[CLS]`, which is never masked), exactly as
/// NVIDIA's `pretraining_dataset` reads it.
public struct PretrainingBatch: Sendable, Equatable {
    /// B
    public var batchSize: Int
    /// S
    public var seqLength: Int
    /// P
    public var maxPredictions: Int
    /// `[B, S]` token ids.
    public var inputIds: [Int32]
    /// `[B, S]` 0 for sentence A (and `[CLS]`), 1 for sentence B.
    public var segmentIds: [Int32]
    /// `[B, S]` 1 for real tokens, 0 for padding.
    public var inputMask: [Int32]
    /// `[B, P]` masked positions, zero-padded.
    public var maskedLMPositions: [Int32]
    /// `[B, P]` original ids at the masked positions, zero-padded.
    public var maskedLMIds: [Int32]
    /// `[B]` 0 = B follows A, 1 = B is a random sentence.
    public var nextSentenceLabels: [Int32]

    public init(batchSize: Int, seqLength: Int, maxPredictions: Int,
                inputIds: [Int32], segmentIds: [Int32], inputMask: [Int32],
                maskedLMPositions: [Int32], maskedLMIds: [Int32], nextSentenceLabels: [Int32]) {
        precondition(inputIds.count == batchSize * seqLength && segmentIds.count == inputIds.count
                     && inputMask.count == inputIds.count, "PretrainingBatch: [B, S] arrays disagree")
        precondition(maskedLMPositions.count == batchSize * maxPredictions
                     && maskedLMIds.count == maskedLMPositions.count, "PretrainingBatch: [B, P] arrays disagree")
        precondition(nextSentenceLabels.count == batchSize, "PretrainingBatch: [B] labels disagree")
        self.batchSize = batchSize
        self.seqLength = seqLength
        self.maxPredictions = maxPredictions
        self.inputIds = inputIds
        self.segmentIds = segmentIds
        self.inputMask = inputMask
        self.maskedLMPositions = maskedLMPositions
        self.maskedLMIds = maskedLMIds
        self.nextSentenceLabels = nextSentenceLabels
    }

    /// The number of real masked positions in row `b` (up to the first zero).
    public func predictionCount(row b: Int) -> Int {
        let row = maskedLMPositions[(b * maxPredictions)..<((b + 1) * maxPredictions)]
        return row.firstIndex(of: 0).map { $0 - b * maxPredictions } ?? maxPredictions
    }
}
