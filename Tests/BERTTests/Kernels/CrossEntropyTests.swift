import BERTKernels
import Foundation
import Testing

@Suite struct CrossEntropyTests {
    // N 3 rows, C 11 classes, row stride 16 (padded columns hold garbage that must be ignored).
    let N = 3, C = 11, ld = 16
    let labels: [Int32] = [4, 0, 10]

    func loss(_ logits: [Float]) -> Double {
        var lse = [Float](repeating: 0, count: N)
        return logits.withUnsafeBufferPointer { x in
            labels.withUnsafeBufferPointer { CrossEntropy.forward(logits: x.baseAddress!, labels: $0, classes: C, ld: ld, logSumExp: &lse).lossSum }
        }
    }

    @Test func forwardMatchesDefinitionAndBackwardMatchesFiniteDifferences() {
        var r = TestRandom(10)
        var logits = r.normal(N * ld, scale: 3)
        for n in 0..<N { for j in C..<ld { logits[n * ld + j] = 50 } }   // would dominate if not ignored
        let expected = (0..<N).reduce(0.0) { acc, n in
            let row = (0..<C).map { Double(logits[n * ld + $0]) }
            return acc + log(row.map(exp).reduce(0, +)) - row[Int(labels[n])]
        }
        #expect(abs(loss(logits) - expected) < 1e-5)

        var grad = logits, lse = [Float](repeating: 0, count: N)
        labels.withUnsafeBufferPointer { labels in
            _ = CrossEntropy.forward(logits: logits, labels: labels, classes: C, ld: ld, logSumExp: &lse)
            CrossEntropy.backward(logitsToGradient: &grad, labels: labels, classes: C, ld: ld, logSumExp: lse, scale: 0.5)
        }
        let real = (0..<(N * ld)).filter { $0 % ld < C }
        let error = finiteDifferenceError(logits, analytic: grad, eps: 1e-3, samples: N * ld) { 0.5 * loss($0) }
        #expect(error < 1e-3)
        #expect((0..<(N * ld)).filter { $0 % ld >= C }.allSatisfy { grad[$0] == 0 }, "padded columns get no gradient")
        #expect(abs(real.reduce(0.0) { $0 + Double(grad[$1]) }) < 1e-5, "each row's gradient sums to 0")
    }

    /// The forward's max and exponential sums and the backward's exponentials on 16 AVX-512 lanes give the 8-lane
    /// kernels' bits, logits far below the row's maximum (exponentials that underflow to 0) included.
    @Test(.enabled(if: AVX512.available, "the CPU has no AVX-512: only the 8-lane kernels run here"))
    func avx512ForwardAndBackwardGiveTheEightLaneBits() {
        let rows = 5, classes = 1_003, ld = 1_008
        var r = TestRandom(11)
        var logits = r.normal(rows * ld, scale: 8)
        for i in stride(from: 3, to: logits.count, by: 41) { logits[i] = -120 }
        let labels = (0..<rows).map { Int32($0 * 191 % classes) }
        var lse = [Float](repeating: 0, count: rows), lse16 = lse, eight = logits, sixteen = logits
        labels.withUnsafeBufferPointer { labels in
            let loss8 = CrossEntropy.forward(logits: logits, labels: labels, classes: classes, ld: ld, logSumExp: &lse,
                                             avx512: false)
            let loss16 = CrossEntropy.forward(logits: logits, labels: labels, classes: classes, ld: ld, logSumExp: &lse16,
                                              avx512: true)
            #expect(loss8 == loss16 && lse.map(\.bitPattern) == lse16.map(\.bitPattern))
            CrossEntropy.backward(logitsToGradient: &eight, labels: labels, classes: classes, ld: ld, logSumExp: lse,
                                  scale: 0.25, avx512: false)
            CrossEntropy.backward(logitsToGradient: &sixteen, labels: labels, classes: classes, ld: ld, logSumExp: lse,
                                  scale: 0.25, avx512: true)
        }
        #expect(eight.map(\.bitPattern) == sixteen.map(\.bitPattern))
        #expect(eight.contains(0) && eight.contains { $0 < 0 }, "some exponentials underflow, the labels' entries go below 0")
    }
}
