import BERTKernels

// The encoder's activations for one (B, S, N) shape. T = B·S tokens, H hidden, I intermediate, A heads, N sequences a
// row can hold (the pooler runs on up to B·N [CLS] rows).

/// What one layer keeps for its backward.
struct LayerActivations {
    var qkv: DeviceFloats        // [T, 3H] fused q | k | v projection
    var probs: DeviceFloats      // [B, A, S, S] attention probabilities (before dropout)
    var context: DeviceFloats    // [T, H] attention output, heads side by side
    var residual1: DeviceFloats  // [T, H] x + dropout(attention dense) — LayerNorm 1's input
    var mean1: DeviceFloats      // [T]
    var rstd1: DeviceFloats      // [T]
    var hidden1: DeviceFloats    // [T, H] LayerNorm 1's output
    var intermediate: DeviceFloats // [T, I] before the activation (recomputed after it in backward); training only
    var residual2: DeviceFloats  // [T, H] hidden1 + dropout(output dense) — LayerNorm 2's input
    var mean2: DeviceFloats      // [T]
    var rstd2: DeviceFloats      // [T]
    var output: DeviceFloats     // [T, H] the layer's output, the next layer's input
}

/// All encoder buffers for one shape, planned once. An inference workspace (`training` false) keeps nothing for a
/// backward: every layer writes the same `LayerActivations` (a layer's input is dead once its first residual is
/// formed), the FFN activation runs in place, attention probabilities stay in per-thread scratch tiles, and the
/// gradient buffers are empty. For MiniLM at 384 × 32 that is 0.27 GB (`bert bench`'s activation_mb) instead of
/// 3.2 GB.
final class EncoderWorkspace {
    let batch: Int, seqLength: Int
    /// Whether the activations a backward needs are kept.
    let training: Bool
    /// Activation checkpointing: only each layer's output is kept; every layer's other activations share one set,
    /// which the backward refills by running the layer's forward again (`BertEncoder.backward`).
    let checkpointed: Bool
    let storage: DeviceBuffer
    let ids: DeviceInts          // [T]
    let segments: DeviceInts     // [T]
    let clsRows: DeviceInts      // [≤ B·N] the token row of each sequence's [CLS] (the pooler's input)
    let keyBias: DeviceFloats     // [B, S] 0 or −10000
    let positions: DeviceInts    // [T] packed rows' position ids
    let keyRanges: DeviceInts    // [T, 2] packed rows' visible keys per query
    /// Whether `positions` and `keyRanges` hold this batch's (packed rows); otherwise position s and every key.
    var packed = false
    /// The [CLS] rows in `clsRows` this batch uses: B for one sequence per row, the weighted NSP slots when packed.
    var poolerRows: Int
    let embeddingSum: DeviceFloats // [T, H] word + position + type, LayerNorm's input
    let embeddingMean: DeviceFloats, embeddingRstd: DeviceFloats // [T]
    let embeddingOutput: DeviceFloats // [T, H] layer 0's input
    let layers: [LayerActivations]
    // Pooler: [CLS] rows → dense → tanh.
    let poolerInput: DeviceFloats   // [poolerRows, H]
    let poolerDense: DeviceFloats   // [poolerRows, H]
    let pooled: DeviceFloats        // [poolerRows, H]
    // Backward and temporaries.
    let dHidden: DeviceFloats   // [T, H] gradient flowing down through the layers
    let dPooled: DeviceFloats   // [poolerRows, H]
    let tempH: DeviceFloats     // [T, H]
    let tempI: DeviceFloats     // [T, I]
    let derivativeI: DeviceFloats // [T, I] the activation's derivative during the FFN backward
    let dContext: DeviceFloats  // [T, H]
    let dQKV: DeviceFloats      // [T, 3H]
    let attentionScratch: DeviceFloats
    let normScratch: DeviceFloats // what the backend's LayerNorm backward needs

    /// The last layer's output `[T, H]` (the sequence output).
    var sequenceOutput: DeviceFloats { layers.last?.output ?? embeddingOutput }

