import BERTKernels
import Foundation
import Testing
@testable import BERT

/// `--device cpu --precision bf16`: the linear layers' GEMMs on bf16-rounded inputs (AMX where the CPU has it) train
/// within a stated band of fp32; weights packed once for inference give the very bits of packing on every call; and
/// the command line runs both.
@Suite struct CPUBF16Tests {
    /// 4 LAMB steps of the tiny model with bf16 GEMM inputs against fp32: each loss within 2 %, and not equal, so the
    /// rounding did happen.
    @Test func bf16GEMMsTrainWithinTwoPercentOfFP32() throws {
        print("note: bf16 GEMMs run \(BF16GEMM.usesAMX ? "on AMX tiles" : "as rounded inputs to fp32 GEMMs (no AMX here)")")
        let fp32 = try EmulatedDeviceTests.pretraining(CPUBackend.shared, steps: 4)
        let bf16 = try EmulatedDeviceTests.pretraining(CPUBackend.bf16, steps: 4)
        let worst = zip(fp32.losses, bf16.losses).map { abs($0 - $1) / $1 }.max() ?? .infinity
        print("bf16 GEMMs: worst relative loss difference \(worst) over \(fp32.losses.count) micro-batches")
        #expect(worst < 0.02)
        #expect(fp32.losses != bf16.losses)
    }

    /// An inference forward (MLM and NSP logits) on the backend that packs each weight once equals, bit for bit, the
    /// one that packs on every call — twice over, so the second forward reads the kept copies.
    @Test func packingWeightsOnceChangesNoBit() throws {
        func logits(_ backend: any Backend, forwards: Int) throws -> [Float] {
            let model = try BertForPreTraining(config: EmulatedDeviceTests.config, seed: 11, backend: backend)
            var out: [Float] = []
            for seed in 0..<UInt64(forwards) {
                _ = try model.forward(EmulatedDeviceTests.pretrainingBatch(seed: seed))
                out += model.mlmLogits() + model.nspLogits()
            }
            return out
        }
        let everyCall = try logits(CPUBackend.bf16, forwards: 2), once = try logits(CPUBackend.bf16Inference(), forwards: 2)
        #expect(everyCall.map(\.bitPattern) == once.map(\.bitPattern))
        #expect(try logits(CPUBackend.shared, forwards: 2) != once, "bf16 differs from fp32")
    }
}
