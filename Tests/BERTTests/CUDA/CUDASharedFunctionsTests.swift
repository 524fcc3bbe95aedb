import BERTKernels
import CBERTShared
import Foundation
import Testing

/// The device functions the CUDA kernels share with the CPU (Kernels/bert_shared.cuh), compiled for the host through
/// CBERTShared, equal the Swift kernels bit for bit: the same Philox words, the same dropout masks, the same GELU and
/// tanh values and derivatives. On the GPU the header rounds the same way (no contracted FMAs), so the CPU and
/// device masks and activations can be compared exactly.
@Suite struct CUDASharedFunctionsTests {
    /// Keys, streams and counters at the word boundaries and at random.
    static let seeds: [UInt64] = [0, 1, 42, 0xFFFF_FFFF, 1 << 32, 0xDEAD_BEEF_CAFE_F00D, .max]

    @Test func philoxEqualsCounterRNG() {
        var checked = 0
        for seed in Self.seeds {
            for stream in Self.seeds {
                let rng = CounterRNG(seed: seed, stream: stream)
                for index in Self.seeds + (0..<64).map({ UInt64($0) &* 0x9E37_79B9_7F4A_7C15 }) {
                    let w = bs_philox(seed, stream, index)
                    #expect(SIMD4(w.w0, w.w1, w.w2, w.w3) == rng.block(index), "seed \(seed) stream \(stream) index \(index)")
                    checked += 1
                }
            }
        }
        // Random123's known-answer vector (counter 0, key 0), so neither side can drift from Philox4x32-10 together.
        let kat = bs_philox(0, 0, 0)
        #expect([kat.w0, kat.w1, kat.w2, kat.w3] == [0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8])
        #expect(checked == 49 * 71)
    }

    @Test(arguments: [0.1, 0.25, 1.0 / 3, 0.5, 0.9] as [Float])
    func dropoutKeepEqualsTheCPUMask(p: Float) {
        let n = 10_000, rng = CounterRNG(seed: 1234, stream: 77)
        // The CPU's vectorised mask (whole 32-element runs through blocks8), read off dropout applied to ones.
        let ones = [Float](repeating: 1, count: n)
        var y = [Float](repeating: 0, count: n)
        Dropout.forward(ones, &y, count: n, probability: p, rng: rng)
        var dropped = 0
        for i in 0..<n {
            let keep = bs_dropout_keep(rng.seed, rng.stream, UInt64(i), p)
            #expect(keep == (y[i] != 0 ? 1 : 0), "element \(i)")
            #expect(Float(keep) == Dropout.keep(rng, element: i, probability: p))
            dropped += Int(1 - keep)
        }
        // The drop rate is p (binomial: within 5 standard deviations), so the comparison is not of two empty masks.
        #expect(abs(Double(dropped) / Double(n) - Double(p)) < 5 * (Double(p) * Double(1 - p) / Double(n)).squareRoot())
        for i in [1 << 32, (1 << 40) + 31, Int.max >> 1] {
            #expect(Float(bs_dropout_keep(rng.seed, rng.stream, UInt64(i), p)) == Dropout.keep(rng, element: i, probability: p))
        }
    }

    /// A dense grid over the interesting range, random normals at two scales, and the extremes (±0, subnormals, the
    /// clamps of exp at −87.3 / 88.3, ±300, ±greatest finite, ±∞).
    static let inputs: [Float] = {
        var xs = stride(from: Float(-12), through: 12, by: 1.0 / 64).map { $0 }
        var r = TestRandom(99)
        xs += r.normal(4000) + r.normal(1000, scale: 30)
        let extremes: [Float] = [0, .leastNonzeroMagnitude, .leastNormalMagnitude, 1e-30, 1e-7, 0.5, 3, 5.5, 9.3, 10, 20,
                                 43.6, 43.7, 87.3, 88.3, 88.5, 100, 300, 1e10, .greatestFiniteMagnitude, .infinity]
        xs += extremes + extremes.map { -$0 }
        return xs
    }()

    @Test(arguments: [(Activation.geluErf, Int32(BS_GELU_ERF)), (.geluTanh, Int32(BS_GELU_TANH)),
                      (.tanh, Int32(BS_TANH)), (.relu, Int32(BS_RELU))])
    func activationsEqualTheCPUBitForBit(activation: Activation, form: Int32) {
        let xs = Self.inputs
        var y = [Float](repeating: 0, count: xs.count), d = y
        activation.valueAndDerivative(xs, &y, &d, count: xs.count)
        var mismatches = 0
        for (i, x) in xs.enumerated() {
            let value = bs_activation(form, x), derivative = bs_activation_derivative(form, x)
            let same = sameBits(value, y[i]) && sameBits(derivative, d[i])
            if !same, mismatches < 5 {
                Issue.record("\(activation) at \(x): host \(value), \(derivative); CPU \(y[i]), \(d[i])")
            }
            mismatches += same ? 0 : 1
        }
        #expect(mismatches == 0, "\(mismatches) of \(xs.count) inputs differ")
        // Not vacuous: finite and non-trivial values across the range (relu is 0 on the negative half).
        #expect(y.filter { $0.isFinite && $0 != 0 }.count > xs.count / (activation == .relu ? 3 : 2))
    }

    @Test func exponentialEqualsVexp() {
        var r = TestRandom(5)
        let xs = Self.inputs + r.normal(2000, scale: 60)
        var mismatches = 0
        for start in stride(from: 0, to: xs.count, by: 8) {
            let n = min(8, xs.count - start)
            let cpu = xs.withUnsafeBufferPointer { vexp(load8($0.baseAddress! + start, n)) }
            for k in 0..<n where !sameBits(bs_exp(xs[start + k]), cpu[k]) { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }

    /// bf16 rounding against PyTorch's (`scripts/reference/bf16_rounding.py`): every non-NaN input rounds to the same
    /// bits; NaNs stay NaN (PyTorch's vectorised CPU path and CUDA disagree on the NaN bits, which carry nothing).
    @Test func bf16RoundingEqualsPyTorch() throws {
        struct Cases: Decodable { let inputs: [UInt32]; let bf16: [UInt16] }
        let cases = try JSONDecoder().decode(Cases.self, from: Data(contentsOf: URL(fileURLWithPath: fixture("cuda/bf16_rounding.json"))))
        #expect(cases.inputs.count == cases.bf16.count && cases.inputs.count > 2000)
        for (input, expected) in zip(cases.inputs, cases.bf16) {
            let x = Float(bitPattern: input), rounded = bs_bf16_from_float(x)
            if x.isNaN {
                #expect(bs_bf16_to_float(rounded).isNaN)
            } else {
                #expect(rounded == expected, "\(String(input, radix: 16)) → \(String(rounded, radix: 16)), torch \(String(expected, radix: 16))")
                #expect(bs_bf16_to_float(rounded).bitPattern == UInt32(rounded) << 16)
            }
        }
    }

    private func sameBits(_ a: Float, _ b: Float) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }
}
