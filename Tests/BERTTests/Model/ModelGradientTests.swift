import Testing
@testable import BERT

/// The whole BertForPreTraining backward against finite differences, with dropout on: the backward must regenerate
/// every forward mask (embedding, attention probabilities, both residual branches) for these to agree.
@Suite struct ModelGradientTests {
    static let config = BertConfig(vocabSize: 37, hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 2,
                                   intermediateSize: 24, hiddenAct: "gelu_new", hiddenDropoutProb: 0.1,
                                   attentionProbsDropoutProb: 0.1, maxPositionEmbeddings: 8, initializerRange: 0.3)
    static let batch = PretrainingBatch(
        batchSize: 2, seqLength: 6, maxPredictions: 3,
        inputIds: [2, 7, 9, 3, 11, 3, 2, 30, 3, 12, 0, 0], segmentIds: [0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0],
        inputMask: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0], maskedLMPositions: [1, 4, 0, 2, 0, 0],
        maskedLMIds: [5, 20, 0, 36, 0, 0], nextSentenceLabels: [1, 0])

    @Test func backwardMatchesFiniteDifferencesWithDropout() throws {
        let model = try BertForPreTraining(config: Self.config, seed: 7)
        let dropout = DropoutStreams(seed: 99, step: 3)
        try expectFiniteDifferences(model, [
            "bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
            "bert.embeddings.LayerNorm.weight", "bert.encoder.layer.0.attention.self.query.weight",
            "bert.encoder.layer.0.attention.self.value.bias", "bert.encoder.layer.1.intermediate.dense.weight",
            "bert.encoder.layer.1.output.LayerNorm.bias", "bert.pooler.dense.weight",
            "cls.predictions.transform.dense.weight", "cls.predictions.bias", "cls.seq_relationship.weight",
        ]) { try model.forward(Self.batch, dropout: dropout).loss }
    }

    @Test func dropoutIsSeededAndEvaluationHasNone() throws {
        let model = try BertForPreTraining(config: Self.config, seed: 7)
        let a = try model.forward(Self.batch, dropout: DropoutStreams(seed: 1, step: 0)).loss
        let b = try model.forward(Self.batch, dropout: DropoutStreams(seed: 1, step: 0)).loss
        let c = try model.forward(Self.batch, dropout: DropoutStreams(seed: 1, step: 1)).loss
        let e1 = try model.forward(Self.batch).loss, e2 = try model.forward(Self.batch).loss
        #expect(a == b && a != c && e1 == e2 && e1 != a)
    }

    @Test func badInputsAreNamed() throws {
        let model = try BertForPreTraining(config: Self.config)
        var batch = Self.batch
        batch.inputIds[3] = 37
        #expect(throws: BertError.invalidInput("input_ids holds 37, outside the vocabulary [0, 37): wrong vocab for this model?")) {
            try model.forward(batch)
        }
        batch = Self.batch
        batch.maskedLMPositions[0] = 6
        #expect(throws: BertError.invalidInput("masked_lm_positions holds 6, outside [0, 6)")) { try model.forward(batch) }
    }
}
