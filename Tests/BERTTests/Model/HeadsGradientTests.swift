import Testing
@testable import BERT

/// The QA and classification backwards against finite differences with dropout on (the classifier's own dropout
/// included), the QA loss's clamped and ignored positions, and the errors that name a bad batch.
@Suite struct HeadsGradientTests {
    /// No padding id: the QA loss reaches the padded positions (HF does not mask their logits), so with HF's
    /// `padding_idx` the padding row's gradient would be dropped on purpose, not the derivative.
    static let config = BertConfig(vocabSize: 37, hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 2,
                                   intermediateSize: 24, hiddenAct: "gelu_new", hiddenDropoutProb: 0.1,
                                   attentionProbsDropoutProb: 0.1, maxPositionEmbeddings: 8, initializerRange: 0.3,
                                   padTokenId: nil, classifierDropout: 0.2)
    static let (B, S) = (3, 6)
    static let ids: [Int32] = [2, 7, 9, 3, 11, 3, 2, 30, 3, 12, 0, 0, 2, 5, 3, 6, 8, 3]
    static let segments: [Int32] = [0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1]
    static let mask: [Int32] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1]

    /// Row 1's start and row 2's end are past the window (ignored); row 2's start is negative (clamped to 0).
    static func qaBatch(start: [Int32] = [1, 6, -1], end: [Int32] = [2, 4, 9]) -> QuestionAnsweringBatch {
        QuestionAnsweringBatch(batchSize: B, seqLength: S, inputIds: ids, segmentIds: segments, inputMask: mask,
                               targets: AnswerSpans(startPositions: start, endPositions: end))
    }

    static let classificationBatch = ClassificationBatch(batchSize: B, seqLength: S, inputIds: ids, segmentIds: segments,
                                                         inputMask: mask, targets: [2, 0, 1])

    @Test func questionAnsweringBackwardMatchesFiniteDifferencesWithDropout() throws {
        let model = try BertForQuestionAnswering(config: Self.config, seed: 7)
        let dropout = DropoutStreams(seed: 99, step: 3)
        let losses = try #require(try model.forward(Self.qaBatch(), dropout: dropout))
        #expect(losses.startCount == 2 && losses.endCount == 2)
        try expectFiniteDifferences(model, [
            "bert.embeddings.word_embeddings.weight", "bert.embeddings.LayerNorm.weight",
            "bert.encoder.layer.0.attention.self.query.weight", "bert.encoder.layer.0.attention.self.value.bias",
            "bert.encoder.layer.1.intermediate.dense.weight", "bert.encoder.layer.1.output.LayerNorm.weight",
            "qa_outputs.weight",
        ]) { try model.forward(Self.qaBatch(), dropout: dropout)!.loss }
    }

    @Test func classificationBackwardMatchesFiniteDifferencesWithDropout() throws {
        let model = try BertForSequenceClassification(config: Self.config, labels: 3, seed: 7)
        let dropout = DropoutStreams(seed: 99, step: 3)
        try expectFiniteDifferences(model, [
            "bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
            "bert.encoder.layer.0.attention.self.key.weight", "bert.encoder.layer.1.attention.output.dense.weight",
            "bert.encoder.layer.1.output.LayerNorm.bias", "bert.pooler.dense.weight", "bert.pooler.dense.bias",
            "classifier.weight", "classifier.bias",
        ]) { try model.forward(Self.classificationBatch, dropout: dropout)!.loss }
    }

    /// Two backwards after one forward accumulate the same gradient twice (the heads keep their forward values).
    @Test func backwardTwiceAccumulatesTwice() throws {
        let qa = try BertForQuestionAnswering(config: Self.config, seed: 7)
        _ = try qa.forward(Self.qaBatch(), dropout: DropoutStreams(seed: 5, step: 1))
        let classifier = try BertForSequenceClassification(config: Self.config, labels: 3, seed: 7)
        _ = try classifier.forward(Self.classificationBatch, dropout: DropoutStreams(seed: 5, step: 1))
        for model in [qa, classifier] as [BertModelBase] {
            model.zeroGradients()
            model.backward()
            let once = model.gradients.array()
            model.backward()
            expectClose("\(model.architecture) gradients", model.gradients.array(), once.map { 2 * $0 }, tolerance: 1e-6)
        }
    }

    /// A row whose positions are both past the window adds nothing: the loss and the head's gradient are those of the
    /// batch without it (rows pass through the encoder independently).
    @Test func ignoredRowsLeaveTheQuestionAnsweringLoss() throws {
        let model = try BertForQuestionAnswering(config: Self.config, seed: 7)
        let full = try #require(try model.forward(Self.qaBatch(start: [1, 6, 3], end: [2, 100, 4])))
        model.zeroGradients()
        model.backward()
        let weight = model.layout["qa_outputs.weight"]
        let gradient = model.gradients.array(offset: weight.offset, count: weight.count)
        let kept = [0, 2].flatMap { Array($0 * Self.S..<($0 + 1) * Self.S) }
        let two = QuestionAnsweringBatch(batchSize: 2, seqLength: Self.S, inputIds: kept.map { Self.ids[$0] },
                                         segmentIds: kept.map { Self.segments[$0] }, inputMask: kept.map { Self.mask[$0] },
                                         targets: AnswerSpans(startPositions: [1, 3], endPositions: [2, 4]))
        let reduced = try #require(try model.forward(two))
        model.zeroGradients()
        model.backward()
        #expect(full.startCount == 2 && full.endCount == 2)
        expectClose("loss", [full.loss], [reduced.loss], tolerance: 1e-6)
        expectClose("qa_outputs.weight gradient", gradient, model.gradients.array(offset: weight.offset, count: weight.count), tolerance: 1e-5)
    }

    /// The classifier's dropout is on only in training, and it is the config's `classifier_dropout`.
    @Test func classifierDropoutIsSeededAndOnlyInTraining() throws {
        var config = Self.config
        (config.hiddenDropoutProb, config.attentionProbsDropoutProb, config.classifierDropout) = (0, 0, 0.5)
        let model = try BertForSequenceClassification(config: config, labels: 3, seed: 7)
        let a = try model.forward(Self.classificationBatch, dropout: DropoutStreams(seed: 1, step: 0))!.loss
        let b = try model.forward(Self.classificationBatch, dropout: DropoutStreams(seed: 1, step: 0))!.loss
        let c = try model.forward(Self.classificationBatch, dropout: DropoutStreams(seed: 1, step: 1))!.loss
        let e1 = try model.forward(Self.classificationBatch)!.loss, e2 = try model.forward(Self.classificationBatch)!.loss
        #expect(a == b && a != c && e1 == e2 && e1 != a)
    }

    @Test func badBatchesAreNamed() throws {
        let qa = try BertForQuestionAnswering(config: Self.config)
        var batch = Self.qaBatch(start: [1, 2], end: [1, 2])
        #expect(throws: BertError.invalidInput("start_positions and end_positions must hold B = 3 positions each")) {
            try qa.forward(batch)
        }
        batch = Self.qaBatch()
        batch.segmentIds[0] = 2
        #expect(throws: BertError.invalidInput("segment_ids holds 2, outside [0, 2)")) { try qa.forward(batch) }

        let classifier = try BertForSequenceClassification(config: Self.config, labels: 3)
        var labelled = Self.classificationBatch
        labelled.targets = [0, 3, 1]
        #expect(throws: BertError.invalidInput("labels holds 3, outside [0, 3)")) { try classifier.forward(labelled) }
        labelled.inputIds.removeLast()
        labelled.targets = nil
        #expect(throws: BertError.invalidInput("input_ids, segment_ids and input_mask must each hold B·S = 3·6 ids")) {
            try classifier.forward(labelled)
        }
        #expect(throws: BertError.invalidConfig("num_labels 1: single-label classification needs two or more (one is HF's regression)")) {
            try BertForSequenceClassification(config: Self.config, labels: 1)
        }
    }
}
