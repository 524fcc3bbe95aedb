import BERTKernels

// The span head of HF `BertForQuestionAnswering` (transformers models/bert/modeling_bert.py): one Linear(H, 2) on
// every position of the sequence output, its two columns the start and end logits.
// Shapes: B batch, S sequence, T = B·S, H hidden; the span logits are [2B, S]: B rows of start logits, then B of end.
//   sequence output [T, H] → Linear(H, 2) → [T, 2] → start logits [B, S], end logits [B, S]
// loss = (mean CE of the start logits + mean CE of the end logits) / 2, each mean over the rows it counts: a position
// is clamped to [0, S] and S (an answer outside the input) leaves its row out, HF's `ignored_index`.

/// Losses of one forward pass of `BertForQuestionAnswering`.
public struct QuestionAnsweringLosses: Sendable, Equatable {
    /// (startLoss + endLoss) / 2
    public var loss: Float
    public var startLoss: Float
    public var endLoss: Float
    /// Rows whose start (end) position counts: those below S after clamping.
    public var startCount: Int
    public var endCount: Int
    /// Counted rows whose first-argmax start (end) logit is at the position.
    public var startCorrect: Int
    public var endCorrect: Int
}

/// The span head's buffers for one (B, S) shape.
final class QuestionAnsweringWorkspace {
    let batch: Int, seqLength: Int
    let storage: FlatBuffer
    let logits: UnsafeMutablePointer<Float>       // [T, 2] Linear output; its gradient in backward
    let spanLogits: UnsafeMutablePointer<Float>   // [2B, S] start rows, then end rows
    let counted: UnsafeMutablePointer<Float>      // [≤ 2B, S] the rows in the loss; their gradients in backward
    let logSumExp: UnsafeMutablePointer<Float>    // [≤ 2B]
    var rows: [Int] = []        // span-logit row of each counted row: the start rows first
    var labels: [Int32] = []    // position of each counted row
    var startCount = 0
    var hasTargets = false

    init(batch B: Int, seqLength S: Int) {
        (batch, seqLength) = (B, S)
        typealias Ptr = UnsafeMutablePointer<Float>
        let (p, storage) = Arena.plan { a -> [Ptr] in [a.take(B * S * 2), a.take(2 * B * S), a.take(2 * B * S), a.take(2 * B)] }
        self.storage = storage
        (logits, spanLogits, counted, logSumExp) = (p[0], p[1], p[2], p[3])
        rows.reserveCapacity(2 * B)
        labels.reserveCapacity(2 * B)
    }
}

final class QuestionAnsweringHead: ModelHeads {
    let hidden: Int
    let weight: Int, bias: Int
    private(set) var workspace = PlannedWorkspace<QuestionAnsweringWorkspace>()

    init(config: BertConfig, layout: ParameterLayout) {
        hidden = config.hiddenSize
        weight = layout.offset("qa_outputs.weight")
        bias = layout.offset("qa_outputs.bias")
    }

    var activationCount: Int { workspace.value?.storage.count ?? 0 }

    /// The span logits of the encoder's sequence output, and the losses when `spans` are given.
    func forward(_ w: FlatBuffer, _ enc: EncoderWorkspace, spans: AnswerSpans?) -> QuestionAnsweringLosses? {
        let B = enc.batch, S = enc.seqLength, T = B * S, H = hidden
        let ws = workspace.planned(for: [B, S]) { QuestionAnsweringWorkspace(batch: B, seqLength: S) }
        Linear.forward(x: enc.sequenceOutput, weight: w[weight], bias: w[bias], y: ws.logits, rows: T, inFeatures: H, outFeatures: 2)
        for t in 0..<T {
            ws.spanLogits[t] = ws.logits[2 * t]
            ws.spanLogits[T + t] = ws.logits[2 * t + 1]
        }
        ws.hasTargets = spans != nil
        guard let spans else { return nil }

        ws.rows.removeAll(keepingCapacity: true)
        ws.labels.removeAll(keepingCapacity: true)
        for (k, targets) in [spans.startPositions, spans.endPositions].enumerated() {
            for b in 0..<B {
                let position = min(max(Int(targets[b]), 0), S)
                if position < S {
                    ws.rows.append(k * B + b)
                    ws.labels.append(Int32(position))
                }
            }
            if k == 0 { ws.startCount = ws.rows.count }
        }
        Rows.gather(ws.spanLogits, rows: ws.rows, width: S, into: ws.counted)
        let n = ws.startCount, m = ws.rows.count - n
        let start = CrossEntropy.forward(logits: ws.counted, labels: Array(ws.labels[..<n]), classes: S, ld: S, logSumExp: ws.logSumExp)
        let end = CrossEntropy.forward(logits: ws.counted + n * S, labels: Array(ws.labels[n...]), classes: S, ld: S,
                                       logSumExp: ws.logSumExp + n)
        // A side with no counted row adds 0 (HF's mean over no rows would be NaN).
        let startLoss = n > 0 ? Float(start.lossSum / Double(n)) : 0, endLoss = m > 0 ? Float(end.lossSum / Double(m)) : 0
        return QuestionAnsweringLosses(loss: (startLoss + endLoss) / 2, startLoss: startLoss, endLoss: endLoss,
                                       startCount: n, endCount: m, startCorrect: start.correct, endCorrect: end.correct)
    }

    /// Backward of `scale · loss`: accumulates the head's parameter gradients and writes the sequence-output gradient
    /// into `enc.dHidden`.
    func backward(_ w: FlatBuffer, _ g: FlatBuffer, _ enc: EncoderWorkspace, scale: Float) {
        guard let ws = workspace.value, ws.hasTargets else {
            preconditionFailure("backward() needs a forward with answer spans first")
        }
        let B = enc.batch, S = enc.seqLength, T = B * S, H = hidden, n = ws.startCount, m = ws.rows.count - n
        Rows.gather(ws.spanLogits, rows: ws.rows, width: S, into: ws.counted)   // afresh: a second backward is the same
        if n > 0 {
            CrossEntropy.backward(logitsToGradient: ws.counted, labels: Array(ws.labels[..<n]), classes: S, ld: S,
                                  logSumExp: ws.logSumExp, scale: scale / Float(2 * n))
        }
        if m > 0 {
            CrossEntropy.backward(logitsToGradient: ws.counted + n * S, labels: Array(ws.labels[n...]), classes: S, ld: S,
                                  logSumExp: ws.logSumExp + n, scale: scale / Float(2 * m))
        }
        // Back to the Linear's [T, 2] layout: row r of the span logits is column r / B of the tokens of example r % B.
        ws.logits.update(repeating: 0, count: 2 * T)
        for (i, r) in ws.rows.enumerated() {
            let column = r / B, first = (r % B) * S
            for s in 0..<S { ws.logits[2 * (first + s) + column] = ws.counted[i * S + s] }
        }
        Linear.backward(dy: ws.logits, x: enc.sequenceOutput, weight: w[weight], dx: enc.dHidden, dWeight: g[weight],
                        dBias: g[bias], rows: T, inFeatures: H, outFeatures: 2)
    }
}
