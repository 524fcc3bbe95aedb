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
    let storage: DeviceBuffer
    let logits: DeviceFloats       // [T, 2] Linear output; its gradient in backward
    let spanLogits: DeviceFloats   // [2B, S] = [2, T]: start rows, then end rows
    let counted: DeviceFloats      // [≤ 2B, S] the rows in the loss; their gradients in backward
    let dSpanLogits: DeviceFloats  // [2B, S] the counted rows' gradients in place, 0 elsewhere
    let logSumExp: DeviceFloats    // [≤ 2B]
    let rows: DeviceInts           // [≤ 2B] span-logit row of each counted row: the start rows first
    let labels: DeviceInts         // [≤ 2B] position of each counted row
    var startCount = 0, countedRows = 0
    var hasTargets = false

    init(batch B: Int, seqLength S: Int, backend: any Backend) {
        (batch, seqLength) = (B, S)
        let (p, storage) = Arena.plan(on: backend) { a -> ([DeviceFloats], [DeviceInts]) in
            ([a.take(B * S * 2), a.take(2 * B * S), a.take(2 * B * S), a.take(2 * B * S), a.take(2 * B)],
             [a.takeInts(2 * B), a.takeInts(2 * B)])
        }
        self.storage = storage
        (logits, spanLogits, counted, dSpanLogits, logSumExp) = (p.0[0], p.0[1], p.0[2], p.0[3], p.0[4])
        (rows, labels) = (p.1[0], p.1[1])
    }
}

final class QuestionAnsweringHead: ModelHeads {
    let hidden: Int
    let backend: any Backend
    let qa: LinearParameters
    private(set) var workspace = PlannedWorkspace<QuestionAnsweringWorkspace>()

    init(config: BertConfig, layout: ParameterLayout, backend: any Backend) {
        guard case let .questionAnswering(qa) = layout.heads else { preconditionFailure("a question-answering layout") }
        hidden = config.hiddenSize
        self.backend = backend
        self.qa = qa
    }

    var activationCount: Int { workspace.value?.storage.count ?? 0 }

    /// The span logits of the encoder's sequence output, and the losses when `spans` are given.
    func forward(_ w: DeviceBuffer, _ enc: EncoderWorkspace, spans: AnswerSpans?) -> QuestionAnsweringLosses? {
        let B = enc.batch, S = enc.seqLength, T = B * S, H = hidden, k = backend
        let ws = workspace.planned(for: [B, S]) { QuestionAnsweringWorkspace(batch: B, seqLength: S, backend: k) }
        k.linearForward(x: enc.sequenceOutput, weight: w[qa.weight], bias: w[qa.bias], y: ws.logits, rows: T, inFeatures: H,
                        outFeatures: 2)
        k.transpose(ws.logits, rows: T, columns: 2, into: ws.spanLogits)
        ws.hasTargets = spans != nil
        guard let spans else { return nil }

        var rows: [Int32] = [], labels: [Int32] = []
        for (side, targets) in [spans.startPositions, spans.endPositions].enumerated() {
            for b in 0..<B {
                let position = min(max(Int(targets[b]), 0), S)
                if position < S {
                    rows.append(Int32(side * B + b))
                    labels.append(Int32(position))
                }
            }
            if side == 0 { ws.startCount = rows.count }
        }
        k.upload(rows, to: ws.rows)
        k.upload(labels, to: ws.labels)
        ws.countedRows = rows.count
        k.gatherRows(ws.spanLogits, indices: ws.rows, count: rows.count, width: S, into: ws.counted)
        let n = ws.startCount, m = rows.count - n
        let start = k.crossEntropyForward(logits: ws.counted, labels: ws.labels, rows: n, classes: S, ld: S,
                                          logSumExp: ws.logSumExp)
        let end = k.crossEntropyForward(logits: ws.counted + n * S, labels: ws.labels + n, rows: m, classes: S, ld: S,
                                        logSumExp: ws.logSumExp + n)
        // A side with no counted row adds 0 (HF's mean over no rows would be NaN).
        let startLoss = n > 0 ? Float(start.lossSum / Double(n)) : 0, endLoss = m > 0 ? Float(end.lossSum / Double(m)) : 0
        return QuestionAnsweringLosses(loss: (startLoss + endLoss) / 2, startLoss: startLoss, endLoss: endLoss,
                                       startCount: n, endCount: m, startCorrect: start.correct, endCorrect: end.correct)
    }

    /// Backward of `scale · loss`: accumulates the head's parameter gradients and writes the sequence-output gradient
    /// into `enc.dHidden`.
    func backward(_ w: DeviceBuffer, _ g: DeviceBuffer, _ enc: EncoderWorkspace, scale: Float) {
        guard let ws = workspace.value, ws.hasTargets else {
            preconditionFailure("backward() needs a forward with answer spans first")
        }
        let B = enc.batch, S = enc.seqLength, T = B * S, H = hidden, n = ws.startCount, m = ws.countedRows - n, k = backend
        k.gatherRows(ws.spanLogits, indices: ws.rows, count: n + m, width: S, into: ws.counted)   // afresh: a second backward is the same
        if n > 0 {
            k.crossEntropyBackward(logitsToGradient: ws.counted, labels: ws.labels, rows: n, classes: S, ld: S,
                                   logSumExp: ws.logSumExp, scale: scale / Float(2 * n))
        }
        if m > 0 {
            k.crossEntropyBackward(logitsToGradient: ws.counted + n * S, labels: ws.labels + n, rows: m, classes: S, ld: S,
                                   logSumExp: ws.logSumExp + n, scale: scale / Float(2 * m))
        }
        // Back to the Linear's [T, 2] layout: the counted rows into place in [2, T], then the transpose.
        k.fill(ws.dSpanLogits, count: 2 * T, value: 0)
        k.scatterAddRows(ws.counted, indices: ws.rows, count: n + m, width: S, into: ws.dSpanLogits)
        k.transpose(ws.dSpanLogits, rows: 2, columns: T, into: ws.logits)
        k.linearBackward(dy: ws.logits, x: enc.sequenceOutput, weight: w[qa.weight], dx: enc.dHidden, dWeight: g[qa.weight],
                         dBias: g[qa.bias], rows: T, inFeatures: H, outFeatures: 2, accumulateInput: false)
    }
}
