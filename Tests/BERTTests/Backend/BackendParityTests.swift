import Foundation
import Testing
@testable import BERT

/// The harness `bert check-device` runs on a GPU machine, checked here on the emulated device: equal bits in fp32, and
/// it catches a backend that rounds (bf16 activations judged by fp32 tolerances).
@Suite struct BackendParityTests {
    @Test func theEmulatedDeviceMatchesTheCPUExactly() {
        let results = BackendParity.run(candidate: CPUBackend.emulatedDevice())
        #expect(results.count == 23)
        for r in results { #expect(r.maxRelativeError == 0, "\(r.operation): \(r.maxRelativeError)") }
    }

    @Test func roundedActivationsAreCaughtByFP32TolerancesAndPassBF16Ones() {
        let bf16 = CPUBackend.emulatedDevice(bf16Activations: true)
        let strict = BackendParity.run(candidate: bf16, precision: .fp32)
        let caught = Set(strict.filter { !$0.passed }.map(\.operation))
        for expected in ["embedding forward", "layernorm forward", "linear forward", "add bias and residual",
                         "dropout forward with residual", "attention forward and backward, dropout 0.1"] {
            #expect(caught.contains(expected), "\(expected) should fail fp32 tolerances under bf16 rounding")
        }
        #expect(!caught.contains("transpose") && !caught.contains("gather and scatter-add rows"))
        let loose = BackendParity.run(candidate: bf16, precision: .bf16)
        #expect(loose.allSatisfy { $0.passed })
    }

    @Test func errorsAreRelativeToTheLargestReferenceMagnitude() {
        #expect(BackendParity.worstRelativeError([1, 2, 4.5], [1, 2, 4]) == 0.125)
        #expect(BackendParity.worstRelativeError([0, 0], [0, 0]) == 0)
        #expect(BackendParity.worstRelativeError([.nan, 1], [1, 1]) == .infinity)
    }

    @Test(.enabled(if: BertProgram.present)) func checkDeviceCommand() throws {
        let ok = try BertProgram.run(["check-device", "--device", "emulated"])
        #expect(ok.status == 0, "\(ok.err)")
        let lines = ok.out.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(lines.count == 23 && lines.allSatisfy { $0["passed"] as? Bool == true })
        // The CPU's bf16 GEMMs against its fp32 kernels, every operation within the bf16 tolerance.
        let cpu = try BertProgram.run(["check-device", "--device", "cpu", "--precision", "bf16"])
        #expect(cpu.status == 0, "\(cpu.err)\n\(cpu.out)")
        #expect(cpu.out.split(separator: "\n").count == 23)
    }
}
