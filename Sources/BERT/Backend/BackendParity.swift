import BERTKernels

// Every operation of the `Backend` protocol run on two backends with the same inputs, its outputs compared. This is
// what `bert check-device` runs on a GPU machine (the CUDA backend against the CPU's), and what the tests run here
// (the emulated device against the CPU's: equal bits in fp32, a bf16 band with bf16 activations).
// Shapes: B 2, S 20, H 32 (A 4 heads of D 8), I 64, V 50 classes padded to 56, M 7 gathered rows.

/// One operation's outcome: the worst output tensor's error, relative to that tensor's largest reference magnitude.
public struct ParityResult: Sendable, Equatable {
    public var operation: String
    public var maxRelativeError: Double
    public var tolerance: Double
    public var passed: Bool { maxRelativeError <= tolerance }
}

public enum BackendParity {
    /// Relative tolerances: fp32 elementwise kernels, fp32 kernels with a GEMM or a long reduction inside (summation
    /// order may differ on a device), and anything with bf16 activations (8 significant bits).
    public static let fp32Tolerance = 1e-5, fp32GEMMTolerance = 5e-5, bf16Tolerance = 2e-2

    /// Runs every operation on `candidate` and `reference` and compares; `precision` picks the tolerances.
    public static func run(candidate: any Backend, reference: any Backend = CPUBackend.shared,
                           precision: Precision = .fp32) -> [ParityResult] {
        cases.map { c in
            let expected = c.run(Inputs(backend: reference)), actual = c.run(Inputs(backend: candidate))
            let error = zip(actual, expected).map { worstRelativeError($0, $1) }.max() ?? 0
            let tolerance = precision == .bf16 ? bf16Tolerance : c.gemm ? fp32GEMMTolerance : fp32Tolerance
            return ParityResult(operation: c.name, maxRelativeError: error, tolerance: tolerance)
        }
    }

    /// max |a − b| / max |b| (0 when both are all zeros; NaN anywhere counts as infinitely wrong).
    static func worstRelativeError(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        var worst = 0.0, scale = 0.0
        for (x, y) in zip(a, b) {
            if x.isNaN != y.isNaN { return .infinity }
            worst = max(worst, abs(Double(x) - Double(y)))
            scale = max(scale, abs(Double(y)))
        }
        return worst == 0 ? 0 : worst / max(scale, 1e-30)
    }

    /// Buffers for one run of a case on one backend: the n-th `floats` call gets the same values on every backend.
    final class Inputs {
        let backend: any Backend
        private var buffers: [DeviceBuffer] = []
        init(backend: any Backend) { self.backend = backend }

        /// `count` floats drawn from N(0, scale²) (or all `value`), identical for the same call order.
        func floats(_ count: Int, scale: Float = 1, value: Float? = nil) -> DeviceFloats {
            let buffer = DeviceBuffer(backend: backend, count: count)
            var host = [Float](repeating: value ?? 0, count: count)
            if value == nil {
                host.withUnsafeMutableBufferPointer {
                    CounterRNG(seed: 0xC0FFEE, stream: UInt64(buffers.count)).fillNormal($0.baseAddress!, count: count, scale: scale)
                }
            }
            buffer.upload(host)
            buffers.append(buffer)
            return buffer.base
        }

        func ints(_ values: [Int32]) -> DeviceInts {
            let buffer = DeviceBuffer(backend: backend, count: values.count)
            backend.upload(values, to: buffer.base.reinterpreted(as: Int32.self))
            buffers.append(buffer)
            return buffer.base.reinterpreted(as: Int32.self)
        }

        func read(_ p: DeviceFloats, _ count: Int) -> [Float] { backend.download(p, count: count) }
    }

    struct Case: Sendable {
        let name: String
        /// A GEMM or a long reduction inside: the looser fp32 tolerance.
        let gemm: Bool
        let run: @Sendable (Inputs) -> [[Float]]
    }

