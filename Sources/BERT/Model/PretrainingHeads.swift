import BERTKernels

// BERT's pre-training heads (HF `BertPreTrainingHeads`), with the MLM head applied only to the masked positions
// (gathered first, as NVIDIA's implementation does) instead of projecting every position onto the vocabulary.
// Shapes: M masked positions in the batch (≤ B·P), H hidden, V vocabulary, V8 = V padded to a multiple of 8.
//   MLM: gather → dense(H,H) → act → LayerNorm → ·word_embeddingsᵀ + bias → logits [M, V8]
//   NSP: pooled [B, H] → Linear(H, 2) → logits [B, 2]
// loss = mean CE over the M masked positions + mean CE over the B sentence pairs.

/// Losses and counts of one forward pass.
public struct PretrainingLosses: Sendable, Equatable {
    public var loss: Float
    public var mlmLoss: Float
    public var nspLoss: Float
    /// M, the masked positions the MLM loss averages over.
    public var maskedCount: Int
    public var mlmCorrect: Int
    public var nspCorrect: Int
    public var sequences: Int
}

/// The heads' buffers for one (B, P) shape.
final class PretrainingWorkspace {
    let storage: FlatBuffer
    var rows: [Int] = []          // [M] token index b·S + position of each masked position
    var labels: [Int32] = []      // [M]
    var nspLabels: [Int32] = []   // [B]
    let gathered: UnsafeMutablePointer<Float>    // [M, H] sequence output at the masked positions
    let transform: UnsafeMutablePointer<Float>   // [M, H] dense output, before the activation
    let activated: UnsafeMutablePointer<Float>   // [M, H] LayerNorm's input
    let mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float> // [M]
    let normed: UnsafeMutablePointer<Float>      // [M, H]
    let logits: UnsafeMutablePointer<Float>      // [M, V8]
    let nspLogits: UnsafeMutablePointer<Float>   // [B, 2]
    let dNormed: UnsafeMutablePointer<Float>     // [M, H]
    let logSumExp: UnsafeMutablePointer<Float>   // [M] per-row log-sum-exp of the MLM logits
    let nspLogSumExp: UnsafeMutablePointer<Float> // [B]

    init(config c: BertConfig, batch B: Int, maxPredictions P: Int) {
        let M = B * P, H = c.hiddenSize
        typealias Ptr = UnsafeMutablePointer<Float>
        let (p, storage) = Arena.plan { a -> [Ptr] in
            [a.take(M * H), a.take(M * H), a.take(M * H), a.take(M), a.take(M), a.take(M * H),
             a.take(M * c.paddedVocabSize), a.take(B * 2), a.take(M * H), a.take(M), a.take(B)]
        }
        self.storage = storage
        (gathered, transform, activated, mean, rstd, normed, logits, nspLogits, dNormed, logSumExp, nspLogSumExp) =
            (p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10])
        rows.reserveCapacity(M)
        labels.reserveCapacity(M)
        nspLabels.reserveCapacity(B)
    }
}

final class PretrainingHeads: ModelHeads {
    let config: BertConfig
    let activation: Activation
    let word: Int, transformWeight: Int, transformBias: Int, normWeight: Int, normBias: Int, decoderBias: Int
    let nspWeight: Int, nspBias: Int
    private(set) var workspace = PlannedWorkspace<PretrainingWorkspace>()

    init(config: BertConfig, layout: ParameterLayout) throws {
        self.config = config
        activation = try config.activation()
        word = layout.offset("bert.embeddings.word_embeddings.weight")
        transformWeight = layout.offset("cls.predictions.transform.dense.weight")
        transformBias = layout.offset("cls.predictions.transform.dense.bias")
        normWeight = layout.offset("cls.predictions.transform.LayerNorm.weight")
        normBias = layout.offset("cls.predictions.transform.LayerNorm.bias")
        decoderBias = layout.offset("cls.predictions.bias")
        nspWeight = layout.offset("cls.seq_relationship.weight")
        nspBias = layout.offset("cls.seq_relationship.bias")
    }

    var activationCount: Int { workspace.value?.storage.count ?? 0 }

