@testable import BERTKernels
import Foundation
import Testing

@Suite struct AttentionTests {
    struct Shape: CustomStringConvertible, Sendable {
        let B: Int, S: Int, A: Int, D: Int, padded: [Int] /* real length per batch row */, p: Float
        var description: String { "B\(B) S\(S) A\(A) D\(D) lengths \(padded) dropout \(p)" }
        var H: Int { A * D }
        var keyBias: [Float] { (0..<(B * S)).map { $0 % S < padded[$0 / S] ? 0 : -10000 } }
    }

    static let shapes = [
        Shape(B: 2, S: 5, A: 2, D: 3, padded: [5, 3], p: 0),
        Shape(B: 2, S: 6, A: 3, D: 4, padded: [4, 6], p: 0.2),
        Shape(B: 1, S: 1, A: 2, D: 3, padded: [1], p: 0),            // batch 1, sequence 1
        Shape(B: 2, S: 4, A: 1, D: 5, padded: [1, 1], p: 0.1),       // everything padded but [CLS]
    ]
    static let rng = CounterRNG(seed: 3, stream: 11)

    func forward(_ s: Shape, _ qkv: [Float]) -> (context: [Float], probs: [Float]) {
        var probs = [Float](repeating: 0, count: s.B * s.A * s.S * s.S), context = [Float](repeating: 0, count: s.B * s.S * s.H)
        var scratch = [Float](repeating: 0, count: Attention.scratchCount(seqLength: s.S))
        Attention.forward(qkv: qkv, keyBias: s.keyBias, probs: &probs, context: &context, batch: s.B, seqLength: s.S,
                          heads: s.A, headSize: s.D, dropout: s.p, rng: Self.rng, scratch: &scratch)
        return (context, probs)
    }

    @Test(arguments: shapes)
    func forwardMatchesDefinition(s: Shape) {
        var r = TestRandom(8)
        let qkv = r.normal(s.B * s.S * 3 * s.H)
        let (context, probs) = forward(s, qkv)
        // Softmax over real keys only, computed naively in Double (dropout-free shapes check the context too).
        for b in 0..<s.B { for a in 0..<s.A { for i in 0..<s.S {
            let q = (0..<s.D).map { Double(qkv[(b * s.S + i) * 3 * s.H + a * s.D + $0]) }
            var z = (0..<s.S).map { j -> Double in
                let k = (0..<s.D).map { Double(qkv[(b * s.S + j) * 3 * s.H + s.H + a * s.D + $0]) }
                return zip(q, k).reduce(0) { $0 + $1.0 * $1.1 } / Double(s.D).squareRoot() + Double(s.keyBias[b * s.S + j])
            }
            let m = z.max()!
            z = z.map { exp($0 - m) }
            let sum = z.reduce(0, +)
            for j in 0..<s.S {
                let got = Double(probs[((b * s.A + a) * s.S + i) * s.S + j])
                #expect(abs(got - z[j] / sum) < 1e-6)
                if j >= s.padded[b] { #expect(got == 0, "padded key \(j) gets no attention") }
            }
            if s.p == 0 {
                for d in 0..<s.D {
                    let e = (0..<s.S).reduce(0.0) { $0 + z[$1] / sum * Double(qkv[(b * s.S + $1) * 3 * s.H + 2 * s.H + a * s.D + d]) }
                    #expect(abs(Double(context[(b * s.S + i) * s.H + a * s.D + d]) - e) < 1e-5)
                }
            }
        } } }
    }

    /// Inference (no probabilities kept, normalised through the context rows) gives the training path's context
    /// without dropout, to rounding.
    @Test(arguments: shapes.filter { $0.p == 0 })
    func inferenceMatchesTheTrainingForward(s: Shape) {
        var r = TestRandom(10)
        let qkv = r.normal(s.B * s.S * 3 * s.H)
        let (expected, _) = forward(s, qkv)
        var context = [Float](repeating: .nan, count: s.B * s.S * s.H)
        var scratch = [Float](repeating: 0, count: Attention.scratchCount(seqLength: s.S))
        Attention.forward(qkv: qkv, keyBias: s.keyBias, probs: nil, context: &context, batch: s.B, seqLength: s.S,
                          heads: s.A, headSize: s.D, dropout: 0, rng: Self.rng, scratch: &scratch)
        for (got, want) in zip(context, expected) { #expect(abs(got - want) <= 1e-6 * max(1, abs(want)), "\(got) vs \(want)") }
    }

    @Test(arguments: shapes)
    func backwardMatchesFiniteDifferences(s: Shape) {
        var r = TestRandom(9)
        let qkv = r.normal(s.B * s.S * 3 * s.H), dC = r.normal(s.B * s.S * s.H)
        let (_, probs) = forward(s, qkv)
        var dQKV = [Float](repeating: 0, count: qkv.count)
        var scratch = [Float](repeating: 0, count: Attention.scratchCount(seqLength: s.S))
        Attention.backward(dContext: dC, qkv: qkv, probs: probs, dQKV: &dQKV, batch: s.B, seqLength: s.S, heads: s.A,
                           headSize: s.D, dropout: s.p, rng: Self.rng, scratch: &scratch)
        let error = finiteDifferenceError(qkv, analytic: dQKV, eps: 1e-3, samples: 200) { weightedSum(forward(s, $0).context, dC) }
        #expect(error < 5e-3, "\(s): \(error)")
    }

    /// The softmax row's 16-lane AVX-512 exponentials give the 8-lane kernel's bits, sum and row: every length from 1
    /// to 70 and 384, masked keys (bias −10000), scores that put most exponentials below the underflow clamp, NaN.
    @Test(.enabled(if: AVX512.available, "the CPU has no AVX-512: only the 8-lane kernel runs here"))
    func avx512SoftmaxRowGivesTheEightLaneBits() {
        var r = TestRandom(12)
        for (count, spread) in (1...70).map({ ($0, Float(3)) }) + [(384, 3), (384, 60), (33, 200)] {
            var scores = r.normal(count, scale: spread), bias = [Float](repeating: 0, count: count)
            for j in stride(from: 2, to: count, by: 5) { bias[j] = -10_000 }
            if count == 384 && spread == 60 { scores[100] = .nan }
            var eight = scores, sixteen = scores
            let inv8 = Attention.softmaxRow(&eight, bias: bias, count: count, avx512: false)
            let inv16 = Attention.softmaxRow(&sixteen, bias: bias, count: count, avx512: true)
            let same = zip(eight, sixteen).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
            #expect(same && (inv8.bitPattern == inv16.bitPattern || (inv8.isNaN && inv16.isNaN)), "\(count) keys, spread \(spread)")
        }
    }
}

