import Foundation
import Testing
@testable import BERT

/// A batch run at its longest real sequence gives its real positions the bits of the full-length batch (attention's
/// products run in blocks of one shape, and the GEMM keeps a row's bits whatever the row count where `rowBitsKept`;
/// to rounding elsewhere), so predictions and evaluations are unchanged by trimming.
@Suite struct BatchTrimmingTests {
    /// B rows of `real`, `real − 3`, … real tokens padded to S, with ids spread over the vocabulary.
    static func rows(S: Int, real: Int, B: Int = 4) -> (ids: [Int32], segments: [Int32], mask: [Int32]) {
        var ids = [Int32](), segments = [Int32](), mask = [Int32]()
        for b in 0..<B {
            let length = real - 3 * b
            for s in 0..<S {
                ids.append(s < length ? Int32((s * 31 + b * 7) % 30000 + 100) : 0)
                segments.append(s < length && s > length / 2 ? 1 : 0)
                mask.append(s < length ? 1 : 0)
            }
        }
        return (ids, segments, mask)
    }

    @Test(arguments: [(384, 150), (384, 300), (512, 129), (128, 40)])
    func spanLogitsAtRealPositionsAreBitwiseTheSame(shape: (Int, Int)) throws {
        let (S, real) = shape, B = 4
        let model = try BertForQuestionAnswering(config: try BertConfig.preset("bert-mini"), seed: 5)
        let r = Self.rows(S: S, real: real, B: B)
        let full = QuestionAnsweringBatch(batchSize: B, seqLength: S, inputIds: r.ids, segmentIds: r.segments, inputMask: r.mask)
        let trimmed = full.trimmed()
        #expect(trimmed.seqLength == (real + 7) / 8 * 8)
        _ = try model.forward(full)
        let (fullStart, fullEnd) = (model.startLogits(), model.endLogits())
        _ = try model.forward(trimmed)
        let (start, end) = (model.startLogits(), model.endLogits()), St = trimmed.seqLength
        for b in 0..<B {
            let length = real - 3 * b
            expectPaddedRunsValues("start logits of row \(b)", Array(start[(b * St)..<(b * St + length)]),
                                   Array(fullStart[(b * S)..<(b * S + length)]))
            expectPaddedRunsValues("end logits of row \(b)", Array(end[(b * St)..<(b * St + length)]),
                                   Array(fullEnd[(b * S)..<(b * S + length)]))
        }
    }

    @Test func mrpcLogitsAreBitwiseTheSame() throws {
        guard sharedDatasetsPresent else { print("note: ../shared/datasets is absent; MRPC trimming check skipped"); return }
        let tokenizer = BertTokenizer(vocabulary: try Vocabulary(contentsOf: fixture("tokenizer/bert-base-uncased-vocab.txt")),
                                      lowercase: true)
        let examples = Array(try GLUE.readMRPC(contentsOf: sharedDatasets + "/mrpc/glue_MRPC/dev.tsv", set: "dev").prefix(96))
        let features = try GLUE.features(for: examples, labels: GLUE.mrpcLabels, tokenizer: tokenizer, maxSeqLength: 128)
        let model = try BertForSequenceClassification(config: try BertConfig.preset("bert-mini"), labels: 2, seed: 8)
        var logits: [[Float]] = [], lengths: [Int] = []
        for trim in [false, true] {
            var all: [Float] = []
            for first in stride(from: 0, to: features.count, by: 32) {
                let batch = ClassificationFineTuning.batch(Array(features[first..<min(features.count, first + 32)]), withLabels: false)
                _ = try model.forward(trim ? batch.trimmed() : batch)
                all += model.logits()
                if trim { lengths.append(batch.trimmed().seqLength) }
            }
            logits.append(all)
        }
        print("MRPC dev batches of 32 run at \(lengths) tokens instead of 128")
        #expect(lengths.allSatisfy { $0 < 128 })
        expectPaddedRunsValues("MRPC logits", logits[1], logits[0])
        #expect(try ClassificationFineTuning.predict(model, features, batchSize: 32, trim: true)
                == ClassificationFineTuning.predict(model, features, batchSize: 32, trim: false))
    }

    @Test func evaluationBatchesKeepTheirMaskedPositions() {
        let r = Self.rows(S: 64, real: 20, B: 2)
        let batch = PretrainingBatch(batchSize: 2, seqLength: 64, maxPredictions: 2, inputIds: r.ids, segmentIds: r.segments,
                                     inputMask: r.mask, maskedLMPositions: [3, 9, 30, 0], maskedLMIds: [5, 6, 7, 0],
                                     nextSentenceLabels: [0, 1])
        let trimmed = batch.trimmed()
        #expect(trimmed.seqLength == 32, "covers masked position 30 beyond the real tokens")
        #expect(trimmed.maskedLMPositions == batch.maskedLMPositions && trimmed.inputIds.count == 64)
    }
}
