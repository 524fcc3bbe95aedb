import BERTKernels
import Testing

/// The threaded GEMM (blocks of rows or columns, each a single-threaded BLAS call) against a naive product.
@Suite struct GEMMTests {
    struct Case: Sendable, CustomStringConvertible {
        let ta: Bool, tb: Bool, M: Int, N: Int, K: Int
        var description: String { "\(ta ? "T" : "N")\(tb ? "T" : "N") \(M)×\(N)×\(K)" }
    }
    // Large enough to split; M > N splits rows, N > M splits columns; odd sizes leave ragged last blocks.
    static let cases = [false, true].flatMap { ta in [false, true].flatMap { tb in
        [Case(ta: ta, tb: tb, M: 301, N: 37, K: 50), Case(ta: ta, tb: tb, M: 23, N: 517, K: 41)] } }

    @Test(arguments: cases)
    func matchesNaiveProduct(c: Case) {
        var r = TestRandom(12)
        let a = r.normal(c.M * c.K), b = r.normal(c.K * c.N), c0 = r.normal(c.M * c.N)
        let lda = c.ta ? c.M : c.K, ldb = c.tb ? c.K : c.N
        var out = c0
        GEMM.multiply(transposeA: c.ta, transposeB: c.tb, M: c.M, N: c.N, K: c.K, alpha: 0.5, A: a, lda: lda, B: b, ldb: ldb,
                      beta: 2, C: &out, ldc: c.N)
        let expected = (0..<(c.M * c.N)).map { e -> Float in
            let m = e / c.N, n = e % c.N
            let dot = (0..<c.K).reduce(Float(0)) { acc, k in
                acc + (c.ta ? a[k * lda + m] : a[m * lda + k]) * (c.tb ? b[n * ldb + k] : b[k * ldb + n])
            }
            return 0.5 * dot + 2 * c0[e]
        }
        expectClose("C", out, expected, tolerance: 1e-5)
    }
}
