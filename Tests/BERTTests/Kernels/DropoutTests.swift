import BERTKernels
import Testing

@Suite struct DropoutTests {
    let rng = CounterRNG(seed: 42, stream: 7)

    func forward(_ x: [Float], residual: [Float]? = nil, p: Float) -> [Float] {
        var y = x
        if let residual {
            Dropout.forward(x, residual: residual, &y, count: x.count, probability: p, rng: rng)
        } else {
            Dropout.forward(x, &y, count: x.count, probability: p, rng: rng)
        }
        return y
    }

    @Test func dropsTheRightFractionAndScalesTheRest() {
        let n = 100_003
        let y = forward([Float](repeating: 1, count: n), p: 0.1)
        let dropped = y.filter { $0 == 0 }.count
        #expect(abs(Double(dropped) / Double(n) - 0.1) < 0.005)
        #expect(y.allSatisfy { $0 == 0 || abs($0 - 1 / 0.9) < 1e-6 })
        #expect(forward([1, 2, 3], p: 0) == [1, 2, 3])
    }

    /// Element i's mask is a function of (rng, i) alone — so no split of the work over threads can change it.
    @Test func maskIsAFunctionOfTheElementIndexAlone() {
        var r = TestRandom(6)
        let x = r.normal(50_001), residual = r.normal(50_001)
        let y = forward(x, residual: residual, p: 0.3)
        for i in stride(from: 0, to: x.count, by: 97) {
            let keep = Dropout.keep(rng, element: i, probability: 0.3)
            #expect(abs(y[i] - (x[i] * keep / 0.7 + residual[i])) < 1e-6)
        }
    }

    @Test func eightLanePhiloxEqualsTheScalarOne() {
        for first: UInt64 in [0, 8, 1 << 33 | 5] {
            let w = rng.blocks8(first)
            for k in 0..<8 {
                #expect(rng.block(first + UInt64(k)) == SIMD4(w.0[k], w.1[k], w.2[k], w.3[k]))
            }
        }
        // Philox4x32-10 known-answer vector (Random123 kat_vectors): counter 0, key 0.
        #expect(CounterRNG(seed: 0, stream: 0).block(0) == SIMD4(0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8))
    }

    @Test func backwardIsTheSameMaskAndMatchesFiniteDifferences() {
        var r = TestRandom(7)
        let x = r.normal(41), residual = r.normal(41), dy = r.normal(41)
        var dx = [Float](repeating: 0, count: 41)
        Dropout.backward(dy, &dx, count: 41, probability: 0.25, rng: rng)
        #expect(finiteDifferenceError(x, analytic: dx) { weightedSum(forward($0, residual: residual, p: 0.25), dy) } < 1e-3)
        let y = forward(x, residual: residual, p: 0.25)
        for i in 0..<41 { #expect((dx[i] == 0) == (y[i] == residual[i] && x[i] != 0)) }
    }

    /// The 16-block AVX-512 kernel gives the 8-lane kernel's bits: ranges that start and end inside runs, one run and
    /// odd numbers of them, a block counter that crosses 2³² between the two halves of a Philox evaluation, in place,
    /// negative inputs (−0 when dropped), NaN and infinities.
    @Test(.enabled(if: AVX512.available, "the CPU has no AVX-512: only the 8-lane kernel runs here"))
    func avx512KernelGivesTheEightLaneKernelsBits() {
        var r = TestRandom(8)
        var x = r.normal(4_000)
        x[3] = .nan
        x[40] = -.infinity
        x[77] = .infinity
        let wrap = (1 << 37) - 8 * 32  // stream element whose block counter is 2³² − 8
        let cases: [(first: Int, count: Int)] = [(0, 32), (0, 64), (0, 96), (32, 3_000), (5, 1_000), (31, 33),
                                                (64, 3_936), (17, 15), (wrap, 512), (wrap + 3, 700)]
        for p: Float in [0.1, 0.5, 0.9] {
            for (first, count) in cases {
                let rng = CounterRNG(seed: 0x1234_5678_9ABC_DEF0, stream: UInt64(first) &* 31 &+ 3)
                var eight = [Float](repeating: 7, count: count), sixteen = eight, inPlace = Array(x[..<count])
                Dropout.apply(x, into: &eight, elements: first..<(first + count), probability: p, rng: rng, avx512: false)
                Dropout.apply(x, into: &sixteen, elements: first..<(first + count), probability: p, rng: rng, avx512: true)
                inPlace.withUnsafeMutableBufferPointer { b in
                    Dropout.apply(b.baseAddress!, into: b.baseAddress!, elements: first..<(first + count), probability: p,
                                  rng: rng, avx512: true)
                }
                #expect(eight.map(\.bitPattern) == sixteen.map(\.bitPattern), "p \(p), elements \(first) + \(count)")
                #expect(eight.map(\.bitPattern) == inPlace.map(\.bitPattern), "in place, p \(p), elements \(first) + \(count)")
            }
        }
    }
}
