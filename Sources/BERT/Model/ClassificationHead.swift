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
    let storage: DeviceBuffer
    let dropped: DeviceFloats    // [B, H] pooled output after dropout, the classifier's input
    let logits: DeviceFloats     // [B, L]
    let dLogits: DeviceFloats    // [B, L]
    let logSumExp: DeviceFloats  // [B]
    let labels: DeviceInts       // [B]
    var hasLabels = false
    var dropout: DropoutStreams?

    init(batch B: Int, hidden H: Int, labels L: Int, backend: any Backend) {
        batch = B
        let (p, storage) = Arena.plan(on: backend) { a -> ([DeviceFloats], DeviceInts) in
            ([a.take(B * H), a.take(B * L), a.take(B * L), a.take(B)], a.takeInts(B))
        }
        self.storage = storage
        (dropped, logits, dLogits, logSumExp) = (p.0[0], p.0[1], p.0[2], p.0[3])
        labels = p.1
    }
}

final class ClassificationHead: ModelHeads {
    let hidden: Int, labels: Int
    let dropoutProbability: Float
    let backend: any Backend
    let classifier: LinearParameters
    private(set) var workspace = PlannedWorkspace<ClassificationWorkspace>()

    init(config: BertConfig, layout: ParameterLayout, backend: any Backend) {
        guard case let .classification(classifier, labels) = layout.heads else { preconditionFailure("a classification layout") }
        hidden = config.hiddenSize
        self.labels = labels
        dropoutProbability = config.classifierDropout ?? config.hiddenDropoutProb
        self.backend = backend
        self.classifier = classifier
    }

    var activationCount: Int { workspace.value?.storage.count ?? 0 }

    /// The logits of the encoder's pooled output, and the loss when `labels` are given. `dropout` nil is evaluation.
    func forward(_ w: DeviceBuffer, _ enc: EncoderWorkspace, labels targets: [Int32]?, dropout: DropoutStreams?) -> ClassificationLosses? {
        let B = enc.batch, H = hidden, L = labels, k = backend
        let ws = workspace.planned(for: [B]) { ClassificationWorkspace(batch: B, hidden: H, labels: L, backend: k) }
        ws.dropout = dropout
        let (p, rng) = dropoutMask(dropout)
        k.dropoutForward(enc.pooled, residual: nil, ws.dropped, count: B * H, probability: p, rng: rng)
        k.linearForward(x: ws.dropped, weight: w[classifier.weight], bias: w[classifier.bias], y: ws.logits, rows: B,
                        inFeatures: H, outFeatures: L)
        ws.hasLabels = targets != nil
        guard let targets else { return nil }
        k.upload(targets, to: ws.labels)
        let ce = k.crossEntropyForward(logits: ws.logits, labels: ws.labels, rows: B, classes: L, ld: L, logSumExp: ws.logSumExp)
        return ClassificationLosses(loss: Float(ce.lossSum / Double(B)), correct: ce.correct, examples: B)
    }

    /// Backward of `scale · loss`: accumulates the classifier's gradients, writes the pooled-output gradient into
    /// `enc.dPooled` and zeroes `enc.dHidden` (the sequence output reaches the loss only through the pooler).
    func backward(_ w: DeviceBuffer, _ g: DeviceBuffer, _ enc: EncoderWorkspace, scale: Float) {
        guard let ws = workspace.value, ws.hasLabels else {
            preconditionFailure("backward() needs a forward with labels first")
        }
        let B = enc.batch, H = hidden, L = labels, k = backend
        k.copy(ws.logits, to: ws.dLogits, count: B * L)
        k.crossEntropyBackward(logitsToGradient: ws.dLogits, labels: ws.labels, rows: B, classes: L, ld: L,
                               logSumExp: ws.logSumExp, scale: scale / Float(B))
        k.linearBackward(dy: ws.dLogits, x: ws.dropped, weight: w[classifier.weight], dx: enc.dPooled,
                         dWeight: g[classifier.weight], dBias: g[classifier.bias], rows: B, inFeatures: H, outFeatures: L,
                         accumulateInput: false)
        let (p, rng) = dropoutMask(ws.dropout)
        k.dropoutBackward(enc.dPooled, enc.dPooled, count: B * H, probability: p, rng: rng)
        k.fill(enc.dHidden, count: enc.batch * enc.seqLength * H, value: 0)
    }

    /// The dropout probability (0 in evaluation, `streams` nil) and the classifier site's stream.
    private func dropoutMask(_ streams: DropoutStreams?) -> (probability: Float, rng: CounterRNG) {
        (streams == nil ? 0 : dropoutProbability, (streams ?? DropoutStreams(seed: 0, step: 0)).rng(site: DropoutStreams.classifierSite))
    }
}
