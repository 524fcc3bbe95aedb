import BERTKernels
import Testing

@Suite struct LinearTests {
    // N 5 rows, I 7 in, O 6 out: none a multiple of 8, to exercise the vector tails.
    let N = 5, I = 7, O = 6

    func forward(_ x: [Float], _ w: [Float], _ b: [Float]) -> [Float] {
        var y = [Float](repeating: 0, count: N * O)
        Linear.forward(x: x, weight: w, bias: b, y: &y, rows: N, inFeatures: I, outFeatures: O)
        return y
    }

    @Test func forwardMatchesDefinition() {
        var r = TestRandom(1)
        let x = r.normal(N * I), w = r.normal(O * I), b = r.normal(O)
        let y = forward(x, w, b)
        let expected = (0..<(N * O)).map { e -> Float in
            let n = e / O, o = e % O
            return b[o] + (0..<I).reduce(0) { $0 + x[n * I + $1] * w[o * I + $1] }
        }
        expectClose("y", y, expected, tolerance: 1e-6)
    }

    /// A forward without bias followed by `addBias` with a residual equals the biased forward plus the residual,
    /// exactly (the same roundings in the same order).
    @Test func deferredBiasEqualsTheBiasedForward() {
        var r = TestRandom(3)
        let x = r.normal(N * I), w = r.normal(O * I), b = r.normal(O), residual = r.normal(N * O)
        var y = [Float](repeating: .nan, count: N * O)
        Linear.forward(x: x, weight: w, bias: nil, y: &y, rows: N, inFeatures: I, outFeatures: O)
        var out = [Float](repeating: .nan, count: N * O)
        Linear.addBias(y, bias: b, residual: residual, &out, rows: N, outFeatures: O)
        #expect(out == zip(forward(x, w, b), residual).map { $0 + $1 })
    }

    @Test func backwardMatchesFiniteDifferences() {
        var r = TestRandom(2)
        let x = r.normal(N * I), w = r.normal(O * I), b = r.normal(O), dy = r.normal(N * O)
        var dx = [Float](repeating: 9, count: N * I), dW = [Float](repeating: 0, count: O * I), db = [Float](repeating: 0, count: O)
        Linear.backward(dy: dy, x: x, weight: w, dx: &dx, dWeight: &dW, dBias: &db, rows: N, inFeatures: I, outFeatures: O)
        #expect(finiteDifferenceError(x, analytic: dx) { weightedSum(forward($0, w, b), dy) } < 1e-3)
        #expect(finiteDifferenceError(w, analytic: dW) { weightedSum(forward(x, $0, b), dy) } < 1e-3)
        #expect(finiteDifferenceError(b, analytic: db) { weightedSum(forward(x, w, $0), dy) } < 1e-3)

        // Parameter gradients accumulate; the input gradient accumulates only when asked to.
        var dx2 = dx
        Linear.backward(dy: dy, x: x, weight: w, dx: &dx2, dWeight: &dW, dBias: &db, rows: N, inFeatures: I,
                        outFeatures: O, accumulateInput: true)
        expectClose("dx accumulated", dx2, dx.map { 2 * $0 }, tolerance: 1e-6)
        expectClose("db accumulated", db, (0..<O).map { o in 2 * (0..<N).reduce(0) { $0 + dy[$1 * O + o] } }, tolerance: 1e-6)
    }

    /// The bias gradient's column sums, 32 columns per pass, give each column's sum in row order exactly, added once to
    /// what was there — whole groups of 32 columns and a ragged tail.
    @Test func columnSumsAreEachColumnInRowOrder() {
        var r = TestRandom(14)
        let rows = 203, columns = 77, m = r.normal(rows * columns), start = r.normal(columns)
        var out = start
        Linear.addColumnSums(m, rows: rows, columns: columns, into: &out)
        let expected = (0..<columns).map { c in start[c] + (0..<rows).reduce(Float(0)) { $0 + m[$1 * columns + c] } }
        #expect(out == expected)
    }
}

