import BERTCUDA
import BERTKernels
import Foundation

/// The backend of an NVIDIA GPU, through a `CUDARuntime`: every operation is a cuBLASLt matmul (the Linear layers'
/// forward and backward, attention's batched GEMMs) or one of our kernels (Kernels/*.cu), with the CPU kernels'
/// semantics. Parameters, gradients, optimizer state, statistics and stored activations are fp32 in both precisions;
/// with `.bf16` every GEMM reads bf16 copies of its inputs (converted just before, into scratch the backend owns) and
/// accumulates in fp32, DeepSpeed's bf16 mode. `DriverRuntime` runs it on a GPU; `EmulatedRuntime` runs it here.
///
/// One backend is used by one thread at a time, as a CUDA stream is. A runtime error (a device fault, a launch the
/// declarations reject) stops the program with that error: no step can continue past it.
public final class CUDABackend: Backend, @unchecked Sendable {
    public let name = "cuda"
    public let runtime: any CUDARuntime
    public let precision: Precision
    /// Blocks of `layernorm_backward`, and so rows of its partial sums (`layerNormScratchCount`).
    static let normParts = 64
    /// Threads per block of the element-wise and row kernels.
    static let threads = 256

    /// Scratch the backend owns (not the model's arena): bf16 GEMM inputs and per-row outputs, grown on first use.
    enum Scratch: CaseIterable { case gemmA, gemmB, gemmC, qkv, scores, columnSums, rowLosses, rowHits }
    private var scratch: [Scratch: (address: UInt64, bytes: Int)] = [:]

    public init(runtime: any CUDARuntime, precision: Precision) {
        self.runtime = runtime
        self.precision = precision
    }

    deinit { for (address, _) in scratch.values { try? runtime.free(address) } }

    /// Runs `body`, stopping the program with the runtime's one-line error if it throws.
    func run<R>(_ body: () throws -> R) -> R {
        do { return try body() } catch { fatalError("--device cuda: \(error)") }
    }

    /// At least `bytes` of scratch `slot`, reallocated only when it must grow.
    func scratch(_ slot: Scratch, bytes: Int) -> UInt64 {
        if let held = scratch[slot], held.bytes >= bytes { return held.address }
        return run {
            if let held = scratch[slot] { try runtime.free(held.address) }
            let address = try runtime.allocate(bytes: bytes)
            scratch[slot] = (address, bytes)
            return address
        }
    }

    func launch(_ kernel: String, grid: Dim3, block: Dim3 = Dim3(CUDABackend.threads), _ arguments: [KernelArgument]) {
        guard grid.x > 0 else { return }
        run { try runtime.launch(kernel, grid: grid, block: block, arguments) }
    }

    /// A grid striding over `n` elements (the kernels loop, so it may be capped).
    static func strided(_ n: Int) -> Dim3 { Dim3(min((n + threads - 1) / threads, 8192)) }

    /// One block per row for rows of `width`: 32 to 256 threads, a multiple of 32.
    static func rowBlock(_ width: Int) -> Dim3 { Dim3(min(threads, max(32, (width + 31) / 32 * 32))) }

    // MARK: GEMMs

    /// A GEMM operand: an fp32 tensor, or its bf16 copy.
    struct Input {
        let base: UInt64
        let type: MatmulDescription.ElementType

        /// The operand `offset` elements in, with leading dimension `ld` and batch stride `stride`.
        func at(_ offset: Int = 0, ld: Int, stride: Int = 0) -> MatmulDescription.Operand {
            .init(address: base + UInt64(offset * type.size), type: type, ld: ld, stride: stride)
        }
    }

    /// `count` floats at `x` as a GEMM reads them: themselves in fp32, a bf16 copy in scratch `slot` in bf16.
    func gemmInput(_ x: DeviceFloats, count: Int, _ slot: Scratch) -> Input {
        guard precision == .bf16 else { return Input(base: UInt64(x.address), type: .fp32) }
        let copy = scratch(slot, bytes: 2 * count)
        launch("convert_to_bf16", grid: Self.strided(count), [.pointer(copy), ptr(x), .longLong(Int64(count))])
        return Input(base: copy, type: .bf16)
    }

    /// Row-major `C[M, N] = alpha · op(A)[M, K] · op(B)[K, N] + beta · C [+ bias[N] per row]` (`GEMM.multiply`'s
    /// meaning), over `batch` matrices: cuBLASLt is column-major, so it computes `Cᵀ = op(B)ᵀ · op(A)ᵀ`, B's operand
    /// first, with m = N and n = M.
    func gemm(transposeA: Bool, transposeB: Bool, M: Int, N: Int, K: Int, alpha: Float = 1,
              A: MatmulDescription.Operand, B: MatmulDescription.Operand, beta: Float, C: DeviceFloats, ldc: Int,
              strideC: Int = 0, batch: Int = 1, bias: DeviceFloats? = nil) {
        guard M > 0, N > 0, K > 0 else { return }
        let description = MatmulDescription(
            transposeA: transposeB, transposeB: transposeA, m: N, n: M, k: K, a: B, b: A,
            c: .init(address: UInt64(C.address), ld: ldc, stride: strideC), alpha: alpha, beta: beta, batchCount: batch,
            epilogue: bias.map { .bias(UInt64($0.address)) } ?? .none)
        run { try runtime.matmul(description) }
    }

    // MARK: Memory

    public func allocate(bytes: Int) -> UInt { UInt(run { try runtime.allocate(bytes: bytes) }) }

    public func release(_ address: UInt) { run { try runtime.free(UInt64(address)) } }

    public func upload(_ bytes: UnsafeRawBufferPointer, to address: UInt) {
        run { try runtime.upload(bytes, to: UInt64(address)) }
    }

    public func download(from address: UInt, into bytes: UnsafeMutableRawBufferPointer) {
        run { try runtime.download(from: UInt64(address), into: bytes) }
    }

    public func fill(_ x: DeviceFloats, count: Int, value: Float) {
        guard count > 0 else { return }
        run { try runtime.fill(UInt64(x.address), word: value.bitPattern, count: count) }
    }

    public func copy(_ source: DeviceFloats, to destination: DeviceFloats, count: Int) {
        guard count > 0 else { return }
        run { try runtime.copy(from: UInt64(source.address), to: UInt64(destination.address), bytes: 4 * count) }
    }

    public func synchronize() { run { try runtime.synchronize() } }

    public func hostAddress(_ pointer: DeviceFloats) -> UnsafeMutablePointer<Float>? { nil }

    /// The scores `[B, A, S, S]` (or, in the backward, their gradient) and the dropped probabilities `[B, A, S, S]`.
    public func attentionScratchCount(batch: Int, seqLength: Int, heads: Int) -> Int {
        2 * batch * heads * seqLength * seqLength
    }

    /// `layernorm_backward`'s per-block partial sums of dγ and dβ, `[normParts, 2H]`.
    public func layerNormScratchCount(features: Int) -> Int { 2 * features * Self.normParts }
}

/// A kernel argument for a device pointer (null for nil).
func ptr<T>(_ x: DevicePointer<T>?) -> KernelArgument { .pointer(UInt64(x?.address ?? 0)) }
