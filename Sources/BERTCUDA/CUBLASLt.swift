/// cuBLASLt's entry points for the GEMMs (bf16 or fp32 inputs, fp32 accumulation, bias / GELU epilogues), loaded
/// only when a CUDA backend asks: the library is ≈ 540 MB and lives on the GPU machine (the `nvidia-cublas` wheel or
/// the CUDA toolkit). Handles and descriptors are opaque pointers; statuses are `cublasStatus_t` (0 is success).
public final class CUBLASLt: @unchecked Sendable {
    public static let libraryName = "libcublasLt.so.13"

    public typealias Status = Int32
    public typealias Handle = OpaquePointer?
    private let library: SharedLibrary
    public let getVersion: @convention(c) () -> Int
    public let create: @convention(c) (UnsafeMutablePointer<Handle>) -> Status
    public let destroy: @convention(c) (Handle) -> Status
    /// (desc, cublasComputeType_t, cudaDataType_t scale type)
    public let matmulDescCreate: @convention(c) (UnsafeMutablePointer<Handle>, Int32, Int32) -> Status
    public let matmulDescSetAttribute: @convention(c) (Handle, Int32, UnsafeRawPointer?, Int) -> Status
    public let matmulDescDestroy: @convention(c) (Handle) -> Status
    /// (layout, cudaDataType_t, rows, columns, leading dimension)
    public let matrixLayoutCreate: @convention(c) (UnsafeMutablePointer<Handle>, Int32, UInt64, UInt64, Int64) -> Status
    public let matrixLayoutSetAttribute: @convention(c) (Handle, Int32, UnsafeRawPointer?, Int) -> Status
    public let matrixLayoutDestroy: @convention(c) (Handle) -> Status
    public let matmulPreferenceCreate: @convention(c) (UnsafeMutablePointer<Handle>) -> Status
    public let matmulPreferenceSetAttribute: @convention(c) (Handle, Int32, UnsafeRawPointer?, Int) -> Status
    public let matmulPreferenceDestroy: @convention(c) (Handle) -> Status
    /// (handle, op, A, B, C, D layouts, preference, requested count, results (96-byte
    /// cublasLtMatmulHeuristicResult_t each), returned count)
    public let matmulAlgoGetHeuristic: @convention(c) (Handle, Handle, Handle, Handle, Handle, Handle, Handle, Int32,
                                                       UnsafeMutableRawPointer?, UnsafeMutablePointer<Int32>) -> Status
    /// (handle, op, alpha, A, Adesc, B, Bdesc, beta, C, Cdesc, D, Ddesc, algo, workspace, workspace bytes, stream)
    public let matmul: @convention(c) (Handle, Handle, UnsafeRawPointer?, UInt64, Handle, UInt64, Handle,
                                       UnsafeRawPointer?, UInt64, Handle, UInt64, Handle, UnsafeRawPointer?, UInt64,
                                       Int, OpaquePointer?) -> Status

    /// - Throws: `CUDAError.libraryNotFound` naming the library and how to get it.
    public static func load(candidates: [String] = [libraryName]) throws -> CUBLASLt {
        guard let library = SharedLibrary.open(candidates) else {
            throw CUDAError.libraryNotFound(library: "cuBLASLt", tried: candidates,
                                            purpose: "install the nvidia-cublas 13 wheel or the CUDA 13 toolkit")
        }
        return try CUBLASLt(library)
    }

    private init(_ library: SharedLibrary) throws {
        self.library = library
        getVersion = try library.function("cublasLtGetVersion")
        create = try library.function("cublasLtCreate")
        destroy = try library.function("cublasLtDestroy")
        matmulDescCreate = try library.function("cublasLtMatmulDescCreate")
        matmulDescSetAttribute = try library.function("cublasLtMatmulDescSetAttribute")
        matmulDescDestroy = try library.function("cublasLtMatmulDescDestroy")
        matrixLayoutCreate = try library.function("cublasLtMatrixLayoutCreate")
        matrixLayoutSetAttribute = try library.function("cublasLtMatrixLayoutSetAttribute")
        matrixLayoutDestroy = try library.function("cublasLtMatrixLayoutDestroy")
        matmulPreferenceCreate = try library.function("cublasLtMatmulPreferenceCreate")
        matmulPreferenceSetAttribute = try library.function("cublasLtMatmulPreferenceSetAttribute")
        matmulPreferenceDestroy = try library.function("cublasLtMatmulPreferenceDestroy")
        matmulAlgoGetHeuristic = try library.function("cublasLtMatmulAlgoGetHeuristic")
        matmul = try library.function("cublasLtMatmul")
    }
}
