import BERTKernels

/// The targets of span question answering, per example, row-major `[B]`.
public struct AnswerSpans: Sendable, Equatable {
    /// The answer's first token, 0 (`[CLS]`) where the answer is outside the window (run_squad.py's labels). As in HF,
    /// a position is clamped to [0, S] and S leaves the example out of the start loss.
    public var startPositions: [Int32]
    /// The answer's last token, read like `startPositions`.
    public var endPositions: [Int32]

    public init(startPositions: [Int32], endPositions: [Int32]) {
        self.startPositions = startPositions
        self.endPositions = endPositions
    }
}

/// A batch for `BertForQuestionAnswering`: tokens and, for training, the answer spans.
public typealias QuestionAnsweringBatch = TaskBatch<AnswerSpans>

/// BERT with a span head for extractive question answering (HF `BertForQuestionAnswering`): the encoder without a
/// pooler, `qa_outputs` on every position giving start and end logits `[B, S]`.
public final class BertForQuestionAnswering: BertModelBase {
    /// A model with BERT's random initialisation from `seed`, its tensors and kernels on `backend`.
    /// `initialized` false skips the initialisation for a model that `load` fills (it draws what the file lacks).
    public init(config: BertConfig, seed: UInt64 = 12345, backend: any Backend = CPUBackend.shared,
                initialized: Bool = true) throws {
        try super.init(config: config, seed: seed, backend: backend, architecture: "BertForQuestionAnswering",
                       layout: ParameterLayout.questionAnswering, heads: QuestionAnsweringHead.init, initialized: initialized)
    }

    private var head: QuestionAnsweringHead { heads as! QuestionAnsweringHead }

    /// Forward pass: the start and end logits (`startLogits()`, `endLogits()`) and, when the batch has answer spans, the
    /// losses (nil otherwise). `dropout` nil is evaluation mode; otherwise the matching `backward` regenerates the masks.
    /// Without answer spans and dropout nothing is kept for a backward: inference runs in a workspace a fraction of the size.
    /// - Throws: `BertError.invalidInput` naming the offending field when the batch does not fit the model.
    public func forward(_ batch: QuestionAnsweringBatch, dropout: DropoutStreams? = nil) throws -> QuestionAnsweringLosses? {
        if let spans = batch.targets, spans.startPositions.count != batch.batchSize || spans.endPositions.count != batch.batchSize {
            throw BertError.invalidInput("start_positions and end_positions must hold B = \(batch.batchSize) positions each")
        }
        return head.forward(parameters, try runEncoder(batch, dropout: dropout, training: batch.targets != nil || dropout != nil), spans: batch.targets)
    }

    /// The last forward's start logits `[B, S]` (padded positions included, as HF gives them).
    public func startLogits() -> [Float] { spanLogits(0) }
    /// The last forward's end logits `[B, S]`.
    public func endLogits() -> [Float] { spanLogits(1) }

    private func spanLogits(_ side: Int) -> [Float] {
        guard let ws = head.workspace.value else { return [] }
        let count = ws.batch * ws.seqLength
        return backend.download(ws.spanLogits + side * count, count: count)
    }

    /// Loads a checkpoint directory (ours or Hugging Face's): a `BertForQuestionAnswering` one whole; a `BertModel` or
    /// `BertForPreTraining` one into the encoder, the span head keeping its fresh initialisation (the report lists
    /// `qa_outputs.*` as missing and the other heads and the pooler as skipped).
    /// - Throws: `BertError.invalidCheckpoint` naming missing encoder tensors, mis-shaped or unknown ones.
    public static func load(directory: String, backend: any Backend = CPUBackend.shared) throws -> (BertForQuestionAnswering, LoadReport) {
        let model = try BertForQuestionAnswering(config: try Checkpoint.config(in: directory), backend: backend,
                                                 initialized: false)
        return (model, try model.loadTaskWeights(directory: directory))
    }
}