    static let (B, S, A, D, I, V, V8) = (2, 20, 4, 8, 64, 50, 56)
    static let H = A * D, T = B * S
    static let rng = CounterRNG(seed: 77, stream: 5)
    static let ids: [Int32] = (0..<T).map { Int32(($0 * 7 + 3) % V) }
    static let segments: [Int32] = (0..<T).map { Int32($0 % S >= S / 2 ? 1 : 0) }
    /// Row 1 has its last 6 positions padded.
    static let keyBias: [Float] = (0..<T).map { $0 >= 2 * S - 6 ? -10000 : 0 }
    static let gatherIndices: [Int32] = [0, 5, 19, 20, 33, 5, 39]
    /// Packed rows: row 0 holds sequences of 8 and 7 tokens, row 1 of 9 and 5; the rest is padding.
    static let packedSpans: [[Range<Int>]] = [[0..<8, 8..<15], [0..<9, 9..<14]]
    static let packedPositions: [Int32] = (0..<T).map { t in
        Int32(packedSpans[t / S].first { $0.contains(t % S) }.map { t % S - $0.lowerBound } ?? 0)
    }
    static let packedKeyBias: [Float] = (0..<T).map { t in packedSpans[t / S].contains { $0.contains(t % S) } ? 0 : -10000 }
    /// Each query's own sequence; a padding query sees the row's real tokens.
    static let packedKeyRanges: [Int32] = (0..<T).flatMap { t -> [Int32] in
        let spans = packedSpans[t / S], own = spans.first { $0.contains(t % S) } ?? spans[0].lowerBound..<spans.last!.upperBound
        return [Int32(own.lowerBound), Int32(own.upperBound)]
    }