    /// Gathers the masked positions named by `batch`, runs both heads on the encoder's outputs and returns the losses.
    func forward(_ w: FlatBuffer, _ enc: EncoderWorkspace, batch: PretrainingBatch) -> PretrainingLosses {
        let c = config, H = c.hiddenSize, V = c.vocabSize, V8 = c.paddedVocabSize, B = batch.batchSize
        let S = batch.seqLength, P = batch.maxPredictions
        let ws = workspace.planned(for: [B, P]) { PretrainingWorkspace(config: c, batch: B, maxPredictions: P) }
        ws.rows.removeAll(keepingCapacity: true)
        ws.labels.removeAll(keepingCapacity: true)
        for b in 0..<B {
            for p in 0..<batch.predictionCount(row: b) {
                ws.rows.append(b * S + Int(batch.maskedLMPositions[b * P + p]))
                ws.labels.append(batch.maskedLMIds[b * P + p])
            }
        }
        ws.nspLabels.removeAll(keepingCapacity: true)
        ws.nspLabels.append(contentsOf: batch.nextSentenceLabels)
        let M = ws.rows.count

        Rows.gather(enc.sequenceOutput, rows: ws.rows, width: H, into: ws.gathered)
        Linear.forward(x: ws.gathered, weight: w[transformWeight], bias: w[transformBias], y: ws.transform,
                       rows: M, inFeatures: H, outFeatures: H)
        activation.forward(ws.transform, ws.activated, count: M * H)
        LayerNorm.forward(x: ws.activated, gamma: w[normWeight], beta: w[normBias], y: ws.normed, mean: ws.mean,
                          rstd: ws.rstd, rows: M, features: H, eps: c.layerNormEps)
        Linear.forward(x: ws.normed, weight: w[word], bias: w[decoderBias], y: ws.logits, rows: M, inFeatures: H, outFeatures: V8)
        Linear.forward(x: enc.pooled, weight: w[nspWeight], bias: w[nspBias], y: ws.nspLogits, rows: B, inFeatures: H, outFeatures: 2)

        let mlm = CrossEntropy.forward(logits: ws.logits, labels: ws.labels, classes: V, ld: V8, logSumExp: ws.logSumExp)
        let nsp = CrossEntropy.forward(logits: ws.nspLogits, labels: ws.nspLabels, classes: 2, ld: 2, logSumExp: ws.nspLogSumExp)
        let mlmLoss = M > 0 ? Float(mlm.lossSum / Double(M)) : 0
        let nspLoss = Float(nsp.lossSum / Double(B))
        return PretrainingLosses(loss: mlmLoss + nspLoss, mlmLoss: mlmLoss, nspLoss: nspLoss, maskedCount: M,
                                 mlmCorrect: mlm.correct, nspCorrect: nsp.correct, sequences: B)
    }

    /// Backward of `scale · loss`: writes the sequence-output gradient into `enc.dHidden` (zeroed first) and the pooled
    /// gradient into `enc.dPooled`; accumulates the heads' parameter gradients (the decoder's into the word embeddings').
    func backward(_ w: FlatBuffer, _ g: FlatBuffer, _ enc: EncoderWorkspace, scale: Float) {
        guard let ws = workspace.value else { preconditionFailure("backward() before forward()") }
        let c = config, H = c.hiddenSize, V8 = c.paddedVocabSize, M = ws.rows.count, B = ws.nspLabels.count
        enc.dHidden.update(repeating: 0, count: enc.batch * enc.seqLength * H)
        if M > 0 {
            CrossEntropy.backward(logitsToGradient: ws.logits, labels: ws.labels, classes: c.vocabSize, ld: V8,
                                  logSumExp: ws.logSumExp, scale: scale / Float(M))
            Linear.backward(dy: ws.logits, x: ws.normed, weight: w[word], dx: ws.dNormed, dWeight: g[word],
                            dBias: g[decoderBias], rows: M, inFeatures: H, outFeatures: V8)
            LayerNorm.backward(dy: ws.dNormed, x: ws.activated, gamma: w[normWeight], mean: ws.mean, rstd: ws.rstd,
                               dx: ws.dNormed, dGamma: g[normWeight], dBeta: g[normBias], rows: M, features: H,
                               scratch: enc.normScratch)
            activation.backward(ws.dNormed, x: ws.transform, ws.dNormed, count: M * H)
            Linear.backward(dy: ws.dNormed, x: ws.gathered, weight: w[transformWeight], dx: ws.gathered,
                            dWeight: g[transformWeight], dBias: g[transformBias], rows: M, inFeatures: H, outFeatures: H)
            Rows.scatterAdd(ws.gathered, rows: ws.rows, width: H, into: enc.dHidden)
        }
        CrossEntropy.backward(logitsToGradient: ws.nspLogits, labels: ws.nspLabels, classes: 2, ld: 2,
                              logSumExp: ws.nspLogSumExp, scale: scale / Float(B))
        Linear.backward(dy: ws.nspLogits, x: enc.pooled, weight: w[nspWeight], dx: enc.dPooled, dWeight: g[nspWeight],
                        dBias: g[nspBias], rows: B, inFeatures: H, outFeatures: 2)
    }
}
