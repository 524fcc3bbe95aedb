import BERTKernels

/// BERT with its pre-training heads (HF `BertForPreTraining`): an explicit forward and backward, and activations
/// planned once per (B, S, P).
public final class BertForPreTraining: BertModelBase {
    /// A model with BERT's random initialisation from `seed`, its tensors and kernels on `backend`.
    /// `initialized` false skips the initialisation for a model that `load` fills (it draws what the file lacks).
    public init(config: BertConfig, seed: UInt64 = 12345, backend: any Backend = CPUBackend.shared,
                initialized: Bool = true) throws {
        try super.init(config: config, seed: seed, backend: backend, architecture: "BertForPreTraining",
                       layout: ParameterLayout.pretraining, heads: PretrainingHeads.init, initialized: initialized)
    }

    private var pretrainingHeads: PretrainingHeads { heads as! PretrainingHeads }

    /// Forward pass and losses. `dropout` nil is evaluation mode; otherwise dropout draws from those streams, and the
    /// matching `backward` regenerates the same masks. `training` false (evaluation only: no dropout, no `backward`
    /// after it) keeps nothing for a backward, as the task models' inference does: less memory written, the biases
    /// added in the passes that follow the GEMMs.
    /// - Throws: `BertError.invalidInput` naming the offending field when the batch does not fit the config.
    public func forward(_ batch: PretrainingBatch, dropout: DropoutStreams? = nil, training: Bool = true) throws -> PretrainingLosses {
        precondition(training || dropout == nil, "an evaluation forward runs without dropout")
        let sequences = try validateTargets(batch)
        let enc = try runEncoder(batch, dropout: dropout, training: training, sequences: sequences)
        return pretrainingHeads.forward(parameters, enc, batch: batch)
    }

    /// The last forward's MLM logits `[M, V]` (real vocabulary columns only), for inspection and tests.
    public func mlmLogits() -> [Float] {
        guard let hw = pretrainingHeads.workspace.value else { return [] }
        let V = config.vocabSize, V8 = config.paddedVocabSize
        let padded = backend.download(hw.logits, count: hw.maskedCount * V8)
        return (0..<hw.maskedCount).flatMap { m in padded[(m * V8)..<(m * V8 + V)] }
    }

    /// The last forward's NSP logits `[Q, 2]`, one row per sequence (per row unpacked; per weighted NSP slot, row-major,
    /// packed).
    public func nspLogits() -> [Float] {
        pretrainingHeads.workspace.value.map { backend.download($0.nspLogits, count: $0.sequences * 2) } ?? []
    }

    /// Checks the targets and the packed fields; returns what the encoder reads beyond the tokens.
    private func validateTargets(_ b: PretrainingBatch) throws -> SequenceLayout {
        let c = config
        if let bad = b.maskedLMIds.first(where: { $0 < 0 || Int($0) >= c.vocabSize }) {
            throw BertError.invalidInput("masked_lm_ids holds \(bad), outside the vocabulary [0, \(c.vocabSize))")
        }
        if let bad = b.maskedLMPositions.first(where: { $0 < 0 || Int($0) >= b.seqLength }) {
            throw BertError.invalidInput("masked_lm_positions holds \(bad), outside [0, \(b.seqLength))")
        }
        if let bad = b.nextSentenceLabels.first(where: { $0 != 0 && $0 != 1 }) {
            throw BertError.invalidInput("next_sentence_labels holds \(bad); labels are 0 or 1")
        }
        return try b.sequenceLayout(maxPositionEmbeddings: c.maxPositionEmbeddings)
    }
}
