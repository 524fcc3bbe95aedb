import BERTKernels
import Testing
@testable import BERT

/// BertForQuestionAnswering and BertForSequenceClassification against HF transformers (fixtures from
/// scripts/reference/heads.py, HF-saved checkpoints): logits, loss and the gradient of every parameter.
@Suite struct HeadsReferenceTests {
    /// The fixture's tokens as `[B, S]` arrays.
    static func tokens(_ io: Safetensors.File) throws -> (B: Int, S: Int, ids: [Int32], segments: [Int32], mask: [Int32]) {
        let shape = try io.entry("input_ids").shape
        return (shape[0], shape[1], try io.ints("input_ids"), try io.ints("segment_ids"), try io.ints("input_mask"))
    }

    static func qaBatch(_ io: Safetensors.File) throws -> QuestionAnsweringBatch {
        let t = try tokens(io)
        return QuestionAnsweringBatch(batchSize: t.B, seqLength: t.S, inputIds: t.ids, segmentIds: t.segments, inputMask: t.mask,
                                      targets: AnswerSpans(startPositions: try io.ints("start_positions"),
                                                           endPositions: try io.ints("end_positions")))
    }

    static func classificationBatch(_ io: Safetensors.File) throws -> ClassificationBatch {
        let t = try tokens(io)
        return ClassificationBatch(batchSize: t.B, seqLength: t.S, inputIds: t.ids, segmentIds: t.segments, inputMask: t.mask,
                                   targets: try io.ints("labels"))
    }

    /// Expects each output to match the fixture's tensor of its name to 1e-5 relative, then runs the backward from
    /// zeroed gradients.
    static func expectOutputsThenBackward(_ model: BertModelBase, _ io: Safetensors.File, _ outputs: [(String, [Float])],
                                          sourceLocation: SourceLocation = #_sourceLocation) throws {
        for (name, actual) in outputs {
            expectClose(name, actual, try io.floats(name), tolerance: 1e-5, sourceLocation: sourceLocation)
        }
        model.zeroGradients()
        model.backward()
    }

    @Test func questionAnsweringMatchesTransformers() throws {
        let dir = fixture("heads/qa")
        let (model, report) = try BertForQuestionAnswering.load(directory: dir)
        #expect(report.missing.isEmpty && report.skipped.isEmpty, "an HF-saved BertForQuestionAnswering loads whole")
        #expect(!model.layout.contains("bert.pooler.dense.weight"))
        let io = try Safetensors.File(path: dir + "/io.safetensors")
        let batch = try Self.qaBatch(io)
        #expect(batch.targets?.startPositions[1] == 0 && batch.targets?.endPositions[1] == 0, "row 1's answer is outside its window")
        let losses = try #require(try model.forward(batch))
        #expect(losses.startCount == 3 && losses.endCount == 3)

        try Self.expectOutputsThenBackward(model, io, [("sequence_output", model.sequenceOutput()), ("start_logits", model.startLogits()),
                                                      ("end_logits", model.endLogits()), ("loss", [losses.loss])])
        // Zero in exact arithmetic: the key bias (softmax ignores a per-row shift), and whatever shifts all of a row's
        // start or end logits alike (the head's bias, the last LayerNorm's β), which the softmax over positions ignores.
        let worst = try expectGradientsMatch(model, dir + "/grads.safetensors") {
            $0.hasSuffix("attention.self.key.bias") || $0 == "qa_outputs.bias" || $0 == "bert.encoder.layer.1.output.LayerNorm.bias"
        }
        print("qa: worst gradient \(worst.name) relative error \(worst.error)")
    }

    @Test func classificationMatchesTransformers() throws {
        let dir = fixture("heads/classification")
        let (model, report) = try BertForSequenceClassification.load(directory: dir)
        #expect(report.missing.isEmpty && report.skipped.isEmpty, "an HF-saved BertForSequenceClassification loads whole")
        #expect(model.labelCount == 3 && model.labelNames == ["LABEL_0", "LABEL_1", "LABEL_2"])
        let io = try Safetensors.File(path: dir + "/io.safetensors")
        let losses = try #require(try model.forward(try Self.classificationBatch(io)))
        #expect(losses.examples == 3)

        try Self.expectOutputsThenBackward(model, io, [("sequence_output", model.sequenceOutput()), ("pooled_output", model.pooledOutput()),
                                                      ("logits", model.logits()), ("loss", [losses.loss])])
        let worst = try expectGradientsMatch(model, dir + "/grads.safetensors") { $0.hasSuffix("attention.self.key.bias") }
        print("classification: worst gradient \(worst.name) relative error \(worst.error)")
    }

    /// Prediction: a batch without targets gives the same logits (to rounding) and no loss, from a workspace that keeps no activations
    /// for a backward (a fraction of the training one).
    @Test func batchesWithoutTargetsGiveLogitsOnly() throws {
        let (qa, _) = try BertForQuestionAnswering.load(directory: fixture("heads/qa"))
        try Self.expectSameLogitsWithoutTargets(qa, try Self.qaBatch(try Safetensors.File(path: fixture("heads/qa/io.safetensors"))),
                                                forward: { try qa.forward($0) != nil }, logits: { qa.startLogits() + qa.endLogits() })
        let (classifier, _) = try BertForSequenceClassification.load(directory: fixture("heads/classification"))
        let io = try Safetensors.File(path: fixture("heads/classification/io.safetensors"))
        try Self.expectSameLogitsWithoutTargets(classifier, try Self.classificationBatch(io), forward: { try classifier.forward($0) != nil },
                                                logits: classifier.logits)
    }

    /// `forward` says whether it returned a loss.
    static func expectSameLogitsWithoutTargets<Targets>(_ model: BertModelBase, _ batch: TaskBatch<Targets>,
                                                        forward: (TaskBatch<Targets>) throws -> Bool,
                                                        logits: () -> [Float]) throws {
        #expect(try forward(batch))
        let expected = logits(), trainingActivations = model.activationCount
        var bare = batch
        bare.targets = nil
        #expect(try !forward(bare))
        // The inference path normalises attention through the context rows: the same logits to rounding.
        expectClose("logits without targets", logits(), expected, tolerance: 3e-6)
        // What grows with the batch halves; attention's padded blocks (a fixed 3 × 128² floats a thread) stay.
        let fixed = Attention.scratchCount(seqLength: 0)
        #expect(model.activationCount - fixed < (trainingActivations - fixed) / 2, "\(model.activationCount) vs \(trainingActivations)")
    }
}
