import BERTKernels

/// One batch for span question answering (B batch, S sequence length), every array row-major.
public struct QuestionAnsweringBatch: TokenBatch, Equatable {
    public var batchSize: Int
    public var seqLength: Int
    public var inputIds: [Int32]
    public var segmentIds: [Int32]
    public var inputMask: [Int32]
    /// `[B]` the answer's first token, 0 (`[CLS]`) where the answer is outside the window (run_squad.py's labels).
    /// As in HF, a position is clamped to [0, S] and S leaves the row out of the start loss. nil when predicting.
    public var startPositions: [Int32]?
    /// `[B]` the answer's last token, read like `startPositions`.
    public var endPositions: [Int32]?

    /// - Parameters: `inputIds`, `segmentIds`, `inputMask` `[B, S]`; `startPositions`, `endPositions` `[B]`, both or
    ///   neither.
    public init(batchSize: Int, seqLength: Int, inputIds: [Int32], segmentIds: [Int32], inputMask: [Int32],
                startPositions: [Int32]? = nil, endPositions: [Int32]? = nil) {
        self.batchSize = batchSize
        self.seqLength = seqLength
        self.inputIds = inputIds
        self.segmentIds = segmentIds
        self.inputMask = inputMask
        self.startPositions = startPositions
        self.endPositions = endPositions
    }
}

/// BERT with a span head for extractive question answering (HF `BertForQuestionAnswering`): the encoder without a
/// pooler, `qa_outputs` on every position giving start and end logits `[B, S]`.
public final class BertForQuestionAnswering: BertModelBase {
    let head: QuestionAnsweringHead
    private var headWorkspace = PlannedWorkspace<QuestionAnsweringWorkspace>()

    /// A model with BERT's random initialisation from `seed`.
    public init(config: BertConfig, seed: UInt64 = 12345) throws {
        try config.validate()
        let layout = ParameterLayout.questionAnswering(config)
        head = QuestionAnsweringHead(config: config, layout: layout)
        try super.init(config: config, layout: layout, seed: seed)
    }

    /// Forward pass: the start and end logits (`startLogits()`, `endLogits()`) and, when the batch has positions, the
    /// losses (nil otherwise). `dropout` nil is evaluation mode; otherwise the matching `backward` regenerates the masks.
    /// - Throws: `BertError.invalidInput` naming the offending field when the batch does not fit the model.
    public func forward(_ batch: QuestionAnsweringBatch, dropout: DropoutStreams? = nil) throws -> QuestionAnsweringLosses? {
        let positions = try validatePositions(batch)
        let enc = try runEncoder(batch, dropout: dropout)
        let ws = headWorkspace.planned(for: [batch.batchSize, batch.seqLength]) {
            QuestionAnsweringWorkspace(batch: batch.batchSize, seqLength: batch.seqLength)
        }
        return head.forward(parameters, enc, ws, positions: positions)
    }

    override func headsBackward(_ enc: EncoderWorkspace, scale: Float) {
        head.backward(parameters, gradients, enc, headWorkspace.value!, scale: scale)
    }

    override var headsActivationCount: Int { headWorkspace.value?.storage.count ?? 0 }
    override var checkpointArchitecture: String { "BertForQuestionAnswering" }

    /// The last forward's start logits `[B, S]` (padded positions included, as HF gives them).
    public func startLogits() -> [Float] { spanLogits(0) }
    /// The last forward's end logits `[B, S]`.
    public func endLogits() -> [Float] { spanLogits(1) }

    private func spanLogits(_ side: Int) -> [Float] {
        guard let ws = headWorkspace.value else { return [] }
        let count = ws.batch * ws.seqLength
        return Array(UnsafeBufferPointer(start: ws.spanLogits + side * count, count: count))
    }

    private func validatePositions(_ b: QuestionAnsweringBatch) throws -> (start: [Int32], end: [Int32])? {
        switch (b.startPositions, b.endPositions) {
        case (nil, nil): return nil
        case (let start?, let end?) where start.count == b.batchSize && end.count == b.batchSize: return (start, end)
        case (_?, _?): throw BertError.invalidInput("start_positions and end_positions must hold B = \(b.batchSize) positions each")
        default: throw BertError.invalidInput("start_positions and end_positions come together: give both or neither")
        }
    }

    /// Loads a checkpoint directory (ours or Hugging Face's): a `BertForQuestionAnswering` one whole; a `BertModel` or
    /// `BertForPreTraining` one into the encoder, the span head keeping its fresh initialisation (the report lists
    /// `qa_outputs.*` as missing and the other heads and the pooler as skipped).
    /// - Throws: `BertError.invalidCheckpoint` naming missing encoder tensors, mis-shaped or unknown ones.
    public static func load(directory: String) throws -> (BertForQuestionAnswering, LoadReport) {
        let model = try BertForQuestionAnswering(config: try Checkpoint.config(in: directory))
        return (model, try model.loadTaskWeights(directory: directory))
    }
}
