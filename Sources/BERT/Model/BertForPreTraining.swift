import BERTKernels

/// BERT with its pre-training heads (HF `BertForPreTraining`): parameters and gradients in two flat buffers with
/// the same layout, an explicit forward and backward, and activations planned once per (B, S, P).
public final class BertForPreTraining {
    public let config: BertConfig
    public let layout: ParameterLayout
    public let parameters: FlatBuffer
    /// Accumulated by every `backward` until `zeroGradients()`.
    public let gradients: FlatBuffer
    let encoder: BertEncoder
    let heads: PretrainingHeads
    private var workspaces: (shape: [Int], encoder: EncoderWorkspace, heads: PretrainingWorkspace)?
    private var lastDropout: DropoutStreams?

    /// A model with BERT's random initialisation from `seed`.
    public init(config: BertConfig, seed: UInt64 = 12345) throws {
        try config.validate()
        self.config = config
        layout = .pretraining(config)
        parameters = FlatBuffer(count: layout.totalCount)
        gradients = FlatBuffer(count: layout.totalCount)
        encoder = try BertEncoder(config: config, layout: layout)
        heads = try PretrainingHeads(config: config, layout: layout)
        layout.initialize(parameters, config: config, seed: seed)
    }

    public func zeroGradients() { gradients.zero() }

    /// Forward pass and losses. `dropout` nil is evaluation mode; otherwise dropout draws from those streams, and the
    /// matching `backward` regenerates the same masks.
    /// - Throws: `BertError.invalidInput` naming the offending field when the batch does not fit the config.
    public func forward(_ batch: PretrainingBatch, dropout: DropoutStreams? = nil) throws -> PretrainingLosses {
        try validate(batch)
        let (enc, hw) = prepare(batch)
        lastDropout = dropout
        encoder.forward(parameters, enc, dropout: dropout, pooler: true)
        return heads.forward(parameters, enc, hw, batch: batch)
    }

    /// The encoder alone (HF `BertModel`'s `last_hidden_state`) in evaluation mode: `[B, S, H]`.
    /// - Parameters: `inputIds`, `segmentIds`, `inputMask` `[B, S]` row-major.
    public func encode(inputIds: [Int32], segmentIds: [Int32], inputMask: [Int32], batchSize: Int, seqLength: Int) throws -> [Float] {
        let batch = PretrainingBatch(batchSize: batchSize, seqLength: seqLength, maxPredictions: 1, inputIds: inputIds,
                                     segmentIds: segmentIds, inputMask: inputMask,
                                     maskedLMPositions: [Int32](repeating: 0, count: batchSize),
                                     maskedLMIds: [Int32](repeating: 0, count: batchSize),
                                     nextSentenceLabels: [Int32](repeating: 0, count: batchSize))
        try validate(batch)
        let (enc, _) = prepare(batch)
        encoder.forward(parameters, enc, dropout: nil, pooler: false)
        return sequenceOutput()
    }

    /// Backward of `lossScale · loss` for the last `forward`, accumulated into `gradients`.
    public func backward(lossScale: Float = 1) {
        guard let (_, enc, hw) = workspaces else { preconditionFailure("backward() before forward()") }
        heads.backward(parameters, gradients, enc, hw, scale: lossScale)
        encoder.backward(parameters, gradients, enc, dropout: lastDropout, pooler: true)
    }

    /// The last forward's MLM logits `[M, V]` (real vocabulary columns only), for inspection and tests.
    public func mlmLogits() -> [Float] {
        guard let (_, _, hw) = workspaces else { return [] }
        let V = config.vocabSize, V8 = config.paddedVocabSize
        return (0..<hw.rows.count).flatMap { m in Array(UnsafeBufferPointer(start: hw.logits + m * V8, count: V)) }
    }

    /// The last forward's NSP logits `[B, 2]`, sequence output `[B, S, H]` and pooled output `[B, H]`.
    public func nspLogits() -> [Float] { workspaces.map { Array(UnsafeBufferPointer(start: $0.heads.nspLogits, count: $0.encoder.batch * 2)) } ?? [] }
    public func sequenceOutput() -> [Float] {
        workspaces.map { w in Array(UnsafeBufferPointer(start: w.encoder.sequenceOutput, count: w.encoder.batch * w.encoder.seqLength * config.hiddenSize)) } ?? []
    }
    public func pooledOutput() -> [Float] {
        workspaces.map { Array(UnsafeBufferPointer(start: $0.encoder.pooled, count: $0.encoder.batch * config.hiddenSize)) } ?? []
    }

    /// Floats held by the activation arenas for the current shape.
    public var activationCount: Int { workspaces.map { $0.encoder.storage.count + $0.heads.storage.count } ?? 0 }

    /// The workspaces for the batch's shape (planned on first use of a shape), with its ids and mask copied in.
    private func prepare(_ batch: PretrainingBatch) -> (EncoderWorkspace, PretrainingWorkspace) {
        let shape = [batch.batchSize, batch.seqLength, batch.maxPredictions]
        if workspaces?.shape != shape {
            workspaces = nil   // release the old arenas before planning new ones
            workspaces = (shape, EncoderWorkspace(config: config, batch: batch.batchSize, seqLength: batch.seqLength),
                          PretrainingWorkspace(config: config, batch: batch.batchSize, maxPredictions: batch.maxPredictions))
        }
        let (_, enc, hw) = workspaces!
        batch.inputIds.withUnsafeBufferPointer { enc.ids.update(from: $0.baseAddress!, count: $0.count) }
        batch.segmentIds.withUnsafeBufferPointer { enc.segments.update(from: $0.baseAddress!, count: $0.count) }
        for t in 0..<(batch.batchSize * batch.seqLength) { enc.keyBias[t] = batch.inputMask[t] == 0 ? -10000 : 0 }
        return (enc, hw)
    }

    private func validate(_ b: PretrainingBatch) throws {
        let c = config
        guard b.seqLength <= c.maxPositionEmbeddings else {
            throw BertError.invalidInput("sequence length \(b.seqLength) exceeds max_position_embeddings \(c.maxPositionEmbeddings)")
        }
        if let bad = b.inputIds.first(where: { $0 < 0 || Int($0) >= c.vocabSize }) {
            throw BertError.invalidInput("input_ids holds \(bad), outside the vocabulary [0, \(c.vocabSize)): wrong vocab for this model?")
        }
        if let bad = b.segmentIds.first(where: { $0 < 0 || Int($0) >= c.typeVocabSize }) {
            throw BertError.invalidInput("segment_ids holds \(bad), outside [0, \(c.typeVocabSize))")
        }
        if let bad = b.maskedLMIds.first(where: { $0 < 0 || Int($0) >= c.vocabSize }) {
            throw BertError.invalidInput("masked_lm_ids holds \(bad), outside the vocabulary [0, \(c.vocabSize))")
        }
        if let bad = b.maskedLMPositions.first(where: { $0 < 0 || Int($0) >= b.seqLength }) {
            throw BertError.invalidInput("masked_lm_positions holds \(bad), outside [0, \(b.seqLength))")
        }
        if let bad = b.nextSentenceLabels.first(where: { $0 != 0 && $0 != 1 }) {
            throw BertError.invalidInput("next_sentence_labels holds \(bad); labels are 0 or 1")
        }
    }
}
