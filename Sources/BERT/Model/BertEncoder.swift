import BERTKernels

// BERT's encoder (HF `BertModel`: embeddings, post-LayerNorm transformer layers, tanh pooler), forward and backward
// over the flat parameter buffer. Mirrors transformers' models/bert/modeling_bert.py.
// Shapes: B batch, S sequence, T = B·S, H hidden, I intermediate, A heads, D = H/A.

/// Offsets of one layer's tensors in the flat buffer.
struct LayerOffsets {
    let qkvWeight: Int, qkvBias: Int               // [3H, H], [3H]: query, key, value adjacent
    let attentionOutWeight: Int, attentionOutBias: Int
    let norm1Weight: Int, norm1Bias: Int
    let intermediateWeight: Int, intermediateBias: Int
    let outputWeight: Int, outputBias: Int
    let norm2Weight: Int, norm2Bias: Int

    init(_ layout: ParameterLayout, layer l: Int) {
        let p = "bert.encoder.layer.\(l)."
        qkvWeight = layout.offset(p + "attention.self.query.weight")
        qkvBias = layout.offset(p + "attention.self.query.bias")
        let H = layout[p + "attention.self.query.weight"].shape[0]
        precondition(layout.offset(p + "attention.self.value.weight") == qkvWeight + 2 * H * H
                     && layout.offset(p + "attention.self.value.bias") == qkvBias + 2 * H,
                     "query/key/value must be adjacent in the layout")
        attentionOutWeight = layout.offset(p + "attention.output.dense.weight")
        attentionOutBias = layout.offset(p + "attention.output.dense.bias")
        norm1Weight = layout.offset(p + "attention.output.LayerNorm.weight")
        norm1Bias = layout.offset(p + "attention.output.LayerNorm.bias")
        intermediateWeight = layout.offset(p + "intermediate.dense.weight")
        intermediateBias = layout.offset(p + "intermediate.dense.bias")
        outputWeight = layout.offset(p + "output.dense.weight")
        outputBias = layout.offset(p + "output.dense.bias")
        norm2Weight = layout.offset(p + "output.LayerNorm.weight")
        norm2Bias = layout.offset(p + "output.LayerNorm.bias")
    }
}

struct BertEncoder {
    let config: BertConfig
    let activation: Activation
    let word: Int, position: Int, tokenType: Int, normWeight: Int, normBias: Int
    let layers: [LayerOffsets]
    /// Offsets of `bert.pooler.dense.{weight,bias}`; nil where the layout has no pooler (QA).
    let pooler: (weight: Int, bias: Int)?

    var hasPooler: Bool { pooler != nil }

    init(config: BertConfig, layout: ParameterLayout) throws {
        self.config = config
        activation = try config.activation()
        word = layout.offset("bert.embeddings.word_embeddings.weight")
        position = layout.offset("bert.embeddings.position_embeddings.weight")
        tokenType = layout.offset("bert.embeddings.token_type_embeddings.weight")
        normWeight = layout.offset("bert.embeddings.LayerNorm.weight")
        normBias = layout.offset("bert.embeddings.LayerNorm.bias")
        layers = (0..<config.numHiddenLayers).map { LayerOffsets(layout, layer: $0) }
        pooler = layout.contains("bert.pooler.dense.weight")
            ? (layout.offset("bert.pooler.dense.weight"), layout.offset("bert.pooler.dense.bias")) : nil
    }

