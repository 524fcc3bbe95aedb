@testable import BERTKernels
import Testing

/// The threaded GEMM (blocks of rows or columns, each a single-threaded library call) against a naive product, with
/// each library; and, on oneDNN, each row's bits independent of how many rows (and columns) one call computes.
@Suite struct GEMMTests {
    struct Case: Sendable, CustomStringConvertible {
        let ta: Bool, tb: Bool, M: Int, N: Int, K: Int
        var description: String { "\(ta ? "T" : "N")\(tb ? "T" : "N") \(M)×\(N)×\(K)" }
    }
    // Large enough to split; M > N splits rows, N > M splits columns; odd sizes leave ragged last blocks.
    static let cases = [false, true].flatMap { ta in [false, true].flatMap { tb in
        [Case(ta: ta, tb: tb, M: 301, N: 37, K: 50), Case(ta: ta, tb: tb, M: 23, N: 517, K: 41)] } }

    @Test(arguments: cases, GEMM.Engine.allCases)
    func matchesNaiveProduct(c: Case, engine: GEMM.Engine) {
        var r = TestRandom(12)
        let a = r.normal(c.M * c.K), b = r.normal(c.K * c.N), c0 = r.normal(c.M * c.N)
        let lda = c.ta ? c.M : c.K, ldb = c.tb ? c.K : c.N
        var out = c0
        GEMM.multiply(transposeA: c.ta, transposeB: c.tb, M: c.M, N: c.N, K: c.K, alpha: 0.5, A: a, lda: lda, B: b, ldb: ldb,
                      beta: 2, C: &out, ldc: c.N, engine: engine)
        let expected = (0..<(c.M * c.N)).map { e -> Float in
            let m = e / c.N, n = e % c.N
            let dot = (0..<c.K).reduce(Float(0)) { acc, k in
                acc + (c.ta ? a[k * lda + m] : a[m * lda + k]) * (c.tb ? b[n * ldb + k] : b[k * ldb + n])
            }
            return 0.5 * dot + 2 * c0[e]
        }
        expectClose("C", out, expected, tolerance: 1e-5)
    }

    /// (N, K) of the presets' products over tokens: a classifier's 2 outputs, MiniLM's heads of 32, bert-mini's and
    /// bert-base's layers, bert-large's FFN (K 4096, past one library call's depth).
    static let invarianceShapes = [(2, 384), (32, 128), (256, 1024), (768, 768), (1024, 4096)]

    /// Whether oneDNN runs its AVX-512 kernels here; where not, says that the row-bit checks are skipped.
    static func rowBitsPromised() -> Bool {
        guard GEMM.Engine.onednn.keepsRowBits else {
            print("note: oneDNN runs without AVX-512 kernels here, which do not keep a row's bits across row counts "
                  + "(nothing relies on it there); the row-invariance checks are skipped")
            return false
        }
        return true
    }

    /// Through `OneDNNGEMM`, a row of C has the same bits whether the call computes 1, 7, 16, 40 or 128 rows (and a
    /// column whether it computes a block of 16 columns or all of them): what gives a trimmed batch, and any thread
    /// split, the padded run's bits (`SequenceRows`, `PretrainCommandTests.evalMLMTrimmingChangesNoNumber`). Checked
    /// for oneDNN only: OpenBLAS's kernels do not keep it (its SkylakeX ones fail odd row counts, its Haswell ones most
    /// counts). Promised, and so checked, only with oneDNN's AVX-512 kernels (`GEMM.Engine.keepsRowBits`).
    @Test func eachRowsBitsAreIndependentOfTheCallsSize() {
        guard Self.rowBitsPromised() else { return }
        let engine = GEMM.Engine.onednn
        var r = TestRandom(31)
        let full = 128
        for (N, K) in Self.invarianceShapes {
            let b = r.normal(K * N), a = r.normal(full * K)
            for (ta, tb) in [(false, true), (false, false), (true, false)] {
                let (lda, ldb) = (ta ? full : K, tb ? K : N)
                func product(rows: Int, columns: Range<Int>) -> [Float] {
                    var c = [Float](repeating: .nan, count: full * N)
                    b.withUnsafeBufferPointer { b in
                        let bColumns = tb ? b.baseAddress! + columns.lowerBound * ldb : b.baseAddress! + columns.lowerBound
                        c.withUnsafeMutableBufferPointer { c in
                            GEMM.serial(transposeA: ta, transposeB: tb, M: rows, N: columns.count, K: K, A: a, lda: lda,
                                        B: bColumns, ldb: ldb, beta: 0, C: c.baseAddress! + columns.lowerBound, ldc: N,
                                        engine: engine)
                        }
                    }
                    return (0..<rows).flatMap { m in c[(m * N + columns.lowerBound)..<(m * N + columns.upperBound)] }
                }
                let reference = product(rows: full, columns: 0..<N)
                for rows in [1, 2, 7, 8, 15, 16, 17, 40, 96, 100] {
                    let got = product(rows: rows, columns: 0..<N)
                    #expect(got.map(\.bitPattern) == reference[..<(rows * N)].map(\.bitPattern),
                            "\(engine) \(ta ? "T" : "N")\(tb ? "T" : "N") N \(N) K \(K): rows of a \(rows)-row call")
                }
                for columns in [0..<min(16, N), (N / 2 / 16 * 16)..<N] where columns.count < N {
                    let got = product(rows: full, columns: columns)
                    let expected = (0..<full).flatMap { m in reference[(m * N + columns.lowerBound)..<(m * N + columns.upperBound)] }
                    #expect(got.map(\.bitPattern) == expected.map(\.bitPattern),
                            "\(engine) \(ta ? "T" : "N")\(tb ? "T" : "N") N \(N) K \(K): columns \(columns)")
                }
            }
        }
    }

    /// A weight gradient's sum over tokens gets the same bits when padded tokens (zero gradient rows) are left out:
    /// `Aᵀ·B` over K rows equals it over the first `real` rows when the rest of A is zero (oneDNN, as above).
    @Test func zeroRowsPastTheEndOfTheSumChangeNoBit() {
        guard Self.rowBitsPromised() else { return }
        let engine = GEMM.Engine.onednn
        var r = TestRandom(32)
        let (M, N) = (256, 64)
        for K in [8, 64, 100, 128] {
            for real in [1, K / 2, K - 1] {
                var a = r.normal(K * M)
                for i in (real * M)..<(K * M) { a[i] = 0 }
                let b = r.normal(K * N)
                var padded = [Float](repeating: 0, count: M * N), trimmed = padded
                GEMM.serial(transposeA: true, transposeB: false, M: M, N: N, K: K, A: a, lda: M, B: b, ldb: N, beta: 0,
                            C: &padded, ldc: N, engine: engine)
                GEMM.serial(transposeA: true, transposeB: false, M: M, N: N, K: real, A: a, lda: M, B: b, ldb: N, beta: 0,
                            C: &trimmed, ldc: N, engine: engine)
                #expect(padded.map(\.bitPattern) == trimmed.map(\.bitPattern), "\(engine) K \(K), \(real) real rows")
            }
        }
    }
}
