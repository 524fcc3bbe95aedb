@testable import BERTKernels
import Testing

/// Attention's products in blocks of one shape: right against a naive product (whole blocks, partial ones, β), and a
/// sequence cut from a longer one gets, at its real positions, the longer one's bits forward and backward — with every
/// GEMM library and CPU, since each element comes from a call of the same shape at the same place.
@Suite struct AttentionTilesTests {
    struct Case: Sendable, CustomStringConvertible {
        let ta: Bool, tb: Bool, M: Int, N: Int, K: Int, sequence: AttentionTiles.Sequence, beta: Float
        var description: String { "\(ta ? "T" : "N")\(tb ? "T" : "N") \(M)×\(N)×\(K) \(sequence) β \(beta)" }
    }

    static let cases = [
        Case(ta: false, tb: true, M: 300, N: 300, K: 64, sequence: .columns, beta: 0),    // q·kᵀ, partial last blocks
        Case(ta: false, tb: true, M: 256, N: 128, K: 32, sequence: .columns, beta: 0),    // whole blocks only
        Case(ta: false, tb: true, M: 5, N: 7, K: 3, sequence: .columns, beta: 0.5),       // one partial block, β
        Case(ta: false, tb: false, M: 200, N: 64, K: 300, sequence: .sum, beta: 0),       // P·v
        Case(ta: true, tb: false, M: 130, N: 32, K: 260, sequence: .sum, beta: 0),        // P̃ᵀ·dC, dZᵀ·q
        Case(ta: true, tb: false, M: 6, N: 4, K: 9, sequence: .sum, beta: 1),
        Case(ta: false, tb: true, M: 140, N: 140, K: 200, sequence: .columns, beta: 0),  // heads wider than a block
        Case(ta: false, tb: false, M: 140, N: 150, K: 140, sequence: .sum, beta: 0),
    ]

    @Test(arguments: cases)
    func matchesNaiveProduct(c: Case) {
        var r = TestRandom(21)
        let A = r.normal(c.M * c.K), B = r.normal(c.K * c.N), C0 = r.normal(c.M * c.N)
        var C = C0, scratch = [Float](repeating: .nan, count: AttentionTiles.scratchCount)
        AttentionTiles.product(transposeA: c.ta, transposeB: c.tb, M: c.M, N: c.N, K: c.K, sequence: c.sequence, alpha: 0.7,
                               A: A, lda: c.ta ? c.M : c.K, B: B, ldb: c.tb ? c.K : c.N, beta: c.beta, C: &C, ldc: c.N,
                               precision: .fp32, scratch: &scratch)
        var expected = [Float](repeating: 0, count: c.M * c.N)
        for i in 0..<c.M { for j in 0..<c.N {
            var sum = 0.0
            for k in 0..<c.K {
                sum += Double(c.ta ? A[k * c.M + i] : A[i * c.K + k]) * Double(c.tb ? B[j * c.K + k] : B[k * c.N + j])
            }
            expected[i * c.N + j] = Float(0.7 * sum + Double(c.beta) * Double(C0[i * c.N + j]))
        } }
        expectClose("\(c)", C, expected, tolerance: 1e-5)
    }

