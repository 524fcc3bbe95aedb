@testable import BERTKernels
import CBERTShared
import Testing

/// The bf16 GEMM on AMX tiles against products of bf16-rounded inputs summed in Double, and its portable path
/// against the same; the rounding against the GPU kernels' own bf16 function.
@Suite struct BF16GEMMTests {
    struct Case: Sendable, CustomStringConvertible {
        let ta: Bool, tb: Bool, M: Int, N: Int, K: Int, alpha: Float, beta: Float
        var description: String { "\(ta ? "T" : "N")\(tb ? "T" : "N") \(M)×\(N)×\(K) α \(alpha) β \(beta)" }
    }
    // Ragged sizes (partial tiles, K not a multiple of 32, more row or more column blocks); whole 32 × 32 blocks with
    // α 1 and β 0 or 1, which accumulate in C itself.
    static let cases = [false, true].flatMap { ta in [false, true].flatMap { tb in
        [Case(ta: ta, tb: tb, M: 301, N: 37, K: 50, alpha: 0.5, beta: 2),
         Case(ta: ta, tb: tb, M: 23, N: 517, K: 77, alpha: 1, beta: 0),
         Case(ta: ta, tb: tb, M: 64, N: 96, K: 160, alpha: 1, beta: 1),
         Case(ta: ta, tb: tb, M: 128, N: 64, K: 33, alpha: 1, beta: 0)] } }

    static func bf16(_ x: Float) -> Float { bs_bf16_to_float(bs_bf16_from_float(x)) }

    /// `alpha · op(A)·op(B) + beta · C` of the bf16-rounded inputs, summed in Double.
    static func expected(_ c: Case, _ a: [Float], _ b: [Float], _ c0: [Float]) -> [Float] {
        let lda = c.ta ? c.M : c.K, ldb = c.tb ? c.K : c.N
        return (0..<(c.M * c.N)).map { e in
            let m = e / c.N, n = e % c.N
            var dot = 0.0
            for k in 0..<c.K {
                let x = bf16(c.ta ? a[k * lda + m] : a[m * lda + k]), y = bf16(c.tb ? b[n * ldb + k] : b[k * ldb + n])
                dot += Double(x) * Double(y)
            }
            return Float(Double(c.alpha) * dot + Double(c.beta) * Double(c0[e]))
        }
    }

    func run(_ c: Case, amx: Bool) -> (out: [Float], expected: [Float]) {
        var r = TestRandom(31)
        let a = r.normal(c.M * c.K), b = r.normal(c.K * c.N), c0 = r.normal(c.M * c.N)
        var out = c0
        BF16GEMM.multiply(transposeA: c.ta, transposeB: c.tb, M: c.M, N: c.N, K: c.K, alpha: c.alpha, A: a,
                          lda: c.ta ? c.M : c.K, B: b, ldb: c.tb ? c.K : c.N, beta: c.beta, C: &out, ldc: c.N, amx: amx)
        return (out, Self.expected(c, a, b, c0))
    }

    @Test(arguments: cases)
    func tilesMatchRoundedProducts(c: Case) {
        guard BF16GEMM.usesAMX else {
            print("note: skipping the AMX bf16 GEMM check (this CPU or kernel offers no AMX-BF16); the portable path is checked")
            return
        }
        let (out, expected) = run(c, amx: true)
        expectClose("C", out, expected, tolerance: 1e-6)
    }

    /// A weight too large for one cache panel (K 4100: three column blocks a panel) against more rows than columns:
    /// the panel loop covers every block once.
    @Test func largeWeightsGoByPanels() {
        guard BF16GEMM.usesAMX else {
            print("note: skipping the AMX bf16 GEMM panel check (this CPU or kernel offers no AMX-BF16)")
            return
        }
        let c = Case(ta: false, tb: true, M: 300, N: 260, K: 4100, alpha: 1, beta: 1)
        let (out, expected) = run(c, amx: true)
        expectClose("C", out, expected, tolerance: 1e-6)
    }

    @Test(arguments: cases)
    func portablePathMatchesRoundedProducts(c: Case) {
        let (out, expected) = run(c, amx: false)
        expectClose("C", out, expected, tolerance: 1e-6)
    }

