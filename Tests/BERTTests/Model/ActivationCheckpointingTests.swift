import Testing
@testable import BERT

/// Activation checkpointing recomputes each layer in the backward from its kept input, with the same dropout masks
/// (they come from counters), so every gradient must be bit for bit the one of a run that kept everything.
@Suite struct ActivationCheckpointingTests {
    static let config = EmulatedDeviceTests.config

    /// The loss and every gradient of one forward and backward, with and without checkpointing.
    static func gradients(_ make: () throws -> BertModelBase, forward: (BertModelBase, DropoutStreams) throws -> Float)
        throws -> (plain: (Float, [Float], Int), checkpointed: (Float, [Float], Int)) {
        func run(_ checkpointed: Bool) throws -> (Float, [Float], Int) {
            let model = try make()
            model.checkpointActivations = checkpointed
            model.zeroGradients()
            let loss = try forward(model, DropoutStreams(seed: 21, step: 4))
            model.backward()
            return (loss, model.gradients.array(), model.activationCount)
        }
        return (try run(false), try run(true))
    }

    @Test func pretrainingGradientsAreBitwiseIdentical() throws {
        let batch = EmulatedDeviceTests.pretrainingBatch(seed: 9)
        let r = try Self.gradients({ try BertForPreTraining(config: Self.config, seed: 3) }) {
            try ($0 as! BertForPreTraining).forward(batch, dropout: $1).loss
        }
        #expect(r.plain.0 == r.checkpointed.0)
        #expect(r.plain.1 == r.checkpointed.1)
        #expect(r.plain.1.contains { $0 != 0 })
        #expect(r.checkpointed.2 < r.plain.2, "checkpointing keeps fewer activations: \(r.checkpointed.2) vs \(r.plain.2)")
    }

    @Test func taskModelGradientsAreBitwiseIdentical() throws {
        let t = EmulatedDeviceTests.tokens, (B, S) = (EmulatedDeviceTests.B, EmulatedDeviceTests.S)
        let qa = QuestionAnsweringBatch(batchSize: B, seqLength: S, inputIds: t.ids, segmentIds: t.segments, inputMask: t.mask,
                                        targets: AnswerSpans(startPositions: [1, 2, 0, 3], endPositions: [2, 4, 0, 5]))
        let q = try Self.gradients({ try BertForQuestionAnswering(config: Self.config, seed: 3) }) {
            try ($0 as! BertForQuestionAnswering).forward(qa, dropout: $1)!.loss
        }
        #expect(q.plain.0 == q.checkpointed.0 && q.plain.1 == q.checkpointed.1)
        let classification = ClassificationBatch(batchSize: B, seqLength: S, inputIds: t.ids, segmentIds: t.segments,
                                                 inputMask: t.mask, targets: [1, 0, 2, 2])
        let c = try Self.gradients({ try BertForSequenceClassification(config: Self.config, labels: 3, seed: 3) }) {
            try ($0 as! BertForSequenceClassification).forward(classification, dropout: $1)!.loss
        }
        #expect(c.plain.0 == c.checkpointed.0 && c.plain.1 == c.checkpointed.1)
    }

    /// BERT-base's shape at 128 tokens: per layer a checkpointed run keeps one [T, H] output instead of ≈ 13 such
    /// buffers and the attention probabilities; measured by the workspace planner without running anything.
    @Test func bertBaseKeepsFarLessPerLayer() throws {
        let base = try BertConfig.preset("bert-base")
        let full = EncoderWorkspace(config: base, batch: 2, seqLength: 128, backend: CPUBackend.shared).storage.count
        let kept = EncoderWorkspace(config: base, batch: 2, seqLength: 128, checkpointed: true, backend: CPUBackend.shared).storage.count
        print("bert-base encoder workspace at 2 × 128: \((full * 4) >> 20) MiB, checkpointed \((kept * 4) >> 20) MiB")
        #expect(Double(kept) < 0.25 * Double(full))
    }
}
