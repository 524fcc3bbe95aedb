/// One batch of pre-training samples in NVIDIA's shard terms (B batch, S sequence length, P max predictions), or in
/// the packed layout (MLPerf's and Habana's), where one row holds up to N sequences one after another.
///
/// Every array is row-major and holds 32-bit ids. A row of `maskedLMPositions` lists the masked positions in
/// ascending order; the first `0` ends the list (position 0 is `[CLS]`, which is never masked), exactly as
/// NVIDIA's `pretraining_dataset` reads it.
///
/// An unpacked row is a packed row of one sequence: `inputMask` 1 on its tokens, its `[CLS]` at position 0, weight 1.
/// So the model reads both layouts one way: attention stays within tokens of equal `inputMask` (never to a 0),
/// position ids come from `positions` (or count from 0 when it is nil), and NSP is predicted at each weighted
/// `nextSentencePositions` entry.
public struct PretrainingBatch: Sendable, Equatable {
    /// B
    public var batchSize: Int
    /// S
    public var seqLength: Int
    /// P
    public var maxPredictions: Int
    /// N: the sequences a row can hold; 1 in NVIDIA's layout, up to 3 when packed.
    public var sequencesPerRow: Int
    /// `[B, S]` token ids.
    public var inputIds: [Int32]
    /// `[B, S]` 0 for sentence A (and `[CLS]`), 1 for sentence B.
    public var segmentIds: [Int32]
    /// `[B, S]` 0 for padding; otherwise the 1-based index of the token's sequence within its row (always 1 unpacked).
    public var inputMask: [Int32]
    /// `[B, S]` position ids, restarting at 0 at each packed sequence's `[CLS]`; nil in NVIDIA's layout (position s).
    public var positions: [Int32]?
    /// `[B, P]` masked positions (indices into the row), zero-padded.
    public var maskedLMPositions: [Int32]
    /// `[B, P]` original ids at the masked positions, zero-padded.
    public var maskedLMIds: [Int32]
    /// `[B, N]` the row position of each sequence's `[CLS]` (0 unpacked; 0 in empty slots).
    public var nextSentencePositions: [Int32]
    /// `[B, N]` 0 = B follows A, 1 = B is a random sentence (0 in empty slots).
    public var nextSentenceLabels: [Int32]
    /// `[B, N]` 1 for a sequence, 0 for an empty slot.
    public var nextSentenceWeights: [Int32]

    /// A batch in NVIDIA's unpacked layout: one sequence per row, `nextSentenceLabels` `[B]`.
    public init(batchSize: Int, seqLength: Int, maxPredictions: Int,
                inputIds: [Int32], segmentIds: [Int32], inputMask: [Int32],
                maskedLMPositions: [Int32], maskedLMIds: [Int32], nextSentenceLabels: [Int32]) {
        self.init(batchSize: batchSize, seqLength: seqLength, maxPredictions: maxPredictions, sequencesPerRow: 1,
                  inputIds: inputIds, segmentIds: segmentIds, inputMask: inputMask, positions: nil,
                  maskedLMPositions: maskedLMPositions, maskedLMIds: maskedLMIds,
                  nextSentencePositions: [Int32](repeating: 0, count: batchSize),
                  nextSentenceLabels: nextSentenceLabels,
                  nextSentenceWeights: [Int32](repeating: 1, count: batchSize))
    }

    /// A batch in the packed layout (or any layout spelled out in full).
    public init(batchSize: Int, seqLength: Int, maxPredictions: Int, sequencesPerRow: Int,
                inputIds: [Int32], segmentIds: [Int32], inputMask: [Int32], positions: [Int32]?,
                maskedLMPositions: [Int32], maskedLMIds: [Int32],
                nextSentencePositions: [Int32], nextSentenceLabels: [Int32], nextSentenceWeights: [Int32]) {
        let BS = batchSize * seqLength, BP = batchSize * maxPredictions, BN = batchSize * sequencesPerRow
        precondition(sequencesPerRow >= 1, "PretrainingBatch: a row holds at least one sequence")
        precondition(inputIds.count == BS && segmentIds.count == BS && inputMask.count == BS
                     && (positions?.count ?? BS) == BS, "PretrainingBatch: [B, S] arrays disagree")
        precondition(maskedLMPositions.count == BP && maskedLMIds.count == BP, "PretrainingBatch: [B, P] arrays disagree")
        precondition(nextSentencePositions.count == BN && nextSentenceLabels.count == BN
                     && nextSentenceWeights.count == BN, "PretrainingBatch: [B, N] arrays disagree")
        self.batchSize = batchSize
        self.seqLength = seqLength
        self.maxPredictions = maxPredictions
        self.sequencesPerRow = sequencesPerRow
        self.inputIds = inputIds
        self.segmentIds = segmentIds
        self.inputMask = inputMask
        self.positions = positions
        self.maskedLMPositions = maskedLMPositions
        self.maskedLMIds = maskedLMIds
        self.nextSentencePositions = nextSentencePositions
        self.nextSentenceLabels = nextSentenceLabels
        self.nextSentenceWeights = nextSentenceWeights
    }

    /// Whether the rows are packed (carry their own position ids).
    public var isPacked: Bool { positions != nil }

    /// The sequences in the batch: the weighted NSP slots.
    public var sequenceCount: Int { nextSentenceWeights.reduce(0) { $0 + Int($1 != 0 ? 1 : 0) } }

    /// Appends `other`'s rows (same S, P and N; both packed or both not).
    public mutating func append(_ other: PretrainingBatch) {
        precondition(other.seqLength == seqLength && other.maxPredictions == maxPredictions
                     && other.sequencesPerRow == sequencesPerRow && other.isPacked == isPacked,
                     "PretrainingBatch.append: shapes disagree")
        batchSize += other.batchSize
        inputIds += other.inputIds; segmentIds += other.segmentIds; inputMask += other.inputMask
        if let p = other.positions { positions! += p }
        maskedLMPositions += other.maskedLMPositions; maskedLMIds += other.maskedLMIds
        nextSentencePositions += other.nextSentencePositions; nextSentenceLabels += other.nextSentenceLabels
        nextSentenceWeights += other.nextSentenceWeights
    }

    /// The number of real masked positions in row `b` (up to the first zero).
    public func predictionCount(row b: Int) -> Int {
        let row = maskedLMPositions[(b * maxPredictions)..<((b + 1) * maxPredictions)]
        return row.firstIndex(of: 0).map { $0 - b * maxPredictions } ?? maxPredictions
    }
}
