/// One cuBLASLt matmul, described by exactly the descriptor attributes the CUDA backend sets, in cuBLASLt's own
/// column-major terms: `D = alpha · op(A) · op(B) + beta · C [+ bias]`, with `op(A)` `m × k`, `op(B)` `k × n`, `C` and
/// `D` `m × n` (C and D share address, type and layout: the backend always accumulates in place), repeated over
/// `batchCount` matrices `stride` elements apart. Compute type is always CUBLAS_COMPUTE_32F (fp32 accumulation, no
/// TF32), scale type fp32. The real runtime turns it into descriptors; the emulated one interprets it.
public struct MatmulDescription: Sendable, Equatable {
    /// `cudaDataType_t` of an operand: what the emulator reads and what the layouts declare.
    public enum ElementType: Int32, Sendable {
        case fp32 = 0    // CUDA_R_32F
        case bf16 = 14   // CUDA_R_16BF

        /// Bytes per element.
        public var size: Int { self == .fp32 ? 4 : 2 }
    }

    /// `cublasLtEpilogue_t`: nothing, or a bias vector of `m` floats added to every column of D.
    public enum Epilogue: Equatable, Sendable {
        case none
        case bias(UInt64)

        /// CUBLASLT_EPILOGUE_DEFAULT or CUBLASLT_EPILOGUE_BIAS.
        public var code: UInt32 { self == .none ? 1 : 4 }
    }

    /// One operand: its device address, element type, leading dimension and batch stride (elements).
    public struct Operand: Sendable, Equatable {
        public var address: UInt64
        public var type: ElementType
        public var ld: Int
        public var stride: Int

        public init(address: UInt64, type: ElementType = .fp32, ld: Int, stride: Int = 0) {
            (self.address, self.type, self.ld, self.stride) = (address, type, ld, stride)
        }
    }

    /// CUBLASLT_MATMUL_DESC_TRANSA / TRANSB (CUBLAS_OP_T when true).
    public var transposeA: Bool
    public var transposeB: Bool
    public var m: Int
    public var n: Int
    public var k: Int
    /// A as stored: `m × k` (`k × m` when transposed), column-major.
    public var a: Operand
    /// B as stored: `k × n` (`n × k` when transposed), column-major.
    public var b: Operand
    /// C = D, `m × n` column-major, fp32.
    public var c: Operand
    public var alpha: Float
    public var beta: Float
    public var batchCount: Int
    public var epilogue: Epilogue

    public init(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, a: Operand, b: Operand, c: Operand,
                alpha: Float = 1, beta: Float = 0, batchCount: Int = 1, epilogue: Epilogue = .none) {
        (self.transposeA, self.transposeB, self.m, self.n, self.k) = (transposeA, transposeB, m, n, k)
        (self.a, self.b, self.c, self.alpha, self.beta) = (a, b, c, alpha, beta)
        (self.batchCount, self.epilogue) = (batchCount, epilogue)
    }

    /// The stored shape (rows, columns) of A, B and C as the matrix layouts declare them.
    public var shapeA: (rows: Int, columns: Int) { transposeA ? (k, m) : (m, k) }
    public var shapeB: (rows: Int, columns: Int) { transposeB ? (n, k) : (k, n) }
    public var shapeC: (rows: Int, columns: Int) { (m, n) }
}
