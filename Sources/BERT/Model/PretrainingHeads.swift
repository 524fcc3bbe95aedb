import BERTKernels

// BERT's pre-training heads (HF `BertPreTrainingHeads`), with the MLM head applied only to the masked positions
// (gathered first, as NVIDIA's implementation does) instead of projecting every position onto the vocabulary.
// Shapes: M masked positions in the batch (≤ B·P), H hidden, V vocabulary, V8 = V padded to a multiple of 8,
// Q sequences in the batch (the weighted NSP slots, ≤ B·N; Q = B unpacked).
//   MLM: gather → dense(H,H) → act → LayerNorm → ·word_embeddingsᵀ + bias → logits [M, V8]
//   NSP: pooled [Q, H] (each sequence's own [CLS]) → Linear(H, 2) → logits [Q, 2]
// loss = mean CE over the M masked positions + mean CE over the Q sentence pairs, so a packed batch and the same
// sequences unpacked have the same loss.

/// Losses and counts of one forward pass.
public struct PretrainingLosses: Sendable, Equatable {
    public var loss: Float
    public var mlmLoss: Float
    public var nspLoss: Float
    /// M, the masked positions the MLM loss averages over.
    public var maskedCount: Int
    public var mlmCorrect: Int
    public var nspCorrect: Int
    /// Q, the sequences (sentence pairs) the NSP loss averages over: B unpacked, the weighted NSP slots packed.
    public var sequences: Int
}

/// The heads' buffers for one (B, P, N) shape.
final class PretrainingWorkspace {
    let storage: DeviceBuffer
    var maskedCount = 0           // M
    var sequences = 0             // Q
    let rows: DeviceInts          // [≤ B·P] token index b·S + position of each masked position
    let labels: DeviceInts        // [≤ B·P]
    let nspLabels: DeviceInts     // [≤ B·N]
    let gathered: DeviceFloats    // [M, H] sequence output at the masked positions
    let transform: DeviceFloats   // [M, H] dense output, before the activation
    let activated: DeviceFloats   // [M, H] LayerNorm's input
    let mean: DeviceFloats, rstd: DeviceFloats // [M]
    let normed: DeviceFloats      // [M, H]
    let logits: DeviceFloats      // [M, V8]
    let nspLogits: DeviceFloats   // [Q, 2]
    let dNormed: DeviceFloats     // [M, H]
    let logSumExp: DeviceFloats   // [M] per-row log-sum-exp of the MLM logits
    let nspLogSumExp: DeviceFloats // [Q]

    init(config c: BertConfig, batch B: Int, maxPredictions P: Int, sequencesPerRow N: Int, backend: any Backend) {
        let M = B * P, H = c.hiddenSize, BN = B * N
        let (p, storage) = Arena.plan(on: backend) { a -> ([DeviceInts], [DeviceFloats]) in
            ([a.takeInts(M), a.takeInts(M), a.takeInts(BN)],
             [a.take(M * H), a.take(M * H), a.take(M * H), a.take(M), a.take(M), a.take(M * H),
              a.take(M * c.paddedVocabSize), a.take(BN * 2), a.take(M * H), a.take(M), a.take(BN)])
        }
        self.storage = storage
        (rows, labels, nspLabels) = (p.0[0], p.0[1], p.0[2])
        let f = p.1
        (gathered, transform, activated, mean, rstd, normed, logits, nspLogits, dNormed, logSumExp, nspLogSumExp) =
            (f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10])
    }
}

final class PretrainingHeads: ModelHeads {
    let config: BertConfig
    let activation: Activation
    let backend: any Backend
    let word: Int
    let transform: LinearParameters, norm: LayerNormParameters, decoderBias: Int, nsp: LinearParameters
    private(set) var workspace = PlannedWorkspace<PretrainingWorkspace>()

    init(config: BertConfig, layout: ParameterLayout, backend: any Backend) throws {
        guard case let .pretraining(transform, norm, decoderBias, nsp) = layout.heads else {
            preconditionFailure("PretrainingHeads need a pre-training layout")
        }
        self.config = config
        activation = try config.activation()
        self.backend = backend
        word = layout.encoder.word
        (self.transform, self.norm, self.decoderBias, self.nsp) = (transform, norm, decoderBias, nsp)
    }

    var activationCount: Int { workspace.value?.storage.count ?? 0 }