    /// The rows and columns of a product over a sequence cut from a longer one (the rest of the sum zero) have the
    /// longer one's bits, whatever the library: q·kᵀ and the products that sum over positions.
    @Test(arguments: [(384, 152), (512, 300), (128, 40), (136, 129)])
    func paddedBlocksKeepACutSequencesBits(shape: (Int, Int)) {
        let (S, n) = shape, D = 64
        var r = TestRandom(31)
        let x = r.normal(S * S), y = r.normal(S * D), z = r.normal(S * D)
        func columns(_ L: Int) -> [Float] {
            var C = [Float](repeating: 0, count: L * L), scratch = [Float](repeating: 0, count: AttentionTiles.scratchCount)
            AttentionTiles.product(transposeA: false, transposeB: true, M: L, N: L, K: D, sequence: .columns, A: y, lda: D,
                                   B: z, ldb: D, beta: 0, C: &C, ldc: L, precision: .fp32, scratch: &scratch)
            return C
        }
        // Sums over L positions of x's first L columns (NN) or rows (TN); past n they are zero in the longer run.
        func sum(_ L: Int, transposeA: Bool) -> [Float] {
            let a = (0..<(L * L)).map { e in (transposeA ? e / L : e % L) < n ? x[e / L * S + e % L] : 0 }
            var C = [Float](repeating: 0, count: L * D), scratch = [Float](repeating: 0, count: AttentionTiles.scratchCount)
            AttentionTiles.product(transposeA: transposeA, transposeB: false, M: L, N: D, K: L, sequence: .sum, A: a, lda: L,
                                   B: y, ldb: D, beta: 0, C: &C, ldc: D, precision: .fp32, scratch: &scratch)
            return C
        }
        /// Elements of the first n rows and `compared` columns that differ.
        func differing(_ long: [Float], width: Int, _ short: [Float], shortWidth: Int, compared: Int) -> Int {
            (0..<n).reduce(0) { count, i in
                count + (0..<compared).filter { long[i * width + $0] != short[i * shortWidth + $0] }.count
            }
        }
        #expect(differing(columns(S), width: S, columns(n), shortWidth: n, compared: n) == 0, "q·kᵀ")
        for transposeA in [false, true] {
            #expect(differing(sum(S, transposeA: transposeA), width: D, sum(n, transposeA: transposeA), shortWidth: D,
                              compared: D) == 0, "sum, transposeA \(transposeA)")
        }
    }

    /// Sequences of `real` and `real − 5` tokens in a batch of length S, and the same batch cut to `cut` positions.
    @Test(arguments: [(512, 300, 304, 64), (384, 150, 152, 32), (128, 40, 40, 64), (136, 129, 136, 64)])
    func cutSequencesKeepTheirBits(shape: (Int, Int, Int, Int)) {
        let (S, real, cut, D) = shape, B = 2, A = 2, H = A * D, rng = CounterRNG(seed: 4, stream: 9)
        var r = TestRandom(5)
        let qkv = r.normal(B * S * 3 * H), lengths = [real, real - 5]
        // Queries past a row's length are padding: no loss reaches them, so their context gradient is zero.
        let dContext = r.normal(B * S * H).enumerated().map { $0.offset / H % S < lengths[$0.offset / H / S] ? $0.element : 0 }
        func leading(_ x: [Float], width: Int, _ n: Int) -> [Float] {
            (0..<B).flatMap { b in x[(b * S * width)..<((b * S + n) * width)] }
        }
        func run(_ n: Int, training: Bool) -> (context: [Float], dQKV: [Float]) {
            let bias = (0..<(B * n)).map { $0 % n < lengths[$0 / n] ? Float(0) : -10000 }
            let q = leading(qkv, width: 3 * H, n), dC = leading(dContext, width: H, n)
            var probs = [Float](repeating: 0, count: B * A * n * n), context = [Float](repeating: 0, count: B * n * H)
            var dQKV = [Float](repeating: 0, count: B * n * 3 * H)
            var scratch = [Float](repeating: 0, count: Attention.scratchCount(seqLength: n))
            let p: Float = training ? 0.1 : 0
            probs.withUnsafeMutableBufferPointer { P in
                Attention.forward(qkv: q, keyBias: bias, probs: training ? P.baseAddress! : nil, context: &context, batch: B,
                                  seqLength: n, heads: A, headSize: D, dropout: p, rng: rng, streamLength: S, scratch: &scratch)
            }
            if training {
                Attention.backward(dContext: dC, qkv: q, probs: probs, dQKV: &dQKV, batch: B, seqLength: n, heads: A,
                                   headSize: D, dropout: p, rng: rng, streamLength: S, scratch: &scratch)
            }
            return (context, dQKV)
        }
        for training in [false, true] {
            let full = run(S, training: training), trimmed = run(cut, training: training)
            func real(_ x: [Float], width: Int, _ n: Int) -> [Float] {
                (0..<B).flatMap { b in x[(b * n * width)..<((b * n + lengths[b]) * width)] }
            }
            func differing(_ a: [Float], _ b: [Float]) -> Int { zip(a, b).filter { $0 != $1 }.count }
            #expect(differing(real(trimmed.context, width: H, cut), real(full.context, width: H, S)) == 0,
                    "context, training \(training)")
            if training {
                #expect(differing(real(trimmed.dQKV, width: 3 * H, cut), real(full.dQKV, width: 3 * H, S)) == 0, "dQKV")
                #expect(full.dQKV.contains { $0 != 0 })
            }
        }
    }
}