    /// Runs the encoder on the ids already copied into `ws` (and the key bias built from the mask); with `pooler`,
    /// also the [CLS] pooler (which the layout must have). `dropout` nil means evaluation (no dropout).
    func forward(_ w: FlatBuffer, _ ws: EncoderWorkspace, dropout: DropoutStreams?, pooler: Bool) {
        let c = config, B = ws.batch, S = ws.seqLength, T = B * S, H = c.hiddenSize, I = c.intermediateSize
        let A = c.numAttentionHeads, pHidden = dropout == nil ? 0 : c.hiddenDropoutProb
        let pAttention = dropout == nil ? 0 : c.attentionProbsDropoutProb
        let streams = dropout ?? DropoutStreams(seed: 0, step: 0)

        Embedding.forward(ids: ws.ids, segments: ws.segments, word: w[word], position: w[position],
                          tokenType: w[tokenType], out: ws.embeddingSum, batch: B, seqLength: S, hidden: H)
        LayerNorm.forward(x: ws.embeddingSum, gamma: w[normWeight], beta: w[normBias], y: ws.embeddingOutput,
                          mean: ws.embeddingMean, rstd: ws.embeddingRstd, rows: T, features: H, eps: c.layerNormEps)
        Dropout.forward(ws.embeddingOutput, ws.embeddingOutput, count: T * H, probability: pHidden,
                        rng: streams.rng(site: DropoutStreams.embeddingSite))

        // Inference keeps no activations for a backward, so the biases of the FFN and of the two projections feeding
        // a residual are added by the pass that follows (the activation, the residual add) instead of being copied
        // into the GEMM's output first; training keeps the biased pre-activation its backward reads.
        let lean = !ws.training
        /// The residual connection after a projection: `out = residual + dropout(projected [+ bias])`.
        func residual(_ projected: UnsafeMutablePointer<Float>, bias: Int, _ x: UnsafePointer<Float>,
                      _ out: UnsafeMutablePointer<Float>, site: Int) {
            if lean {
                Linear.addBias(projected, bias: w[bias], residual: x, out, rows: T, outFeatures: H)
            } else {
                Dropout.forward(projected, residual: x, out, count: T * H, probability: pHidden, rng: streams.rng(site: site))
            }
        }

        var x = UnsafePointer(ws.embeddingOutput)
        for (l, (o, a)) in zip(layers, ws.layers).enumerated() {
            Linear.forward(x: x, weight: w[o.qkvWeight], bias: w[o.qkvBias], y: a.qkv, rows: T, inFeatures: H, outFeatures: 3 * H)
            Attention.forward(qkv: a.qkv, keyBias: ws.keyBias, probs: lean ? nil : a.probs, context: a.context, batch: B,
                              seqLength: S, heads: A, headSize: c.headSize, dropout: pAttention,
                              rng: streams.rng(site: DropoutStreams.attentionSite(layer: l)), scratch: ws.attentionScratch)
            Linear.forward(x: a.context, weight: w[o.attentionOutWeight], bias: lean ? nil : w[o.attentionOutBias],
                           y: ws.tempH, rows: T, inFeatures: H, outFeatures: H)
            residual(ws.tempH, bias: o.attentionOutBias, x, a.residual1, site: DropoutStreams.attentionOutputSite(layer: l))
            LayerNorm.forward(x: a.residual1, gamma: w[o.norm1Weight], beta: w[o.norm1Bias], y: a.hidden1, mean: a.mean1,
                              rstd: a.rstd1, rows: T, features: H, eps: c.layerNormEps)
            Linear.forward(x: a.hidden1, weight: w[o.intermediateWeight], bias: lean ? nil : w[o.intermediateBias],
                           y: a.intermediate, rows: T, inFeatures: H, outFeatures: I)
            if lean {
                activation.forward(a.intermediate, bias: w[o.intermediateBias], ws.tempI, rows: T, features: I)
            } else {
                activation.forward(a.intermediate, ws.tempI, count: T * I)
            }
            Linear.forward(x: ws.tempI, weight: w[o.outputWeight], bias: lean ? nil : w[o.outputBias], y: ws.tempH,
                           rows: T, inFeatures: I, outFeatures: H)
            residual(ws.tempH, bias: o.outputBias, a.hidden1, a.residual2, site: DropoutStreams.outputSite(layer: l))
            LayerNorm.forward(x: a.residual2, gamma: w[o.norm2Weight], beta: w[o.norm2Bias], y: a.output, mean: a.mean2,
                              rstd: a.rstd2, rows: T, features: H, eps: c.layerNormEps)
            x = UnsafePointer(a.output)
        }

        if pooler {
            guard let (poolerWeight, poolerBias) = self.pooler else { preconditionFailure("the layout has no pooler") }
            Rows.gather(ws.sequenceOutput, rows: (0..<B).map { $0 * S }, width: H, into: ws.poolerInput)
            Linear.forward(x: ws.poolerInput, weight: w[poolerWeight], bias: w[poolerBias], y: ws.poolerDense,
                           rows: B, inFeatures: H, outFeatures: H)
            Activation.tanh.forward(ws.poolerDense, ws.pooled, count: B * H)
        }
    }