    /// Gathers the masked positions named by `batch`, runs both heads on the encoder's outputs (NSP on the pooled
    /// [CLS] of each weighted slot, in `enc.clsRows`' order) and returns the losses.
    func forward(_ w: DeviceBuffer, _ enc: EncoderWorkspace, batch: PretrainingBatch) -> PretrainingLosses {
        let c = config, H = c.hiddenSize, V = c.vocabSize, V8 = c.paddedVocabSize, B = batch.batchSize
        let S = batch.seqLength, P = batch.maxPredictions, N = batch.sequencesPerRow, k = backend
        let ws = workspace.planned(for: [B, P, N]) {
            PretrainingWorkspace(config: c, batch: B, maxPredictions: P, sequencesPerRow: N, backend: k)
        }
        var rows: [Int32] = [], labels: [Int32] = []
        rows.reserveCapacity(B * P)
        labels.reserveCapacity(B * P)
        for b in 0..<B {
            for p in 0..<batch.predictionCount(row: b) {
                rows.append(Int32(b * S) + batch.maskedLMPositions[b * P + p])
                labels.append(batch.maskedLMIds[b * P + p])
            }
        }
        k.upload(rows, to: ws.rows)
        k.upload(labels, to: ws.labels)
        let nspLabels = zip(batch.nextSentenceLabels, batch.nextSentenceWeights).filter { $0.1 != 0 }.map(\.0)
        precondition(nspLabels.count == enc.poolerRows, "the encoder pooled another batch's sequences")
        k.upload(nspLabels, to: ws.nspLabels)
        let M = rows.count, Q = nspLabels.count
        (ws.maskedCount, ws.sequences) = (M, Q)

        k.gatherRows(enc.sequenceOutput, indices: ws.rows, count: M, width: H, into: ws.gathered)
        k.linearForward(x: ws.gathered, weight: w[transform.weight], bias: w[transform.bias], y: ws.transform,
                        rows: M, inFeatures: H, outFeatures: H)
        k.activationForward(activation, ws.transform, bias: nil, ws.activated, rows: M, features: H)
        k.layerNormForward(x: ws.activated, gamma: w[norm.gamma], beta: w[norm.beta], y: ws.normed, mean: ws.mean,
                           rstd: ws.rstd, rows: M, features: H, eps: c.layerNormEps)
        k.linearForward(x: ws.normed, weight: w[word], bias: w[decoderBias], y: ws.logits, rows: M, inFeatures: H,
                        outFeatures: V8)
        k.linearForward(x: enc.pooled, weight: w[nsp.weight], bias: w[nsp.bias], y: ws.nspLogits, rows: Q, inFeatures: H,
                        outFeatures: 2)

        let mlm = k.crossEntropyForward(logits: ws.logits, labels: ws.labels, rows: M, classes: V, ld: V8,
                                        logSumExp: ws.logSumExp)
        let nspResult = k.crossEntropyForward(logits: ws.nspLogits, labels: ws.nspLabels, rows: Q, classes: 2, ld: 2,
                                              logSumExp: ws.nspLogSumExp)
        let mlmLoss = M > 0 ? Float(mlm.lossSum / Double(M)) : 0
        let nspLoss = Q > 0 ? Float(nspResult.lossSum / Double(Q)) : 0
        return PretrainingLosses(loss: mlmLoss + nspLoss, mlmLoss: mlmLoss, nspLoss: nspLoss, maskedCount: M,
                                 mlmCorrect: mlm.correct, nspCorrect: nspResult.correct, sequences: Q)
    }

    /// Backward of `scale · loss`: writes the sequence-output gradient into `enc.dHidden` (zeroed first) and the pooled
    /// gradient into `enc.dPooled`; accumulates the heads' parameter gradients (the decoder's into the word embeddings').
    func backward(_ w: DeviceBuffer, _ g: DeviceBuffer, _ enc: EncoderWorkspace, scale: Float) {
        guard let ws = workspace.value else { preconditionFailure("backward() before forward()") }
        let c = config, H = c.hiddenSize, V8 = c.paddedVocabSize, M = ws.maskedCount, Q = ws.sequences, k = backend
        k.fill(enc.dHidden, count: enc.batch * enc.seqLength * H, value: 0)
        if M > 0 {
            k.crossEntropyBackward(logitsToGradient: ws.logits, labels: ws.labels, rows: M, classes: c.vocabSize, ld: V8,
                                   logSumExp: ws.logSumExp, scale: scale / Float(M))
            k.linearBackward(dy: ws.logits, x: ws.normed, weight: w[word], dx: ws.dNormed, dWeight: g[word],
                             dBias: g[decoderBias], rows: M, inFeatures: H, outFeatures: V8, accumulateInput: false)
            k.layerNormBackward(dy: ws.dNormed, x: ws.activated, gamma: w[norm.gamma], mean: ws.mean, rstd: ws.rstd,
                                dx: ws.dNormed, dGamma: g[norm.gamma], dBeta: g[norm.beta], rows: M, features: H,
                                scratch: enc.normScratch)
            k.activationBackward(activation, ws.dNormed, x: ws.transform, ws.dNormed, count: M * H)
            k.linearBackward(dy: ws.dNormed, x: ws.gathered, weight: w[transform.weight], dx: ws.gathered,
                             dWeight: g[transform.weight], dBias: g[transform.bias], rows: M, inFeatures: H,
                             outFeatures: H, accumulateInput: false)
            k.scatterAddRows(ws.gathered, indices: ws.rows, count: M, width: H, into: enc.dHidden)
        }
        guard Q > 0 else { return }
        k.crossEntropyBackward(logitsToGradient: ws.nspLogits, labels: ws.nspLabels, rows: Q, classes: 2, ld: 2,
                               logSumExp: ws.nspLogSumExp, scale: scale / Float(Q))
        k.linearBackward(dy: ws.nspLogits, x: enc.pooled, weight: w[nsp.weight], dx: enc.dPooled, dWeight: g[nsp.weight],
                         dBias: g[nsp.bias], rows: Q, inFeatures: H, outFeatures: 2, accumulateInput: false)
    }
}
