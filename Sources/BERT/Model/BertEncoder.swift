import BERTKernels

// BERT's encoder (HF `BertModel`: embeddings, post-LayerNorm transformer layers, tanh pooler), forward and backward
// over the flat parameter buffer. Mirrors transformers' models/bert/modeling_bert.py.
// Shapes: B batch, S sequence, T = B·S, H hidden, I intermediate, A heads, D = H/A.

struct BertEncoder {
    let config: BertConfig
    let activation: Activation
    let backend: any Backend
    let p: EncoderParameters

    var hasPooler: Bool { p.pooler != nil }

    init(config: BertConfig, layout: ParameterLayout, backend: any Backend) throws {
        self.config = config
        activation = try config.activation()
        self.backend = backend
        p = layout.encoder
    }

    /// Runs the encoder on the ids already copied into `ws` (and the key bias built from the mask, and for packed rows
    /// the position ids and key ranges); with `pooler`, also the pooler on the `ws.poolerRows` [CLS] rows (which the
    /// layout must have). `dropout` nil means evaluation (no dropout).
    func forward(_ w: DeviceBuffer, _ ws: EncoderWorkspace, dropout: DropoutStreams?, pooler: Bool) {
        let c = config, B = ws.batch, S = ws.seqLength, T = B * S, H = c.hiddenSize
        let pHidden = dropout == nil ? 0 : c.hiddenDropoutProb, pAttention = dropout == nil ? 0 : c.attentionProbsDropoutProb
        let streams = dropout ?? DropoutStreams(seed: 0, step: 0)

        let k = backend, P = ws.poolerRows
        k.embeddingForward(ids: ws.ids, segments: ws.segments, positions: ws.packed ? ws.positions : nil, word: w[p.word],
                           position: w[p.position], tokenType: w[p.tokenType], out: ws.embeddingSum, batch: B, seqLength: S,
                           hidden: H)
        k.layerNormForward(x: ws.embeddingSum, gamma: w[p.norm.gamma], beta: w[p.norm.beta], y: ws.embeddingOutput,
                           mean: ws.embeddingMean, rstd: ws.embeddingRstd, rows: T, features: H, eps: c.layerNormEps)
        k.dropoutForward(ws.embeddingOutput, residual: nil, ws.embeddingOutput, count: T * H,
                         layout: streams.tokenLayout(S: S, H: H), probability: pHidden,
                         rng: streams.rng(site: DropoutStreams.embeddingSite))

        var x = ws.embeddingOutput
        for (l, a) in ws.layers.enumerated() {
            layerForward(l, x, a, w, ws, streams: streams, pHidden: pHidden, pAttention: pAttention)
            x = a.output
        }

        if pooler {
            guard let pooler = p.pooler else { preconditionFailure("the layout has no pooler") }
            k.gatherRows(ws.sequenceOutput, indices: ws.clsRows, count: P, width: H, into: ws.poolerInput)
            k.linearForward(x: ws.poolerInput, weight: w[pooler.weight], bias: w[pooler.bias], y: ws.poolerDense,
                            rows: P, inFeatures: H, outFeatures: H)
            k.activationForward(.tanh, ws.poolerDense, bias: nil, ws.pooled, rows: P, features: H)
        }
    }

