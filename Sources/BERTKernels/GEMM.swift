import CBLAS
import CDNNL
import Foundation

/// Row-major single-precision GEMM, `C = α·op(A)·op(B) + β·C` with `op(A)` `[M, K]`, `op(B)` `[K, N]`, `C` `[M, N]`,
/// split over the kernels' threads by blocks of C's rows (or columns, when N is the larger side), each block one
/// single-threaded library call.
///
/// Why not the library's own threads: OpenBLAS's pool busy-waits (`sched_yield`) after every call, and on a 2-core
/// machine that spinning competes with the threads running the elementwise kernels (≈ 10 % of a step measured);
/// oneDNN would bring a second pool, OpenMP's. One pool for everything keeps the cores for work.
public enum GEMM {
    /// The library behind the fp32 products.
    public enum Engine: String, Sendable, CaseIterable {
        /// oneDNN's `dnnl_sgemm` (through `OneDNNGEMM`): faster than OpenBLAS 0.3.21 on most training and inference
        /// shapes of bert-mini and bert-base, one call per thread (`bench/gemm_libraries.c`, README).
        case onednn
        /// OpenBLAS's `cblas_sgemm`.
        case openblas

        /// `BERT_GEMM` (onednn or openblas) where the environment sets it, else oneDNN on AVX-512 CPUs and OpenBLAS on
        /// the others: with AVX2 kernels the two ran even, and neither keeps a row's bits (`keepsRowBits`).
        public static let selected: Engine = ProcessInfo.processInfo.environment["BERT_GEMM"].flatMap(Engine.init)
            ?? (BLASCore.cpuVectorISA == 2 ? .onednn : .openblas)

        /// Whether this library, on this CPU, gives a row of C the same bits whatever the call's row count: what lets a
        /// batch trimmed to its longest sequence, or packed, give the padded (unpacked) batch's bits. oneDNN's AVX-512
        /// kernels do through `OneDNNGEMM` (`GEMMTests`). Its AVX2 kernels do not (`DNNL_MAX_CPU_ISA=AVX2`: a row of a
        /// 2048-row call against a 136-row one, K = 256, or a 272-row one, K = 768), nor do OpenBLAS's (SkylakeX's at
        /// odd row counts, Haswell's at most), so there such batches agree with the padded ones to rounding only.
        public var keepsRowBits: Bool {
            let avx512 = dnnl_cpu_isa_avx512_core.rawValue
            return self == .onednn && dnnl_get_effective_cpu_isa().rawValue & avx512 == avx512
        }
    }

    /// Below this many multiply-adds a single call is cheaper than a fork-join.
    static let parallelThreshold = 1 << 18

    /// With `precision` bf16 the inputs are rounded to bf16 first (`BF16GEMM`).
    public static func multiply(transposeA: Bool, transposeB: Bool, M: Int, N: Int, K: Int, alpha: Float = 1,
                                A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int,
                                beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int, precision: GEMMPrecision = .fp32,
                                engine: Engine = .selected) {
        guard M > 0, N > 0 else { return }
        if precision == .bf16 {
            return BF16GEMM.multiply(transposeA: transposeA, transposeB: transposeB, M: M, N: N, K: K, alpha: alpha, A: A,
                                     lda: lda, B: B, ldb: ldb, beta: beta, C: C, ldc: ldc)
        }
        func call(_ m0: Int, _ m: Int, _ n0: Int, _ n: Int) {
            let a = transposeA ? A + m0 : A + m0 * lda
            let b = transposeB ? B + n0 * ldb : B + n0
            single(engine, transposeA, transposeB, m, n, K, alpha, a, lda, b, ldb, beta, C + m0 * ldc + n0, ldc)
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

    /// `C = x · Wᵀ + β·C` (`x` `[M, K]`, C `[M, N]`, both dense) with W packed once (`OneDNNPackedWeight`), split over
    /// the threads by blocks of 16 rows: each thread reads the whole packed weight, where the unpacked product splits
    /// columns when N > M — that would need a packing per split. The same bits as the unpacked product.
    public static func multiply(M: Int, x: UnsafePointer<Float>, packed w: OneDNNPackedWeight, beta: Float,
                                C: UnsafeMutablePointer<Float>) {
        let N = w.outFeatures, K = w.inFeatures
        guard M > 0 else { return }
        if Parallel.threadCount == 1 || M * N * K < parallelThreshold {
            return OneDNNGEMM.multiply(M: M, x: x, ldx: K, packed: w, beta: beta, C: C, ldc: N)
        }
        Parallel.forChunks((M + 15) / 16) { _, blocks in
            let m0 = blocks.lowerBound * 16, m1 = min(M, blocks.upperBound * 16)
            OneDNNGEMM.multiply(M: m1 - m0, x: x + m0 * K, ldx: K, packed: w, beta: beta, C: C + m0 * N, ldc: N)
        }
    }

    /// One single-threaded BLAS call (or bf16 product), for kernels that already run on a worker thread (attention's
    /// per-head products).
    @inline(__always)
    static func serial(transposeA: Bool, transposeB: Bool, M: Int, N: Int, K: Int, alpha: Float = 1,
                       A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int, beta: Float,
                       C: UnsafeMutablePointer<Float>, ldc: Int, precision: GEMMPrecision = .fp32,
                       engine: Engine = .selected) {
        if precision == .bf16 {
            return BF16GEMM.serial(transposeA: transposeA, transposeB: transposeB, M: M, N: N, K: K, alpha: alpha, A: A,
                                   lda: lda, B: B, ldb: ldb, beta: beta, C: C, ldc: ldc)
        }
        single(engine, transposeA, transposeB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
    }

    /// One fp32 product on the calling thread.
    @inline(__always)
    private static func single(_ engine: Engine, _ transposeA: Bool, _ transposeB: Bool, _ M: Int, _ N: Int, _ K: Int,
                               _ alpha: Float, _ A: UnsafePointer<Float>, _ lda: Int, _ B: UnsafePointer<Float>,
                               _ ldb: Int, _ beta: Float, _ C: UnsafeMutablePointer<Float>, _ ldc: Int) {
        switch engine {
        case .onednn:
            OneDNNGEMM.multiply(transposeA: transposeA, transposeB: transposeB, M: M, N: N, K: K, alpha: alpha, A: A,
                                lda: lda, B: B, ldb: ldb, beta: beta, C: C, ldc: ldc)
        case .openblas:
            cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                        Int32(M), Int32(N), Int32(K), alpha, A, Int32(lda), B, Int32(ldb), beta, C, Int32(ldc))
        }
    }
}
