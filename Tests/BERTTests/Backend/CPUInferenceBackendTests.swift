import BERTKernels
import Foundation
import Testing
@testable import BERT

@Suite struct CPUInferenceBackendTests {
    /// The fp32 inference backend (weights packed once where oneDNN runs the GEMMs) changes no bit of a forward, the
    /// first (packing) or a later one; weights of few outputs (the decoder's 50, NSP's 2) stay unpacked.
    @Test func packingWeightsOnceChangesNoBit() throws {
        let config = BertConfig(vocabSize: 50, hiddenSize: 128, numHiddenLayers: 2, numAttentionHeads: 2,
                                intermediateSize: 256, hiddenAct: "gelu", hiddenDropoutProb: 0.1,
                                attentionProbsDropoutProb: 0.1, maxPositionEmbeddings: 64, initializerRange: 0.2)
        func logits(_ backend: any Backend) throws -> [Float] {
            let model = try BertForPreTraining(config: config, seed: 11, backend: backend)
            var out: [Float] = []
            for seed: UInt64 in 0..<2 {
                var batch = StepBenchmark(config: config, mode: .train, batchSize: 4, seqLength: 32, maxPredictions: 5,
                                          steps: 1, warmup: 0).syntheticBatch(seed: seed)
                for t in [30, 31, 60, 61, 62, 63] { batch.inputMask[t] = 0 }
                _ = try model.forward(batch, training: false)
                out += model.mlmLogits() + model.nspLogits()
            }
            return out
        }
        let inference = CPUBackend.inference()
        if GEMM.Engine.selected == .onednn && GEMM.Engine.onednn.keepsRowBits && OneDNNPackedWeight.available {
            #expect(inference !== CPUBackend.shared)
        } else {
            print("note: the fp32 inference backend is the plain CPU here (GEMMs by \(GEMM.Engine.selected), oneDNN's AVX-512 kernels \(GEMM.Engine.onednn.keepsRowBits ? "in use" : "not in use"), packing routine \(OneDNNPackedWeight.available ? "present" : "absent"))")
        }
        #expect(try logits(inference).map(\.bitPattern) == logits(CPUBackend.shared).map(\.bitPattern))
        if inference !== CPUBackend.shared {
            // 4 per layer, the pooler, the MLM transform and decoder, NSP's classifier; all but the 50- and 2-output ones
            // packed.
            let counts = (inference as CPUBackend).packedWeightCounts
            #expect(counts.seen == 12 && counts.packed == 10, "\(counts)")
        }
    }
}
