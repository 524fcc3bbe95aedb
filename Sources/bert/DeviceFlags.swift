import ArgumentParser
import BERT
import BERTKernels
import Foundation

extension DeviceKind: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}

/// `--device` and `--precision`, said once for every command that runs the model.
struct DeviceFlags: ParsableArguments {
    @Option(help: "cpu; cuda (an NVIDIA GPU); or emulated (the CPU kernels behind device-only memory, to check the device path without a GPU).")
    var device: DeviceKind = .cpu
    @Option(help: "fp32; or bf16: fp32 master weights and optimizer state, bf16 activations on a GPU, bf16 GEMM inputs on the CPU (fast where it has AMX).")
    var precision: Precision = .fp32

    /// The backend these flags name; it fails with one line when the device cannot start.
    func backend() throws -> any Backend {
        noteSlowBF16()
        return try Backends.make(device: device, precision: precision)
    }

    /// The backend for one model that only runs inference (its weights never change).
    func inferenceBackend() throws -> any Backend {
        noteSlowBF16()
        return try Backends.make(device: device, precision: precision, inference: true)
    }

    /// bf16 on a CPU without AMX gives the same numbers but no speed: say so on standard error.
    private func noteSlowBF16() {
        guard device == .cpu, precision == .bf16, !BF16GEMM.usesAMX else { return }
        FileHandle.standardError.write(Data(("note: AMX-BF16 is not in use (this CPU or its kernel lacks it, or BERT_AMX=0): "
            + "--precision bf16 rounds the GEMM inputs and runs fp32 GEMMs, no faster than fp32\n").utf8))
    }
}