    /// Layer `l` on input `x` (`[T, H]`), writing `a`; the same bits every time it runs on the same input, which
    /// activation checkpointing relies on when the backward runs it again.
    private func layerForward(_ l: Int, _ x: DeviceFloats, _ a: LayerActivations, _ w: DeviceBuffer, _ ws: EncoderWorkspace,
                              streams: DropoutStreams, pHidden: Float, pAttention: Float) {
        let c = config, B = ws.batch, S = ws.seqLength, T = B * S, H = c.hiddenSize, I = c.intermediateSize
        let o = p.layers[l], k = backend
        // Inference keeps no activations for a backward, so the biases of the FFN and of the two projections feeding
        // a residual are added by the pass that follows (the activation, the residual add) instead of being copied
        // into the GEMM's output first; training keeps the biased pre-activation its backward reads.
        let lean = !ws.training
        /// The residual connection after a projection: `out = residual + dropout(projected [+ bias])`.
        func residual(_ projected: DeviceFloats, bias: Int, _ x: DeviceFloats, _ out: DeviceFloats, site: Int) {
            if lean {
                k.addBias(projected, bias: w[bias], residual: x, out, rows: T, outFeatures: H)
            } else {
                k.dropoutForward(projected, residual: x, out, count: T * H, layout: streams.tokenLayout(S: S, H: H),
                                 probability: pHidden, rng: streams.rng(site: site))
            }
        }

        k.linearForward(x: x, weight: w[o.qkv.weight], bias: w[o.qkv.bias], y: a.qkv, rows: T, inFeatures: H, outFeatures: 3 * H)
        k.attentionForward(qkv: a.qkv, keyBias: ws.keyBias, keyRanges: ws.packed ? ws.keyRanges : nil,
                           probs: lean ? nil : a.probs, context: a.context, batch: B, seqLength: S,
                           heads: c.numAttentionHeads, headSize: c.headSize, dropout: pAttention,
                           rng: streams.rng(site: DropoutStreams.attentionSite(layer: l)),
                           streamLength: streams.streamLength(S), scratch: ws.attentionScratch)
        k.linearForward(x: a.context, weight: w[o.attentionOutput.weight], bias: lean ? nil : w[o.attentionOutput.bias],
                        y: ws.tempH, rows: T, inFeatures: H, outFeatures: H)
        residual(ws.tempH, bias: o.attentionOutput.bias, x, a.residual1, site: DropoutStreams.attentionOutputSite(layer: l))
        k.layerNormForward(x: a.residual1, gamma: w[o.norm1.gamma], beta: w[o.norm1.beta], y: a.hidden1, mean: a.mean1,
                           rstd: a.rstd1, rows: T, features: H, eps: c.layerNormEps)
        // Inference has no `intermediate` to keep (`EncoderWorkspace`): the activation runs in place.
        let preActivation = lean ? ws.tempI : a.intermediate
        k.linearForward(x: a.hidden1, weight: w[o.intermediate.weight], bias: lean ? nil : w[o.intermediate.bias],
                        y: preActivation, rows: T, inFeatures: H, outFeatures: I)
        k.activationForward(activation, preActivation, bias: lean ? w[o.intermediate.bias] : nil, ws.tempI, rows: T, features: I)
        k.linearForward(x: ws.tempI, weight: w[o.output.weight], bias: lean ? nil : w[o.output.bias], y: ws.tempH,
                        rows: T, inFeatures: I, outFeatures: H)
        residual(ws.tempH, bias: o.output.bias, a.hidden1, a.residual2, site: DropoutStreams.outputSite(layer: l))
        k.layerNormForward(x: a.residual2, gamma: w[o.norm2.gamma], beta: w[o.norm2.beta], y: a.output, mean: a.mean2,
                           rstd: a.rstd2, rows: T, features: H, eps: c.layerNormEps)
    }

