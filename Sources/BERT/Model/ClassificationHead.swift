import BERTKernels

// The head of HF `BertForSequenceClassification` (transformers models/bert/modeling_bert.py), single-label:
// Shapes: B batch, H hidden, L labels.
//   pooled [B, H] → dropout (classifier_dropout, else hidden_dropout_prob) → Linear(H, L) → logits [B, L]
// loss = mean cross-entropy over the B rows.

/// Loss and accuracy of one forward pass of `BertForSequenceClassification`.
public struct ClassificationLosses: Sendable, Equatable {
    public var loss: Float
    /// Rows whose first-argmax logit is the label.
    public var correct: Int
    public var examples: Int
}

/// The classifier's buffers for one B.
final class ClassificationWorkspace {
    let batch: Int
    let storage: FlatBuffer
    let dropped: UnsafeMutablePointer<Float>    // [B, H] pooled output after dropout, the classifier's input
    let logits: UnsafeMutablePointer<Float>     // [B, L]
    let dLogits: UnsafeMutablePointer<Float>    // [B, L]
    let logSumExp: UnsafeMutablePointer<Float>  // [B]
    var labels: [Int32]?
    var dropout: DropoutStreams?

    init(batch B: Int, hidden H: Int, labels L: Int) {
        batch = B
        typealias Ptr = UnsafeMutablePointer<Float>
        let (p, storage) = Arena.plan { a -> [Ptr] in [a.take(B * H), a.take(B * L), a.take(B * L), a.take(B)] }
        self.storage = storage
        (dropped, logits, dLogits, logSumExp) = (p[0], p[1], p[2], p[3])
    }
}

final class ClassificationHead: ModelHeads {
    let hidden: Int, labels: Int
    let dropoutProbability: Float
    let weight: Int, bias: Int
    private(set) var workspace = PlannedWorkspace<ClassificationWorkspace>()

    init(config: BertConfig, layout: ParameterLayout) {
        hidden = config.hiddenSize
        labels = layout["classifier.bias"].count
        dropoutProbability = config.classifierDropout ?? config.hiddenDropoutProb
        weight = layout.offset("classifier.weight")
        bias = layout.offset("classifier.bias")
    }

    var activationCount: Int { workspace.value?.storage.count ?? 0 }

    /// The logits of the encoder's pooled output, and the loss when `labels` are given. `dropout` nil is evaluation.
    func forward(_ w: FlatBuffer, _ enc: EncoderWorkspace, labels targets: [Int32]?, dropout: DropoutStreams?) -> ClassificationLosses? {
        let B = enc.batch, H = hidden, L = labels
        let ws = workspace.planned(for: [B]) { ClassificationWorkspace(batch: B, hidden: H, labels: L) }
        ws.dropout = dropout
        let (p, rng) = dropoutMask(dropout)
        Dropout.forward(enc.pooled, ws.dropped, count: B * H, probability: p, rng: rng)
        Linear.forward(x: ws.dropped, weight: w[weight], bias: w[bias], y: ws.logits, rows: B, inFeatures: H, outFeatures: L)
        ws.labels = targets
        guard let targets else { return nil }
        let ce = CrossEntropy.forward(logits: ws.logits, labels: targets, classes: L, ld: L, logSumExp: ws.logSumExp)
        return ClassificationLosses(loss: Float(ce.lossSum / Double(B)), correct: ce.correct, examples: B)
    }

    /// Backward of `scale · loss`: accumulates the classifier's gradients, writes the pooled-output gradient into
    /// `enc.dPooled` and zeroes `enc.dHidden` (the sequence output reaches the loss only through the pooler).
    func backward(_ w: FlatBuffer, _ g: FlatBuffer, _ enc: EncoderWorkspace, scale: Float) {
        guard let ws = workspace.value, let targets = ws.labels else {
            preconditionFailure("backward() needs a forward with labels first")
        }
        let B = enc.batch, H = hidden, L = labels
        ws.dLogits.update(from: ws.logits, count: B * L)
        CrossEntropy.backward(logitsToGradient: ws.dLogits, labels: targets, classes: L, ld: L, logSumExp: ws.logSumExp,
                              scale: scale / Float(B))
        Linear.backward(dy: ws.dLogits, x: ws.dropped, weight: w[weight], dx: enc.dPooled, dWeight: g[weight],
                        dBias: g[bias], rows: B, inFeatures: H, outFeatures: L)
        let (p, rng) = dropoutMask(ws.dropout)
        Dropout.backward(enc.dPooled, enc.dPooled, count: B * H, probability: p, rng: rng)
        enc.dHidden.update(repeating: 0, count: enc.batch * enc.seqLength * H)
    }

    /// The dropout probability (0 in evaluation, `streams` nil) and the classifier site's stream.
    private func dropoutMask(_ streams: DropoutStreams?) -> (probability: Float, rng: CounterRNG) {
        (streams == nil ? 0 : dropoutProbability, (streams ?? DropoutStreams(seed: 0, step: 0)).rng(site: DropoutStreams.classifierSite))
    }
}