    static let cases: [Case] = {
        var all: [Case] = [
            Case(name: "embedding forward", gemm: false) { x in
                let out = x.floats(T * H)
                x.backend.embeddingForward(ids: x.ints(ids), segments: x.ints(segments), positions: nil, word: x.floats(V8 * H),
                                           position: x.floats(S * H), tokenType: x.floats(2 * H), out: out, batch: B,
                                           seqLength: S, hidden: H)
                return [x.read(out, T * H)]
            },
            Case(name: "embedding backward", gemm: true) { x in
                let (dWord, dPosition, dType) = (x.floats(V8 * H, value: 0), x.floats(S * H, value: 0), x.floats(2 * H, value: 0))
                x.backend.embeddingBackward(dOut: x.floats(T * H), ids: x.ints(ids), segments: x.ints(segments), positions: nil, dWord: dWord,
                                            dPosition: dPosition, dTokenType: dType, batch: B, seqLength: S, hidden: H,
                                            paddingId: 3)
                return [x.read(dWord, V8 * H), x.read(dPosition, S * H), x.read(dType, 2 * H)]
            },
            Case(name: "embedding forward and backward, packed positions", gemm: true) { x in
                let k = x.backend, out = x.floats(T * H), ids = x.ints(ids), segments = x.ints(segments)
                let positions = x.ints(packedPositions)
                let (dWord, dPosition, dType) = (x.floats(V8 * H, value: 0), x.floats(S * H, value: 0), x.floats(2 * H, value: 0))
                k.embeddingForward(ids: ids, segments: segments, positions: positions, word: x.floats(V8 * H),
                                   position: x.floats(S * H), tokenType: x.floats(2 * H), out: out, batch: B, seqLength: S, hidden: H)
                k.embeddingBackward(dOut: x.floats(T * H), ids: ids, segments: segments, positions: positions, dWord: dWord,
                                    dPosition: dPosition, dTokenType: dType, batch: B, seqLength: S, hidden: H, paddingId: nil)
                return [x.read(out, T * H), x.read(dWord, V8 * H), x.read(dPosition, S * H), x.read(dType, 2 * H)]
            },
            Case(name: "layernorm forward", gemm: false) { x in
                let (y, mean, rstd) = (x.floats(T * H), x.floats(T), x.floats(T))
                x.backend.layerNormForward(x: x.floats(T * H, scale: 3), gamma: x.floats(H), beta: x.floats(H), y: y, mean: mean,
                                           rstd: rstd, rows: T, features: H, eps: 1e-12)
                return [x.read(y, T * H), x.read(mean, T), x.read(rstd, T)]
            },
            Case(name: "layernorm backward", gemm: true) { x in
                let k = x.backend, input = x.floats(T * H, scale: 3), gamma = x.floats(H)
                let (y, mean, rstd) = (x.floats(T * H), x.floats(T), x.floats(T))
                k.layerNormForward(x: input, gamma: gamma, beta: x.floats(H), y: y, mean: mean, rstd: rstd, rows: T, features: H,
                                   eps: 1e-12)
                let (dx, dGamma, dBeta) = (x.floats(T * H), x.floats(H, value: 0), x.floats(H, value: 0))
                k.layerNormBackward(dy: x.floats(T * H), x: input, gamma: gamma, mean: mean, rstd: rstd, dx: dx, dGamma: dGamma,
                                    dBeta: dBeta, rows: T, features: H, scratch: x.floats(k.layerNormScratchCount(features: H)))
                return [x.read(dx, T * H), x.read(dGamma, H), x.read(dBeta, H)]
            },
            Case(name: "linear forward", gemm: true) { x in
                let y = x.floats(T * I)
                x.backend.linearForward(x: x.floats(T * H), weight: x.floats(I * H, scale: 0.2), bias: x.floats(I), y: y,
                                        rows: T, inFeatures: H, outFeatures: I)
                return [x.read(y, T * I)]
            },
            Case(name: "linear backward", gemm: true) { x in
                let (dx, dWeight, dBias) = (x.floats(T * H, value: 1), x.floats(I * H), x.floats(I))
                x.backend.linearBackward(dy: x.floats(T * I), x: x.floats(T * H), weight: x.floats(I * H, scale: 0.2), dx: dx,
                                         dWeight: dWeight, dBias: dBias, rows: T, inFeatures: H, outFeatures: I,
                                         accumulateInput: true)
                return [x.read(dx, T * H), x.read(dWeight, I * H), x.read(dBias, I)]
            },
            Case(name: "add bias and residual", gemm: false) { x in
                let out = x.floats(T * H)
                x.backend.addBias(x.floats(T * H), bias: x.floats(H), residual: x.floats(T * H), out, rows: T, outFeatures: H)
                return [x.read(out, T * H)]
            },
            Case(name: "activation backward (kept derivative)", gemm: false) { x in
                let dx = x.floats(T * I)
                x.backend.activationBackward(x.floats(T * I), derivative: x.floats(T * I), dx, count: T * I)
                return [x.read(dx, T * I)]
            },
            Case(name: "dropout forward with residual", gemm: false) { x in
                let y = x.floats(T * H)
                x.backend.dropoutForward(x.floats(T * H), residual: x.floats(T * H), y, count: T * H, probability: 0.1, rng: rng)
                return [x.read(y, T * H)]
            },
            Case(name: "dropout backward", gemm: false) { x in
                let dx = x.floats(T * H)
                x.backend.dropoutBackward(x.floats(T * H), dx, count: T * H, probability: 0.3, rng: rng)
                return [x.read(dx, T * H)]
            },
            Case(name: "cross-entropy forward and backward", gemm: true) { x in
                let k = x.backend, M = gatherIndices.count
                let logits = x.floats(M * V8, scale: 3), lse = x.floats(M), labels = x.ints(gatherIndices.map { $0 % Int32(V) })
                let (lossSum, correct) = k.crossEntropyForward(logits: logits, labels: labels, rows: M, classes: V, ld: V8, logSumExp: lse)
                k.crossEntropyBackward(logitsToGradient: logits, labels: labels, rows: M, classes: V, ld: V8, logSumExp: lse, scale: 0.5)
                return [[Float(lossSum), Float(correct)], x.read(lse, M), x.read(logits, M * V8)]
            },
            Case(name: "gather and scatter-add rows", gemm: false) { x in
                let k = x.backend, M = gatherIndices.count, indices = x.ints(gatherIndices)
                let gathered = x.floats(M * H), dst = x.floats(T * H)
                k.gatherRows(x.floats(T * H), indices: indices, count: M, width: H, into: gathered)
                k.scatterAddRows(gathered, indices: indices, count: M, width: H, into: dst)
                return [x.read(gathered, M * H), x.read(dst, T * H)]
            },
            Case(name: "transpose", gemm: false) { x in
                let out = x.floats(T * 3)
                x.backend.transpose(x.floats(T * 3), rows: T, columns: 3, into: out)
                return [x.read(out, T * 3)]
            },
            Case(name: "fill and copy", gemm: false) { x in
                let a = x.floats(T), b = x.floats(T)
                x.backend.fill(a, count: T - 3, value: 2.5)
                x.backend.copy(a, to: b + 1, count: T - 1)
                return [x.read(a, T), x.read(b, T)]
            },
        ]
        for f in [Activation.geluErf, .geluTanh, .relu, .tanh] {
            all.append(Case(name: "activation \(f) forward, value and derivative, backward", gemm: false) { x in
                let k = x.backend, input = x.floats(T * I, scale: 3)
                let (y, yBiased, value, derivative, dx) = (x.floats(T * I), x.floats(T * I), x.floats(T * I), x.floats(T * I), x.floats(T * I))
                k.activationForward(f, input, bias: nil, y, rows: T, features: I)
                k.activationForward(f, input, bias: x.floats(I), yBiased, rows: T, features: I)
                k.activationValueAndDerivative(f, input, value, derivative, count: T * I)
                k.activationBackward(f, x.floats(T * I), x: input, dx, count: T * I)
                return [x.read(y, T * I), x.read(yBiased, T * I), x.read(value, T * I), x.read(derivative, T * I), x.read(dx, T * I)]
            })
        }
        for (dropout, packed) in [(Float(0), false), (0.1, false), (0, true), (0.1, true)] {
            all.append(Case(name: "attention forward and backward, dropout \(dropout)\(packed ? ", packed rows" : "")", gemm: true) { x in
                let k = x.backend, qkv = x.floats(T * 3 * H), bias = x.floats(T)
                k.upload(packed ? packedKeyBias : keyBias, to: bias)
                let ranges = packed ? x.ints(packedKeyRanges) : nil
                let (probs, context, lean, dQKV) = (x.floats(B * A * S * S), x.floats(T * H), x.floats(T * H), x.floats(T * 3 * H))
                let scratch = x.floats(k.attentionScratchCount(batch: B, seqLength: S, heads: A))
                k.attentionForward(qkv: qkv, keyBias: bias, keyRanges: ranges, probs: probs, context: context, batch: B, seqLength: S, heads: A,
                                   headSize: D, dropout: dropout, rng: rng, streamLength: S, scratch: scratch)
                k.attentionForward(qkv: qkv, keyBias: bias, keyRanges: ranges, probs: nil, context: lean, batch: B, seqLength: S, heads: A,
                                   headSize: D, dropout: 0, rng: rng, streamLength: S, scratch: scratch)
                k.attentionBackward(dContext: x.floats(T * H), qkv: qkv, probs: probs, dQKV: dQKV, batch: B, seqLength: S,
                                    heads: A, headSize: D, dropout: dropout, rng: rng, streamLength: S, scratch: scratch)
                return [x.read(probs, B * A * S * S), x.read(context, T * H), x.read(lean, T * H), x.read(dQKV, T * 3 * H)]
            })
        }
        return all
    }()
}
