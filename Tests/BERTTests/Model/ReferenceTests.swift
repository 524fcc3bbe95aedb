import Foundation
import Testing
@testable import BERT

/// BertForPreTraining against HF transformers (fixtures from scripts/reference/bert_core.py): outputs, losses and the
/// gradient of every parameter, for both GELU forms.
@Suite struct ReferenceTests {
    static func batch(_ io: Safetensors.File) throws -> PretrainingBatch {
        let ids = try io.entry("input_ids").shape, positions = try io.entry("masked_lm_positions").shape
        return PretrainingBatch(batchSize: ids[0], seqLength: ids[1], maxPredictions: positions[1],
                                inputIds: try io.ints("input_ids"), segmentIds: try io.ints("segment_ids"),
                                inputMask: try io.ints("input_mask"), maskedLMPositions: try io.ints("masked_lm_positions"),
                                maskedLMIds: try io.ints("masked_lm_ids"), nextSentenceLabels: try io.ints("next_sentence_labels"))
    }

    @Test(arguments: ["tiny-gelu", "tiny-gelu-new"])
    func matchesTransformers(variant: String) throws {
        let dir = fixture("core/\(variant)")
        let (model, report) = try BertForPreTraining.load(directory: dir)
        #expect(report.missing.isEmpty)
        #expect(model.config.paddedVocabSize != model.config.vocabSize, "the fixture should exercise vocabulary padding")
        let io = try Safetensors.File(path: dir + "/io.safetensors")
        let losses = try model.forward(try Self.batch(io))

        expectClose("sequence_output", model.sequenceOutput(), try io.floats("sequence_output"), tolerance: 1e-5)
        expectClose("pooled_output", model.pooledOutput(), try io.floats("pooled_output"), tolerance: 1e-5)
        expectClose("mlm_logits", model.mlmLogits(), try io.floats("mlm_logits"), tolerance: 1e-5)
        expectClose("nsp_logits", model.nspLogits(), try io.floats("nsp_logits"), tolerance: 1e-5)
        expectClose("mlm_loss", [losses.mlmLoss], try io.floats("mlm_loss"), tolerance: 1e-5)
        expectClose("nsp_loss", [losses.nspLoss], try io.floats("nsp_loss"), tolerance: 1e-5)
        expectClose("loss", [losses.loss], try io.floats("loss"), tolerance: 1e-5)

        model.zeroGradients()
        model.backward()
        // The key bias gets no gradient in exact arithmetic (softmax ignores a shift per row): only rounding noise.
        let worst = try expectGradientsMatch(model, dir + "/grads.safetensors") { $0.hasSuffix("attention.self.key.bias") }
        print("\(variant): worst gradient \(worst.name) relative error \(worst.error)")
    }

    /// The evaluation forward (nothing kept for a backward, biases added after the GEMMs) gives transformers' outputs
    /// too, and the training forward's to rounding, with less memory planned.
    @Test func evaluationForwardMatchesTransformers() throws {
        let dir = fixture("core/tiny-gelu")
        let (model, _) = try BertForPreTraining.load(directory: dir)
        let io = try Safetensors.File(path: dir + "/io.safetensors")
        let batch = try Self.batch(io)
        let trained = try model.forward(batch)
        let planned = model.activationCount
        let evaluated = try model.forward(batch, training: false)
        #expect(model.activationCount < planned, "an evaluation forward planned \(model.activationCount) floats, training \(planned)")
        expectClose("sequence_output", model.sequenceOutput(), try io.floats("sequence_output"), tolerance: 1e-5)
        expectClose("mlm_logits", model.mlmLogits(), try io.floats("mlm_logits"), tolerance: 1e-5)
        expectClose("nsp_logits", model.nspLogits(), try io.floats("nsp_logits"), tolerance: 1e-5)
        expectClose("loss", [evaluated.loss], [trained.loss], tolerance: 1e-6)
        #expect(evaluated.mlmCorrect == trained.mlmCorrect && evaluated.nspCorrect == trained.nspCorrect)
        #expect(evaluated.maskedCount == trained.maskedCount && evaluated.sequences == trained.sequences)
    }
}
