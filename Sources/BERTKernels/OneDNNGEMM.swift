import CDNNL

/// One fp32 product by oneDNN's `dnnl_sgemm` on the calling thread, shaped so that every row and column of C gets the
/// same bits however many rows or columns the call computes.
///
/// Why: a batch trimmed to its longest real sequence, and a different split over threads, give the padded run's bits
/// only if a row of C does not depend on M (nor a column on N). oneDNN picks its blocking of K, and for M < 16 a
/// different kernel, by the problem's size, so the same row came out differently at M = 16 and M = 2048 for K above
/// 768, and at every M below 16 (Debian's 2.6, AVX-512 kernels).
/// Calls of at most 768 terms of K (added into C one after another) and of at least 16 rows (a smaller M is computed
/// in a 16-row copy) were row- and column-invariant on every shape of the presets with its AVX-512 kernels; `GEMMTests`
/// checks it. Its AVX2 kernels are not, even so (`GEMM.Engine.keepsRowBits`).
enum OneDNNGEMM {
    /// The most terms of K one library call sums.
    static let depthChunk = 768
    /// The fewest rows one library call computes.
    static let minimumRows = 16

    static func multiply(transposeA: Bool, transposeB: Bool, M: Int, N: Int, K: Int, alpha: Float,
                         A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int, beta: Float,
                         C: UnsafeMutablePointer<Float>, ldc: Int) {
        // A team of one: oneDNN would otherwise start an OpenMP team of every core under each of our threads. The
        // setting belongs to the calling thread, and setting it again costs a store.
        omp_set_num_threads(1)
        guard M < minimumRows else {
            return chunked(transposeA, transposeB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
        }
        // op(A)'s M rows and C's, in buffers of 16 rows laid out as the caller's (the extra rows zero).
        let rows = minimumRows
        let paddedA = UnsafeMutablePointer<Float>.allocate(capacity: rows * K)
        let paddedC = UnsafeMutablePointer<Float>.allocate(capacity: rows * N)
        defer { paddedA.deallocate(); paddedC.deallocate() }
        paddedA.initialize(repeating: 0, count: rows * K)
        paddedC.initialize(repeating: 0, count: rows * N)
        for m in 0..<M {
            if transposeA {
                for k in 0..<K { paddedA[k * rows + m] = A[k * lda + m] }
            } else {
                paddedA.advanced(by: m * K).update(from: A + m * lda, count: K)
            }
            if beta != 0 { paddedC.advanced(by: m * N).update(from: C + m * ldc, count: N) }
        }
        chunked(transposeA, transposeB, rows, N, K, alpha, paddedA, transposeA ? rows : K, B, ldb, beta, paddedC, N)
        for m in 0..<M { (C + m * ldc).update(from: paddedC + m * N, count: N) }
    }

    /// `dnnl_sgemm` over pieces of K of at most `depthChunk` terms, the first scaling C by β, the rest adding to it.
    private static func chunked(_ transposeA: Bool, _ transposeB: Bool, _ M: Int, _ N: Int, _ K: Int, _ alpha: Float,
                                _ A: UnsafePointer<Float>, _ lda: Int, _ B: UnsafePointer<Float>, _ ldb: Int,
                                _ beta: Float, _ C: UnsafeMutablePointer<Float>, _ ldc: Int) {
        let (t, n) = (CChar(UInt8(ascii: "T")), CChar(UInt8(ascii: "N")))
        var k0 = 0
        repeat {
            let depth = min(depthChunk, K - k0)
            let a = transposeA ? A + k0 * lda : A + k0, b = transposeB ? B + k0 : B + k0 * ldb
            let status = dnnl_sgemm(transposeA ? t : n, transposeB ? t : n, Int64(M), Int64(N), Int64(depth), alpha, a,
                                    Int64(lda), b, Int64(ldb), k0 == 0 ? beta : 1, C, Int64(ldc))
            precondition(status == dnnl_success, "dnnl_sgemm failed (status \(status.rawValue)) for \(M)×\(N)×\(depth)")
            k0 += depth
        } while k0 < K
    }
}