    /// Backward of `forward` with the same `dropout`. Reads the sequence-output gradient from `ws.dHidden` (and,
    /// with `pooler`, the pooled gradient from `ws.dPooled`); accumulates every parameter gradient into `g`.
    func backward(_ w: DeviceBuffer, _ g: DeviceBuffer, _ ws: EncoderWorkspace, dropout: DropoutStreams?, pooler: Bool) {
        let c = config, B = ws.batch, S = ws.seqLength, T = B * S, H = c.hiddenSize, I = c.intermediateSize
        let A = c.numAttentionHeads, pHidden = dropout == nil ? 0 : c.hiddenDropoutProb
        let pAttention = dropout == nil ? 0 : c.attentionProbsDropoutProb
        let streams = dropout ?? DropoutStreams(seed: 0, step: 0)
        let dx = ws.dHidden, k = backend, P = ws.poolerRows, tokens = streams.tokenLayout(S: S, H: H)
        let sequences = dropout?.sequenceRows(S)   // with a stream length, sums over tokens a trimmed batch keeps

        if pooler {
            guard let pooler = p.pooler else { preconditionFailure("the layout has no pooler") }
            k.activationBackward(.tanh, ws.dPooled, x: ws.poolerDense, ws.dPooled, count: P * H)
            k.linearBackward(dy: ws.dPooled, x: ws.poolerInput, weight: w[pooler.weight], dx: ws.tempH,
                             dWeight: g[pooler.weight], dBias: g[pooler.bias], rows: P, inFeatures: H, outFeatures: H,
                             accumulateInput: false)
            k.scatterAddRows(ws.tempH, indices: ws.clsRows, count: P, width: H, into: dx)
        }

        for l in stride(from: p.layers.count - 1, through: 0, by: -1) {
            let o = p.layers[l], a = ws.layers[l]
            let x = l == 0 ? ws.embeddingOutput : ws.layers[l - 1].output
            if ws.checkpointed {   // refill the shared activations from the kept input (the temporaries are free here)
                layerForward(l, x, a, w, ws, streams: streams, pHidden: pHidden, pAttention: pAttention)
            }
            // LayerNorm 2; the residual carries dx to hidden1, dropout carries it to the output dense.
            k.layerNormBackward(dy: dx, x: a.residual2, gamma: w[o.norm2.gamma], mean: a.mean2, rstd: a.rstd2, dx: dx,
                                dGamma: g[o.norm2.gamma], dBeta: g[o.norm2.beta], rows: T, features: H,
                                scratch: ws.normScratch, sequences: sequences)
            k.dropoutBackward(dx, ws.tempH, count: T * H, layout: tokens, probability: pHidden,
                              rng: streams.rng(site: DropoutStreams.outputSite(layer: l)))
            // The activation's output is recomputed rather than kept per layer (with its derivative, in one pass).
            k.activationValueAndDerivative(activation, a.intermediate, ws.tempI, ws.derivativeI, count: T * I)
            k.linearBackward(dy: ws.tempH, x: ws.tempI, weight: w[o.output.weight], dx: ws.tempI,
                             dWeight: g[o.output.weight], dBias: g[o.output.bias], rows: T, inFeatures: I, outFeatures: H,
                             accumulateInput: false, sequences: sequences)
            k.activationBackward(ws.tempI, derivative: ws.derivativeI, ws.tempI, count: T * I)
            k.linearBackward(dy: ws.tempI, x: a.hidden1, weight: w[o.intermediate.weight], dx: dx,
                             dWeight: g[o.intermediate.weight], dBias: g[o.intermediate.bias], rows: T, inFeatures: H,
                             outFeatures: I, accumulateInput: true, sequences: sequences)
            // LayerNorm 1; the residual carries dx to the layer input, dropout to the attention output dense.
            k.layerNormBackward(dy: dx, x: a.residual1, gamma: w[o.norm1.gamma], mean: a.mean1, rstd: a.rstd1, dx: dx,
                                dGamma: g[o.norm1.gamma], dBeta: g[o.norm1.beta], rows: T, features: H,
                                scratch: ws.normScratch, sequences: sequences)
            k.dropoutBackward(dx, ws.tempH, count: T * H, layout: tokens, probability: pHidden,
                              rng: streams.rng(site: DropoutStreams.attentionOutputSite(layer: l)))
            k.linearBackward(dy: ws.tempH, x: a.context, weight: w[o.attentionOutput.weight], dx: ws.dContext,
                             dWeight: g[o.attentionOutput.weight], dBias: g[o.attentionOutput.bias], rows: T,
                             inFeatures: H, outFeatures: H, accumulateInput: false, sequences: sequences)
            k.attentionBackward(dContext: ws.dContext, qkv: a.qkv, probs: a.probs, dQKV: ws.dQKV, batch: B, seqLength: S,
                                heads: A, headSize: c.headSize, dropout: pAttention,
                                rng: streams.rng(site: DropoutStreams.attentionSite(layer: l)),
                                streamLength: streams.streamLength(S), scratch: ws.attentionScratch)
            k.linearBackward(dy: ws.dQKV, x: x, weight: w[o.qkv.weight], dx: dx, dWeight: g[o.qkv.weight],
                             dBias: g[o.qkv.bias], rows: T, inFeatures: H, outFeatures: 3 * H, accumulateInput: true, sequences: sequences)
        }

        k.dropoutBackward(dx, dx, count: T * H, layout: tokens, probability: pHidden,
                          rng: streams.rng(site: DropoutStreams.embeddingSite))
        k.layerNormBackward(dy: dx, x: ws.embeddingSum, gamma: w[p.norm.gamma], mean: ws.embeddingMean,
                            rstd: ws.embeddingRstd, dx: dx, dGamma: g[p.norm.gamma], dBeta: g[p.norm.beta], rows: T,
                            features: H, scratch: ws.normScratch, sequences: sequences)
        k.embeddingBackward(dOut: dx, ids: ws.ids, segments: ws.segments, positions: ws.packed ? ws.positions : nil,
                            dWord: g[p.word], dPosition: g[p.position], dTokenType: g[p.tokenType], batch: B,
                            seqLength: S, hidden: H, paddingId: c.padTokenId.map(Int32.init))
    }
}
