import BERTKernels
import Testing
@testable import BERT

/// A tensor cut from a longer batch (`[B, S', …]` from `[B, S, …]`) and run with its stream layout at the full length
/// draws, for every kept element, the dropout bit it had at full length: the per-token sites' dropout, and attention
/// (forward probabilities and context, backward dQKV) with padded keys past S'. One body for the CPU backend and the
/// CUDA backend on its emulated runtime.
@Suite struct TrimmedDropoutTests {
    static func backend(_ name: String) -> any Backend {
        name == "cpu" ? CPUBackend.shared : CUDABackendEmulatedTests.cuda()
    }

    /// The first `length` of every `S` rows of `width` floats.
    static func leading(_ x: [Float], rows S: Int, width: Int, length: Int) -> [Float] {
        stride(from: 0, to: x.count, by: S * width).flatMap { x[$0..<($0 + length * width)] }
    }

    static func buffer(_ k: any Backend, _ values: [Float]) -> DeviceBuffer {
        let b = DeviceBuffer(backend: k, count: values.count)
        b.upload(values)
        return b
    }

    @Test(arguments: ["cpu", "cuda"]) func tokenDropoutKeepsItsBits(backend name: String) {
        let k = Self.backend(name), (B, S, St, H) = (3, 40, 16, 24), rng = CounterRNG(seed: 3, stream: 11)
        var r = TestRandom(4)
        let x = r.normal(B * S * H), residual = r.normal(B * S * H)
        func run(_ S: Int, streamS: Int) -> (forward: [Float], backward: [Float]) {
            let layout = DropoutLayout(S: S, W: H, streamS: streamS, streamW: H), n = B * S * H
            let xs = Self.buffer(k, Self.leading(x, rows: 40, width: H, length: S))
            let rs = Self.buffer(k, Self.leading(residual, rows: 40, width: H, length: S))
            let y = DeviceBuffer(backend: k, count: n), dx = DeviceBuffer(backend: k, count: n)
            k.dropoutForward(xs.base, residual: rs.base, y.base, count: n, layout: layout, probability: 0.1, rng: rng)
            k.dropoutBackward(xs.base, dx.base, count: n, layout: layout, probability: 0.1, rng: rng)
            return (y.array(), dx.array())
        }
        let full = run(S, streamS: S), trimmed = run(St, streamS: S)
        #expect(trimmed.forward == Self.leading(full.forward, rows: S, width: H, length: St))
        #expect(trimmed.backward == Self.leading(full.backward, rows: S, width: H, length: St))
        let dropped = trimmed.backward.filter { $0 == 0 }.count
        #expect((50..<250).contains(dropped), "about a tenth of \(B * St * H) dropped: \(dropped)")
        // At the trimmed length's own layout the bits move: the layout is what keeps them.
        #expect(run(St, streamS: St).backward != trimmed.backward)
    }

    @Test(arguments: ["cpu", "cuda"]) func attentionWithDropoutKeepsItsBits(backend name: String) {
        let k = Self.backend(name), (B, A, D, S, St) = (2, 2, 8, 24, 16), H = A * D, real = [16, 11]
        let rng = CounterRNG(seed: 8, stream: 2)
        var r = TestRandom(9)
        let qkv = r.normal(B * S * 3 * H)
        // Queries past S' are padding in both rows, so their context gradient is zero, as a model's backward makes it.
        let dContext = (0..<(B * S * H)).map { $0 / H % S < St ? Float(($0 * 37) % 101) / 50 - 1 : 0 }
        func run(_ S: Int) -> (probs: [Float], context: [Float], dQKV: [Float]) {
            let T = B * S
            let bias = Self.buffer(k, (0..<T).map { $0 % S < real[$0 / S] ? 0 : -10000 })
            let q = Self.buffer(k, Self.leading(qkv, rows: 24, width: 3 * H, length: S))
            let dC = Self.buffer(k, Self.leading(dContext, rows: 24, width: H, length: S))
            let probs = DeviceBuffer(backend: k, count: B * A * S * S), context = DeviceBuffer(backend: k, count: T * H)
            let dQKV = DeviceBuffer(backend: k, count: T * 3 * H)
            let scratch = DeviceBuffer(backend: k, count: k.attentionScratchCount(batch: B, seqLength: S, heads: A))
            k.attentionForward(qkv: q.base, keyBias: bias.base, keyRanges: nil, probs: probs.base, context: context.base,
                               batch: B, seqLength: S, heads: A, headSize: D, dropout: 0.1, rng: rng, streamLength: 24,
                               scratch: scratch.base)
            k.attentionBackward(dContext: dC.base, qkv: q.base, probs: probs.base, dQKV: dQKV.base, batch: B, seqLength: S,
                                heads: A, headSize: D, dropout: 0.1, rng: rng, streamLength: 24, scratch: scratch.base)
            return (probs.array(), context.array(), dQKV.array())
        }
        let full = run(S), trimmed = run(St)
        #expect(trimmed.probs == Self.leading(Self.leading(full.probs, rows: S, width: 1, length: St), rows: S, width: St,
                                              length: St))
        #expect(trimmed.context == Self.leading(full.context, rows: S, width: H, length: St))
        #expect(trimmed.dQKV == Self.leading(full.dQKV, rows: S, width: 3 * H, length: St))
        #expect(full.dQKV.contains { $0 != 0 })
    }
}