    /// Backward of `forward` with the same `dropout`. Reads the sequence-output gradient from `ws.dHidden` (and,
    /// with `pooler`, the pooled gradient from `ws.dPooled`); accumulates every parameter gradient into `g`.
    func backward(_ w: FlatBuffer, _ g: FlatBuffer, _ ws: EncoderWorkspace, dropout: DropoutStreams?, pooler: Bool) {
        let c = config, B = ws.batch, S = ws.seqLength, T = B * S, H = c.hiddenSize, I = c.intermediateSize
        let A = c.numAttentionHeads, pHidden = dropout == nil ? 0 : c.hiddenDropoutProb
        let pAttention = dropout == nil ? 0 : c.attentionProbsDropoutProb
        let streams = dropout ?? DropoutStreams(seed: 0, step: 0)
        let dx = ws.dHidden

        if pooler {
            guard let (poolerWeight, poolerBias) = self.pooler else { preconditionFailure("the layout has no pooler") }
            Activation.tanh.backward(ws.dPooled, x: ws.poolerDense, ws.dPooled, count: B * H)
            Linear.backward(dy: ws.dPooled, x: ws.poolerInput, weight: w[poolerWeight], dx: ws.tempH,
                            dWeight: g[poolerWeight], dBias: g[poolerBias], rows: B, inFeatures: H, outFeatures: H)
            Rows.scatterAdd(ws.tempH, rows: (0..<B).map { $0 * S }, width: H, into: dx)
        }

        for l in stride(from: layers.count - 1, through: 0, by: -1) {
            let o = layers[l], a = ws.layers[l]
            let x = l == 0 ? ws.embeddingOutput : ws.layers[l - 1].output
            // LayerNorm 2; the residual carries dx to hidden1, dropout carries it to the output dense.
            LayerNorm.backward(dy: dx, x: a.residual2, gamma: w[o.norm2Weight], mean: a.mean2, rstd: a.rstd2, dx: dx,
                               dGamma: g[o.norm2Weight], dBeta: g[o.norm2Bias], rows: T, features: H, scratch: ws.normScratch)
            Dropout.backward(dx, ws.tempH, count: T * H, probability: pHidden,
                             rng: streams.rng(site: DropoutStreams.outputSite(layer: l)))
            // The activation's output is recomputed rather than kept per layer (with its derivative, in one pass).
            activation.valueAndDerivative(a.intermediate, ws.tempI, ws.derivativeI, count: T * I)
            Linear.backward(dy: ws.tempH, x: ws.tempI, weight: w[o.outputWeight], dx: ws.tempI, dWeight: g[o.outputWeight],
                            dBias: g[o.outputBias], rows: T, inFeatures: I, outFeatures: H)
            Activation.backward(ws.tempI, derivative: ws.derivativeI, ws.tempI, count: T * I)
            Linear.backward(dy: ws.tempI, x: a.hidden1, weight: w[o.intermediateWeight], dx: dx,
                            dWeight: g[o.intermediateWeight], dBias: g[o.intermediateBias], rows: T, inFeatures: H,
                            outFeatures: I, accumulateInput: true)
            // LayerNorm 1; the residual carries dx to the layer input, dropout to the attention output dense.
            LayerNorm.backward(dy: dx, x: a.residual1, gamma: w[o.norm1Weight], mean: a.mean1, rstd: a.rstd1, dx: dx,
                               dGamma: g[o.norm1Weight], dBeta: g[o.norm1Bias], rows: T, features: H, scratch: ws.normScratch)
            Dropout.backward(dx, ws.tempH, count: T * H, probability: pHidden,
                             rng: streams.rng(site: DropoutStreams.attentionOutputSite(layer: l)))
            Linear.backward(dy: ws.tempH, x: a.context, weight: w[o.attentionOutWeight], dx: ws.dContext,
                            dWeight: g[o.attentionOutWeight], dBias: g[o.attentionOutBias], rows: T, inFeatures: H, outFeatures: H)
            Attention.backward(dContext: ws.dContext, qkv: a.qkv, probs: a.probs, dQKV: ws.dQKV, batch: B, seqLength: S,
                               heads: A, headSize: c.headSize, dropout: pAttention,
                               rng: streams.rng(site: DropoutStreams.attentionSite(layer: l)), scratch: ws.attentionScratch)
            Linear.backward(dy: ws.dQKV, x: x, weight: w[o.qkvWeight], dx: dx, dWeight: g[o.qkvWeight], dBias: g[o.qkvBias],
                            rows: T, inFeatures: H, outFeatures: 3 * H, accumulateInput: true)
        }

        Dropout.backward(dx, dx, count: T * H, probability: pHidden, rng: streams.rng(site: DropoutStreams.embeddingSite))
        LayerNorm.backward(dy: dx, x: ws.embeddingSum, gamma: w[normWeight], mean: ws.embeddingMean, rstd: ws.embeddingRstd,
                           dx: dx, dGamma: g[normWeight], dBeta: g[normBias], rows: T, features: H, scratch: ws.normScratch)
        Embedding.backward(dOut: dx, ids: ws.ids, segments: ws.segments, dWord: g[word], dPosition: g[position],
                           dTokenType: g[tokenType], batch: B, seqLength: S, hidden: H, paddingId: c.padTokenId.map(Int32.init))
    }
}
