import BERTKernels
import Foundation
import Testing

@Suite struct ActivationTests {
    static let kinds: [Activation] = [.geluErf, .geluTanh, .relu, .tanh]

    func forward(_ kind: Activation, _ x: [Float]) -> [Float] {
        var y = x
        kind.forward(x, &y, count: x.count)
        return y
    }

    /// The definitions in Double: the values PyTorch's `F.gelu(x)`, `F.gelu(x, approximate="tanh")`, `relu`, `tanh` give.
    func reference(_ kind: Activation, _ x: Double) -> Double {
        switch kind {
        case .geluErf: return 0.5 * x * (1 + erf(x / 2.0.squareRoot()))
        case .geluTanh: return 0.5 * x * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
        case .relu: return max(0, x)
        case .tanh: return Foundation.tanh(x)
        }
    }

    /// The inference form with a row bias folded in equals adding the bias first (exactly: the same sum is formed).
    @Test(arguments: kinds)
    func biasedForwardEqualsAddingTheBiasFirst(kind: Activation) {
        var r = TestRandom(4)
        let rows = 3, features = 13, x = r.normal(rows * features, scale: 3), bias = r.normal(features)
        var y = [Float](repeating: .nan, count: x.count)
        kind.forward(x, bias: bias, &y, rows: rows, features: features)
        #expect(y == forward(kind, x.indices.map { x[$0] + bias[$0 % features] }))
    }

    @Test(arguments: kinds)
    func forwardMatchesDefinition(kind: Activation) {
        let x: [Float] = (-60...60).map { Float($0) / 10 } + [-300, -30, -9, 9, 30, 300, 0]
        let y = forward(kind, x)
        for (xi, yi) in zip(x, y) {
            let e = reference(kind, Double(xi))
            #expect(abs(Double(yi) - e) <= 3e-7 * max(1, abs(e)), "\(kind)(\(xi)) = \(yi), expected \(e)")
        }
    }

    @Test(arguments: kinds)
    func backwardMatchesFiniteDifferences(kind: Activation) {
        var r = TestRandom(5)
        // Keep relu's samples away from its kink at 0.
        let x = r.normal(37, scale: 2).map { kind == .relu && abs($0) < 0.05 ? $0 + 0.1 : $0 }, dy = r.normal(37)
        var dx = [Float](repeating: 0, count: 37)
        kind.backward(dy, x: x, &dx, count: 37)
        #expect(finiteDifferenceError(x, analytic: dx, eps: 1e-3) { weightedSum(forward(kind, $0), dy) } < 5e-3)
    }

    @Test(arguments: kinds)
    func fusedValueAndDerivativeMatchTheSeparateKernels(kind: Activation) {
        var r = TestRandom(13)
        let x = r.normal(29, scale: 3), ones = [Float](repeating: 1, count: 29), dy = r.normal(29)
        var y = x, d = x, dx = x, dx2 = x
        kind.valueAndDerivative(x, &y, &d, count: 29)
        kind.backward(ones, x: x, &dx, count: 29)
        #expect(y == forward(kind, x) && d == dx)
        Activation.backward(dy, derivative: d, &dx2, count: 29)
        kind.backward(dy, x: x, &dx, count: 29)
        #expect(dx2 == dx)
    }

    @Test(arguments: kinds)
    func extremeInputsHaveExactLimits(kind: Activation) {
        let x: [Float] = [-300, 300]
        var dx = [Float](repeating: 0, count: 2)
        kind.backward([1, 1], x: x, &dx, count: 2)
        let expected: [Float] = kind == .tanh ? [0, 0] : [0, 1]
        #expect(abs(dx[0] - expected[0]) < 1e-30 && abs(dx[1] - expected[1]) < 1e-30, "\(dx)")
    }

    /// The 16-lane AVX-512 GELUs give the 8-lane kernels' bits in all four passes: inputs across the range (both
    /// clamps of the exponential, ±0, tiny and huge values, NaN), counts that leave a tail of a vector, aliasing.
    @Test(.enabled(if: AVX512.available, "the CPU has no AVX-512: only the 8-lane kernels run here"),
          arguments: [Activation.geluErf, .geluTanh])
    func avx512GELUGivesTheEightLaneBits(kind: Activation) {
        var r = TestRandom(9)
        var x = r.normal(5_003, scale: 4)
        let special: [Float] = [0, -0, 1e-30, -1e-30, 1e-8, 12, -12, 30, -30, 200, -200, 1e30, -1e30, .infinity,
                                -.infinity, .nan, 87.3, -87.3, 88.3, 130, -130]
        for (i, v) in special.enumerated() { x[7 * i + 1] = v }
        let dy = r.normal(x.count), rows = 7, features = 701, bias = r.normal(features)
        func same(_ a: [Float], _ b: [Float], _ what: String) {
            let differing = zip(a, b).filter { !($0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN)) }.count
            #expect(differing == 0, "\(kind) \(what): \(differing) of \(a.count) differ")
        }
        for count in [x.count, 16, 37, 3] {
            let input = Array(x[..<count])
            var y8 = [Float](repeating: 9, count: count), y16 = y8, d8 = y8, d16 = y8, g8 = y8, g16 = Array(dy[..<count])
            kind.forward(input, &y8, count: count, avx512: false)
            kind.forward(input, &y16, count: count, avx512: true)
            same(y8, y16, "forward, \(count)")
            kind.valueAndDerivative(input, &y8, &d8, count: count, avx512: false)
            kind.valueAndDerivative(input, &y16, &d16, count: count, avx512: true)
            same(y8, y16, "value, \(count)")
            same(d8, d16, "derivative, \(count)")
            kind.backward(Array(dy[..<count]), x: input, &g8, count: count, avx512: false)
            kind.backward(g16, x: input, &g16, count: count, avx512: true)   // dx aliasing dy
            same(g8, g16, "backward, \(count)")
        }
        var b8 = [Float](repeating: 0, count: rows * features), b16 = b8
        kind.forward(x, bias: bias, &b8, rows: rows, features: features, avx512: false)
        kind.forward(x, bias: bias, &b16, rows: rows, features: features, avx512: true)
        same(b8, b16, "forward with a bias")
    }
}