    /// The single-threaded form (attention's per-head products) gives the threaded one's bits on AMX (blocks of C do
    /// not depend on how threads share them), and its numbers on the portable path.
    @Test(arguments: cases)
    func serialGivesTheThreadedBits(c: Case) {
        var r = TestRandom(44)
        let a = r.normal(c.M * c.K), b = r.normal(c.K * c.N), c0 = r.normal(c.M * c.N)
        var threaded = c0, serial = c0
        let (lda, ldb) = (c.ta ? c.M : c.K, c.tb ? c.K : c.N)
        BF16GEMM.multiply(transposeA: c.ta, transposeB: c.tb, M: c.M, N: c.N, K: c.K, alpha: c.alpha, A: a, lda: lda,
                          B: b, ldb: ldb, beta: c.beta, C: &threaded, ldc: c.N)
        GEMM.serial(transposeA: c.ta, transposeB: c.tb, M: c.M, N: c.N, K: c.K, alpha: c.alpha, A: a, lda: lda, B: b,
                    ldb: ldb, beta: c.beta, C: &serial, ldc: c.N, precision: .bf16)
        if BF16GEMM.usesAMX {
            #expect(threaded.map(\.bitPattern) == serial.map(\.bitPattern))
        } else {
            expectClose("C", serial, threaded, tolerance: 1e-6)
        }
    }

    /// The inputs really are rounded: the same product in fp32 differs by bf16's error, not fp32's.
    @Test func inputsAreRounded() {
        let c = Case(ta: false, tb: true, M: 64, N: 64, K: 256, alpha: 1, beta: 0)
        var r = TestRandom(5)
        let a = r.normal(c.M * c.K), b = r.normal(c.K * c.N)
        var bf = [Float](repeating: 0, count: c.M * c.N), fp = bf
        BF16GEMM.multiply(transposeA: false, transposeB: true, M: c.M, N: c.N, K: c.K, A: a, lda: c.K, B: b, ldb: c.K,
                          beta: 0, C: &bf, ldc: c.N)
        GEMM.multiply(transposeA: false, transposeB: true, M: c.M, N: c.N, K: c.K, A: a, lda: c.K, B: b, ldb: c.K,
                      beta: 0, C: &fp, ldc: c.N)
        let error = relativeError(bf, fp).error
        #expect(error > 1e-4 && error < 3e-2, "bf16 against fp32: \(error)")
    }
}

extension BF16GEMMTests {
    /// op(A) · I is op(A) as the kernels round it: ties go to even, and the largest floats and subnormals round as
    /// the GPU kernels' `bs_bf16_from_float` does (both layouts of A, on each path this machine has) — except that AMX
    /// reads subnormal bf16 inputs as zero, as its instruction is specified to.
    @Test func roundsAsTheGPUKernels() {
        let K = 40, M = 17
        var r = TestRandom(9)
        var a = r.normal(M * K)
        let specials: [Float] = [1 + 0x1p-8, 1 + 0x3p-8, -(1 + 0x1p-8), 0x1p-130, -0x1.8p-135, 0x1.FEFFFEp127,
                                 0x1.FD8p127, 0.1, 0x1.0001p-126, 3.14159265, Float(bitPattern: 0x0001_16C2), -0x1.0181p-3]
        for (i, x) in specials.enumerated() { a[i * 3] = x }
        let identity = (0..<(K * K)).map { $0 / K == $0 % K ? Float(1) : 0 }
        #expect(a.map(Self.bf16).contains { $0.isSubnormal }, "the specials include subnormals")
        for amx in BF16GEMM.usesAMX ? [false, true] : [false] {
            let expected = a.map { x in amx && Self.bf16(x).isSubnormal ? 0 : Self.bf16(x) }
            for transposed in [false, true] {
                let stored = transposed ? (0..<(K * M)).map { a[($0 % M) * K + $0 / M] } : a
                var out = [Float](repeating: .nan, count: M * K)
                BF16GEMM.multiply(transposeA: transposed, transposeB: false, M: M, N: K, K: K, A: stored,
                                  lda: transposed ? M : K, B: identity, ldb: K, beta: 0, C: &out, ldc: K, amx: amx)
                for i in out.indices where out[i] != expected[i] {  // a -0 comes out +0: the sums add +0 products
                    Issue.record("amx \(amx), transposed \(transposed): [\(i)] \(a[i]) gave \(out[i]), not \(expected[i])")
                }
            }
        }
    }
}
