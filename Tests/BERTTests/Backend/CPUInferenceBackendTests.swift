import BERTKernels
import Foundation
import Testing
@testable import BERT

@Suite struct CPUInferenceBackendTests {
    /// The fp32 inference backend (weights packed once where oneDNN runs the GEMMs) changes no bit of a forward, the
    /// first (packing) or a later one, nor does giving back the packed weights' fp32 pages; weights of few outputs
    /// (NSP's 2) and a tied decoder's word embeddings stay unpacked. Elsewhere (OpenBLAS, oneDNN's AVX2 kernels) it is the plain CPU.
    @Test func packingWeightsOnceChangesNoBit() throws {
        let config = BertConfig(vocabSize: 256, hiddenSize: 128, numHiddenLayers: 2, numAttentionHeads: 2,
                                intermediateSize: 256, hiddenAct: "gelu", hiddenDropoutProb: 0.1,
                                attentionProbsDropoutProb: 0.1, maxPositionEmbeddings: 64, initializerRange: 0.2)
        /// The logits of two forwards, and what the backend packed and gave back while the model was alive.
        func logits(_ backend: CPUBackend) throws -> ([Float], counts: (seen: Int, packed: Int, givenBack: Int)) {
            let model = try BertForPreTraining(config: config, seed: 11, backend: backend)
            var out: [Float] = []
            for seed: UInt64 in 0..<2 {
                var batch = StepBenchmark(config: config, mode: .train, batchSize: 4, seqLength: 32, maxPredictions: 5,
                                          steps: 1, warmup: 0).syntheticBatch(seed: seed)
                for t in [30, 31, 60, 61, 62, 63] { batch.inputMask[t] = 0 }
                _ = try model.forward(batch, training: false)
                out += model.mlmLogits() + model.nspLogits()
            }
            return (out, backend.packedWeightCounts)
        }
        let inference = CPUBackend.inference()
        guard GEMM.Engine.selected == .onednn && GEMM.Engine.onednn.keepsRowBits && OneDNNPackedWeight.available else {
            print("note: the fp32 inference backend is the plain CPU here (GEMMs by \(GEMM.Engine.selected), oneDNN's AVX-512 kernels \(GEMM.Engine.onednn.keepsRowBits ? "in use" : "not in use"), packing routine \(OneDNNPackedWeight.available ? "present" : "absent"))")
            #expect(inference === CPUBackend.shared)
            return
        }
        let (packed, counts) = try logits(inference), (plain, _) = try logits(CPUBackend.shared)
        #expect(packed.map(\.bitPattern) == plain.map(\.bitPattern))
        // 4 per layer, the pooler, the MLM transform and decoder, NSP's classifier: all but NSP's 2-output one and the
        // decoder (it multiplies by the word embeddings, tied) packed, and their fp32 copies given back, whole pages
        // only — the second forward, reading only packed copies, kept the bits.
        #expect(counts.seen == 12 && counts.packed == 10, "\(counts)")
        let encoder = 4 * 2 * (128 * 384 + 128 * 128 + 2 * 128 * 256), poolerAndTransform = 4 * 2 * 128 * 128
        #expect(counts.givenBack > encoder / 2 && counts.givenBack <= encoder + poolerAndTransform, "\(counts)")
        // The model is gone: every page was reopened before its memory was freed.
        #expect(inference.packedWeightCounts.givenBack == 0)
    }

    /// A weight is packed in the layout that suits the rows each thread computes in its first product, unless that
    /// layout would grow it by more than half; a weight either layout would grow so stays unpacked.
    @Test func aWeightIsPackedForTheRowsOfItsFirstProduct() throws {
        guard GEMM.Engine.selected == .onednn && GEMM.Engine.onednn.keepsRowBits && OneDNNPackedWeight.available else {
            print("note: skipping the packed layouts' choice (GEMMs by \(GEMM.Engine.selected), oneDNN's AVX-512 kernels \(GEMM.Engine.onednn.keepsRowBits ? "in use" : "not in use"), packing routine \(OneDNNPackedWeight.available ? "present" : "absent"))")
            return
        }
        let weights = PackedWeights(precision: .fp32)
        var r = TestRandom(5), held: [UnsafeMutableBufferPointer<Float>] = []   // distinct addresses, kept alive
        defer { held.forEach { $0.deallocate() } }
        func layout(outFeatures: Int, inFeatures: Int, rows: Int) -> OneDNNPackedWeight.Layout? {
            let w = UnsafeMutableBufferPointer<Float>.allocate(capacity: outFeatures * inFeatures)
            _ = w.initialize(from: r.normal(outFeatures * inFeatures))
            held.append(w)
            guard case .fp32(let packed)? = weights.packed(w.baseAddress!, outFeatures: outFeatures,
                                                           inFeatures: inFeatures, rows: rows) else { return nil }
            return packed.layout
        }
        #expect(layout(outFeatures: 768, inFeatures: 768, rows: 1) == .twoThreads)   // 1.36× its bytes
        #expect(layout(outFeatures: 768, inFeatures: 768, rows: 129 * Parallel.threadCount) == .oneThread)
        #expect(layout(outFeatures: 256, inFeatures: 256, rows: 1) == .oneThread)   // 2.1× in the two-thread layout
        #expect(layout(outFeatures: 2, inFeatures: 768, rows: 1) == nil)
    }
}
