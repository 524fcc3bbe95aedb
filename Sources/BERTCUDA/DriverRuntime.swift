/// `CUDARuntime` on a real GPU: memory and copies through the driver, our kernels through `CUDAKernels`, matmuls through
/// cuBLASLt with descriptors made per call from a `MatmulDescription` (heuristic's first algorithm, a 32 MiB workspace).
/// Deliberately thin: everything above it is proved on `EmulatedRuntime`; this part has not yet run on a GPU.
public final class DriverRuntime: CUDARuntime, @unchecked Sendable {
    public let kernels: CUDAKernels
    private let blas: CUBLASLt
    private var handle: CUBLASLt.Handle = nil
    private let workspace: UInt64
    private static let workspaceBytes = 32 << 20
    private var driver: CUDADriver { kernels.driver }

    /// - Throws: `CUDAError` when cuBLASLt cannot start or the workspace cannot be allocated.
    public init(kernels: CUDAKernels, blas: CUBLASLt) throws {
        self.kernels = kernels
        self.blas = blas
        workspace = try kernels.driver.allocate(bytes: Self.workspaceBytes)
        try check("cublasLtCreate", blas.create(&handle))
    }

    deinit {
        _ = blas.destroy(handle)
        try? driver.free(workspace)
    }

    private func check(_ call: String, _ status: CUBLASLt.Status) throws {
        guard status == 0 else { throw CUDAError.library(call: call, code: status) }
    }

    public func allocate(bytes: Int) throws -> UInt64 {
        let address = try driver.allocate(bytes: bytes)
        try driver.fill(address, word: 0, count: (bytes + 3) / 4)
        return address
    }

    public func free(_ address: UInt64) throws { try driver.free(address) }

    public func upload(_ bytes: UnsafeRawBufferPointer, to address: UInt64) throws {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        try driver.upload(base, to: address, bytes: bytes.count)
    }

    public func download(from address: UInt64, into bytes: UnsafeMutableRawBufferPointer) throws {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        try driver.download(address, to: base, bytes: bytes.count)
    }

    public func fill(_ address: UInt64, word: UInt32, count: Int) throws { try driver.fill(address, word: word, count: count) }

    public func copy(from source: UInt64, to destination: UInt64, bytes: Int) throws {
        try driver.copy(from: source, to: destination, bytes: bytes)
    }

    public func launch(_ name: String, grid: Dim3, block: Dim3, _ arguments: [KernelArgument]) throws {
        try kernels.launch(name, grid: (UInt32(grid.x), UInt32(grid.y), UInt32(grid.z)),
                           block: (UInt32(block.x), UInt32(block.y), UInt32(block.z)), arguments)
    }

    public func synchronize() throws { try driver.synchronize() }

    public func matmul(_ d: MatmulDescription) throws {
        var operation: CUBLASLt.Handle = nil
        try check("cublasLtMatmulDescCreate", blas.matmulDescCreate(&operation, 68, 0))   // COMPUTE_32F, R_32F scale
        defer { _ = blas.matmulDescDestroy(operation) }
        var transA: Int32 = d.transposeA ? 1 : 0, transB: Int32 = d.transposeB ? 1 : 0, epilogue = d.epilogue.code
        try check("TRANSA", blas.matmulDescSetAttribute(operation, 3, &transA, 4))
        try check("TRANSB", blas.matmulDescSetAttribute(operation, 4, &transB, 4))
        try check("EPILOGUE", blas.matmulDescSetAttribute(operation, 7, &epilogue, 4))
        if case var .bias(address) = d.epilogue {
            try check("BIAS_POINTER", blas.matmulDescSetAttribute(operation, 8, &address, 8))
        }
        let a = try layout(d.a, d.shapeA, d.batchCount), b = try layout(d.b, d.shapeB, d.batchCount)
        let c = try layout(d.c, d.shapeC, d.batchCount)
        defer { [a, b, c].forEach { _ = blas.matrixLayoutDestroy($0) } }
        var preference: CUBLASLt.Handle = nil
        try check("cublasLtMatmulPreferenceCreate", blas.matmulPreferenceCreate(&preference))
        defer { _ = blas.matmulPreferenceDestroy(preference) }
        var bytes = UInt64(Self.workspaceBytes)
        try check("MAX_WORKSPACE_BYTES", blas.matmulPreferenceSetAttribute(preference, 1, &bytes, 8))
        // The heuristic assumes 256-byte aligned operands unless told: per-head slices of qkv are not.
        for (attribute, address) in [(Int32(5), d.a.address), (6, d.b.address), (7, d.c.address), (8, d.c.address)] {
            var alignment = UInt32(min(256, address & (~address &+ 1)))   // the lowest set bit
            try check("MIN_ALIGNMENT", blas.matmulPreferenceSetAttribute(preference, attribute, &alignment, 4))
        }
        var heuristic = [UInt8](repeating: 0, count: 96), found: Int32 = 0   // cublasLtMatmulHeuristicResult_t
        try check("cublasLtMatmulAlgoGetHeuristic", blas.matmulAlgoGetHeuristic(handle, operation, a, b, c, c, preference,
                                                                               1, &heuristic, &found))
        guard found > 0 else { throw CUDAError.library(call: "cublasLtMatmulAlgoGetHeuristic (no algorithm)", code: 15) }
        var alpha = d.alpha, beta = d.beta
        try heuristic.withUnsafeBytes { algo in   // the algorithm is the result's first 64 bytes
            try check("cublasLtMatmul", blas.matmul(handle, operation, &alpha, d.a.address, a, d.b.address, b, &beta,
                                                    d.c.address, c, d.c.address, c, algo.baseAddress, workspace,
                                                    Self.workspaceBytes, nil))
        }
    }

    /// A column-major layout of `operand` with `shape`, batched when `batchCount` > 1.
    private func layout(_ operand: MatmulDescription.Operand, _ shape: (rows: Int, columns: Int),
                        _ batchCount: Int) throws -> CUBLASLt.Handle {
        var layout: CUBLASLt.Handle = nil
        try check("cublasLtMatrixLayoutCreate", blas.matrixLayoutCreate(&layout, operand.type.rawValue,
                                                                        UInt64(shape.rows), UInt64(shape.columns),
                                                                        Int64(operand.ld)))
        if batchCount > 1 {
            var count = Int32(batchCount), stride = Int64(operand.stride)
            try check("BATCH_COUNT", blas.matrixLayoutSetAttribute(layout, 5, &count, 4))
            try check("STRIDED_BATCH_OFFSET", blas.matrixLayoutSetAttribute(layout, 6, &stride, 8))
        }
        return layout
    }
}
