import CBLAS

/// Row-major single-precision GEMM, `C = α·op(A)·op(B) + β·C` with `op(A)` `[M, K]`, `op(B)` `[K, N]`, `C` `[M, N]`,
/// split over the kernels' threads by blocks of C's rows (or columns, when N is the larger side), each block one
/// single-threaded BLAS call.
///
/// Why not BLAS's own threads: its pool busy-waits (`sched_yield`) after every call, and on a 2-core machine that
/// spinning competes with the threads running the elementwise kernels (≈ 10 % of a step measured). One pool for
/// everything keeps the cores for work.
public enum GEMM {
    /// Below this many multiply-adds a single call is cheaper than a fork-join.
    static let parallelThreshold = 1 << 18

    /// With `precision` bf16 the inputs are rounded to bf16 first (`BF16GEMM`).
    public static func multiply(transposeA: Bool, transposeB: Bool, M: Int, N: Int, K: Int, alpha: Float = 1,
                                A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int,
                                beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int, precision: GEMMPrecision = .fp32) {
        guard M > 0, N > 0 else { return }
        if precision == .bf16 {
            return BF16GEMM.multiply(transposeA: transposeA, transposeB: transposeB, M: M, N: N, K: K, alpha: alpha, A: A,
                                     lda: lda, B: B, ldb: ldb, beta: beta, C: C, ldc: ldc)
        }
        let ta = transposeA ? CblasTrans : CblasNoTrans, tb = transposeB ? CblasTrans : CblasNoTrans
        func call(_ m0: Int, _ m: Int, _ n0: Int, _ n: Int) {
            let a = transposeA ? A + m0 : A + m0 * lda
            let b = transposeB ? B + n0 * ldb : B + n0
            cblas_sgemm(CblasRowMajor, ta, tb, Int32(m), Int32(n), Int32(K), alpha, a, Int32(lda), b, Int32(ldb),
                        beta, C + m0 * ldc + n0, Int32(ldc))
        }
        if Parallel.threadCount == 1 || M * N * K < parallelThreshold {
            call(0, M, 0, N)
        } else if M >= N {
            // Row blocks in multiples of 16 keep each call's panels aligned with the micro-kernel.
            Parallel.forChunks((M + 15) / 16) { _, blocks in
                let m0 = blocks.lowerBound * 16
                call(m0, min(M, blocks.upperBound * 16) - m0, 0, N)
            }
        } else {
            Parallel.forChunks((N + 15) / 16) { _, blocks in
                let n0 = blocks.lowerBound * 16
                call(0, M, n0, min(N, blocks.upperBound * 16) - n0)
            }
        }
    }

    /// One single-threaded BLAS call (or bf16 product), for kernels that already run on a worker thread (attention's
    /// per-head products).
    @inline(__always)
    static func serial(transposeA: Bool, transposeB: Bool, M: Int, N: Int, K: Int, alpha: Float = 1,
                       A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int, beta: Float,
                       C: UnsafeMutablePointer<Float>, ldc: Int, precision: GEMMPrecision = .fp32) {
        if precision == .bf16 {
            return BF16GEMM.serial(transposeA: transposeA, transposeB: transposeB, M: M, N: N, K: K, alpha: alpha, A: A,
                                   lda: lda, B: B, ldb: ldb, beta: beta, C: C, ldc: ldc)
        }
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(M), Int32(N), Int32(K), alpha, A, Int32(lda), B, Int32(ldb), beta, C, Int32(ldc))
    }
}