    init(config c: BertConfig, batch B: Int, seqLength S: Int, sequencesPerRow N: Int = 1, training: Bool = true,
         checkpointed: Bool = false, backend: any Backend) {
        let T = B * S, H = c.hiddenSize, I = c.intermediateSize, A = c.numAttentionHeads, BN = B * N
        batch = B
        poolerRows = B
        seqLength = S
        self.training = training
        self.checkpointed = training && checkpointed
        let separateSets = training && !checkpointed   // one full set per layer
        let g = training ? 1 : 0   // gradient buffers only for training
        typealias P = DeviceFloats
        struct Planned {
            var ids: DeviceInts, segments: DeviceInts, clsRows: DeviceInts, keyBias: P, positions: DeviceInts, keyRanges: DeviceInts
            var embeddingSum: P, embeddingMean: P, embeddingRstd: P, embeddingOutput: P
            var layers: [LayerActivations], poolerInput: P, poolerDense: P, pooled: P
            var dHidden: P, dPooled: P, tempH: P, tempI: P, derivativeI: P, dContext: P, dQKV: P, attentionScratch: P, normScratch: P
        }
        let (p, storage) = Arena.plan(on: backend) { arena -> Planned in
            Planned(ids: arena.takeInts(T), segments: arena.takeInts(T), clsRows: arena.takeInts(BN), keyBias: arena.take(T),
                    positions: arena.takeInts(T), keyRanges: arena.takeInts(2 * T), embeddingSum: arena.take(T * H),
                    embeddingMean: arena.take(T), embeddingRstd: arena.take(T), embeddingOutput: arena.take(T * H),
                    layers: {
                        let planned = (0..<(separateSets ? c.numHiddenLayers : 1)).map { _ in
                            LayerActivations(qkv: arena.take(T * 3 * H), probs: arena.take(g * B * A * S * S),
                                             context: arena.take(T * H), residual1: arena.take(T * H),
                                             mean1: arena.take(T), rstd1: arena.take(T), hidden1: arena.take(T * H),
                                             intermediate: arena.take(g * T * I), residual2: arena.take(T * H),
                                             mean2: arena.take(T), rstd2: arena.take(T), output: arena.take(T * H))
                        }
                        if separateSets { return planned }
                        guard training else { return Array(repeating: planned[0], count: c.numHiddenLayers) }
                        // Checkpointed: the shared set, each layer with an output of its own (the next layer's input).
                        return (0..<c.numHiddenLayers).map { l in
                            var layer = planned[0]
                            if l > 0 { layer.output = arena.take(T * H) }
                            return layer
                        }
                    }(),
                    poolerInput: arena.take(BN * H), poolerDense: arena.take(BN * H), pooled: arena.take(BN * H),
                    dHidden: arena.take(g * T * H), dPooled: arena.take(g * BN * H), tempH: arena.take(T * H),
                    tempI: arena.take(T * I), derivativeI: arena.take(g * T * I), dContext: arena.take(g * T * H),
                    dQKV: arena.take(g * T * 3 * H),
                    attentionScratch: arena.take(backend.attentionScratchCount(batch: B, seqLength: S, heads: A)),
                    normScratch: arena.take(backend.layerNormScratchCount(features: H)))
        }
        self.storage = storage
        ids = p.ids
        segments = p.segments
        clsRows = p.clsRows
        keyBias = p.keyBias
        positions = p.positions
        keyRanges = p.keyRanges
        embeddingSum = p.embeddingSum
        embeddingMean = p.embeddingMean
        embeddingRstd = p.embeddingRstd
        embeddingOutput = p.embeddingOutput
        layers = p.layers
        poolerInput = p.poolerInput
        poolerDense = p.poolerDense
        pooled = p.pooled
        dHidden = p.dHidden
        dPooled = p.dPooled
        tempH = p.tempH
        tempI = p.tempI
        derivativeI = p.derivativeI
        dContext = p.dContext
        dQKV = p.dQKV
        attentionScratch = p.attentionScratch
        normScratch = p.normScratch
    }
}
