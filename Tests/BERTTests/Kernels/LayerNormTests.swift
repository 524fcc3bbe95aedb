import BERTKernels
import Testing

@Suite struct LayerNormTests {
    let N = 4, H = 13

    func forward(_ x: [Float], _ g: [Float], _ b: [Float], rows: Int? = nil) -> [Float] {
        let n = rows ?? N
        var y = [Float](repeating: 0, count: n * H), mean = [Float](repeating: 0, count: n), rstd = mean
        LayerNorm.forward(x: x, gamma: g, beta: b, y: &y, mean: &mean, rstd: &rstd, rows: n, features: H, eps: 1e-12)
        return y
    }

    @Test func backwardMatchesFiniteDifferences() {
        var r = TestRandom(4)
        let x = r.normal(N * H), g = r.normal(H).map { 1 + 0.3 * $0 }, b = r.normal(H), dy = r.normal(N * H)
        var y = [Float](repeating: 0, count: N * H), mean = [Float](repeating: 0, count: N), rstd = mean
        LayerNorm.forward(x: x, gamma: g, beta: b, y: &y, mean: &mean, rstd: &rstd, rows: N, features: H, eps: 1e-12)
        // Row 0 by definition.
        let m = x[0..<H].reduce(0, +) / Float(H)
        let v = x[0..<H].reduce(0) { $0 + ($1 - m) * ($1 - m) } / Float(H)
        #expect(abs(y[3] - ((x[3] - m) / v.squareRoot() * g[3] + b[3])) < 1e-5)

        var dx = dy, dg = [Float](repeating: 0, count: H), db = dg
        var scratch = [Float](repeating: 0, count: 2 * H * Parallel.threadCount)
        LayerNorm.backward(dy: dy, x: x, gamma: g, mean: mean, rstd: rstd, dx: &dx, dGamma: &dg, dBeta: &db,
                           rows: N, features: H, scratch: &scratch)   // dx aliases dy's copy: in place
        #expect(finiteDifferenceError(x, analytic: dx, eps: 1e-3) { weightedSum(forward($0, g, b), dy) } < 1e-2)
        #expect(finiteDifferenceError(g, analytic: dg) { weightedSum(forward(x, $0, b), dy) } < 1e-3)
        #expect(finiteDifferenceError(b, analytic: db) { weightedSum(forward(x, g, $0), dy) } < 1e-3)
    }

    @Test func constantRowGivesBetaAndFiniteGradients() {
        let x = [Float](repeating: 2.5, count: H), g = [Float](repeating: 1.5, count: H), b = (0..<H).map { Float($0) }
        let y = forward(x, g, b, rows: 1)
        #expect(y == b)
        var mean: [Float] = [0], rstd: [Float] = [0], dx = [Float](repeating: 1, count: H)
        var y2 = y
        LayerNorm.forward(x: x, gamma: g, beta: b, y: &y2, mean: &mean, rstd: &rstd, rows: 1, features: H, eps: 1e-12)
        var dg = [Float](repeating: 0, count: H), db = dg, scratch = [Float](repeating: 0, count: 2 * H * Parallel.threadCount)
        LayerNorm.backward(dy: [Float](repeating: 1, count: H), x: x, gamma: g, mean: mean, rstd: rstd, dx: &dx,
                           dGamma: &dg, dBeta: &db, rows: 1, features: H, scratch: &scratch)
        #expect(dx.allSatisfy { $0.isFinite && abs($0) < 1e-3 }, "a uniform upstream gradient cancels: \(dx)")
    }
}
