import BERTCUDA

/// Where a command runs the model (`--device`).
public enum DeviceKind: String, CaseIterable, Sendable {
    /// The CPU kernels on host memory.
    case cpu
    /// An NVIDIA GPU through the CUDA driver.
    case cuda
    /// The CPU kernels behind device-only memory (`CPUBackend.emulatedDevice`): the device path checked without a GPU.
    case emulated
}

/// The arithmetic of the model (`--precision`). Master weights, gradients and optimizer state are fp32 in both.
public enum Precision: String, CaseIterable, Sendable {
    case fp32
    /// On a GPU bf16 activations and GEMM inputs, fp32 accumulation and statistics (DeepSpeed's bf16 mode); on the CPU
    /// bf16 inputs to the linear layers' GEMMs only (`CPUBackend.bf16`).
    case bf16
}

public enum Backends {
    /// The backend for `device` at `precision`.
    /// - Throws: the device's own one-line error when it cannot start (no CUDA driver).
    /// `inference` promises one model whose weights do not change once it runs (prediction, evaluation, inference
    /// benchmarks), which lets the CPU pack each weight once.
    public static func make(device: DeviceKind, precision: Precision, inference: Bool = false) throws -> any Backend {
        switch (device, precision) {
        case (.cpu, .fp32): return inference ? CPUBackend.inference() : CPUBackend.shared
        case (.cpu, .bf16): return inference ? CPUBackend.bf16Inference() : CPUBackend.bf16
        case (.emulated, _): return CPUBackend.emulatedDevice(bf16Activations: precision == .bf16)
        case (.cuda, _): return try cudaBackend(precision: precision)
        }
    }
}

extension Backends {
    /// `CUDABackend` on GPU 0: the driver started, our kernels compiled by NVRTC for its architecture (or loaded from
    /// the cubin cache), cuBLASLt loaded. Proved on the emulated runtime only: it has not yet run on a GPU.
    /// - Throws: `BertError.invalidInput` with the CUDA library's one-line error (no driver, no GPU, no NVRTC or
    ///   cuBLASLt, a kernel that does not load).
    static func cudaBackend(precision: Precision) throws -> any Backend {
        do {
            let driver = try CUDADriver.load()
            guard try driver.deviceCount() > 0 else { throw BertError.invalidInput("--device cuda: the CUDA driver sees no GPU") }
            let gpu = try driver.device(0)
            let compiler = KernelCompiler(nvrtc: try NVRTC.load(), architecture: gpu.architecture)
            let kernels = try CUDAKernels(driver: driver, modules: try compiler.compileAll())
            return CUDABackend(runtime: try DriverRuntime(kernels: kernels, blas: try CUBLASLt.load()), precision: precision)
        } catch let error as CUDAError {
            throw BertError.invalidInput("--device cuda: \(error)")
        }
    }
}
