import BERTCUDA
import BERTKernels

// The CUDA backend's operations, forward and backward side by side as in `Backend`: which kernel or matmul each is,
// with what geometry. Shapes as in the kernels: N rows, H features, B batch, S sequence, A heads, D head size.

extension Activation {
    /// The `form` argument of the activation kernels (bert_shared.cuh).
    var kernelForm: KernelArgument {
        switch self {
        case .geluErf: return .int(0)
        case .geluTanh: return .int(1)
        case .tanh: return .int(2)
        case .relu: return .int(3)
        }
    }
}

extension CounterRNG {
    /// The seed and stream arguments of the dropout kernels.
    var kernelArguments: [KernelArgument] { [.unsignedLongLong(seed), .unsignedLongLong(stream)] }
}

extension DropoutLayout {
    /// The layout arguments of dropout_apply.
    var kernelArguments: [KernelArgument] { [.longLong(Int64(S)), .longLong(Int64(W)), .longLong(Int64(streamS)), .longLong(Int64(streamW))] }
}

private func int(_ x: Int) -> KernelArgument { .int(Int32(x)) }
private func long(_ x: Int) -> KernelArgument { .longLong(Int64(x)) }

extension CUDABackend {
    public func embeddingForward(ids: DeviceInts, segments: DeviceInts, positions: DeviceInts?, word: DeviceFloats,
                                 position: DeviceFloats, tokenType: DeviceFloats, out: DeviceFloats, batch: Int,
                                 seqLength: Int, hidden: Int) {
        launch("embedding_forward", grid: Dim3(batch * seqLength), block: Self.rowBlock(hidden),
               [ptr(out), ptr(ids), ptr(segments), ptr(positions), ptr(word), ptr(position), ptr(tokenType),
                int(seqLength), int(hidden)])
    }

    public func embeddingBackward(dOut: DeviceFloats, ids: DeviceInts, segments: DeviceInts, positions: DeviceInts?,
                                  dWord: DeviceFloats, dPosition: DeviceFloats, dTokenType: DeviceFloats, batch: Int,
                                  seqLength: Int, hidden: Int, paddingId: Int32?) {
        launch("embedding_backward", grid: Dim3(batch * seqLength), block: Self.rowBlock(hidden),
               [ptr(dWord), ptr(dPosition), ptr(dTokenType), ptr(dOut), ptr(ids), ptr(segments), ptr(positions),
                int(seqLength), int(hidden), .int(paddingId ?? -1)])
    }

    public func layerNormForward(x: DeviceFloats, gamma: DeviceFloats, beta: DeviceFloats, y: DeviceFloats,
                                 mean: DeviceFloats, rstd: DeviceFloats, rows: Int, features: Int, eps: Float) {
        launch("layernorm_forward_f32", grid: Dim3(rows), block: Self.rowBlock(features),
               [ptr(y), ptr(mean), ptr(rstd), ptr(x), ptr(gamma), ptr(beta), int(features), .float(eps)])
    }

    /// `layernorm_backward` over `normParts` blocks into `scratch` `[normParts, 2H]`, then dγ and dβ each add their
    /// column of partial sums.
    public func layerNormBackward(dy: DeviceFloats, x: DeviceFloats, gamma: DeviceFloats, mean: DeviceFloats,
                                  rstd: DeviceFloats, dx: DeviceFloats, dGamma: DeviceFloats, dBeta: DeviceFloats,
                                  rows: Int, features H: Int, scratch: DeviceFloats, sequences: SequenceRows?) {
        // `sequences` is not honoured: the partial sums run over fixed parts of the rows, so a trimmed batch's dγ and
        // dβ round differently from the full batch's (fine-tuning's trimmed training is bitwise only on the CPU).
        guard rows > 0 else { return }
        let parts = Self.normParts
        launch("layernorm_backward", grid: Dim3(parts), block: Self.rowBlock(H),
               [ptr(dx), ptr(scratch), ptr(dy), ptr(x), ptr(gamma), ptr(mean), ptr(rstd), int(rows), int(H)])
        for (out, offset) in [(dGamma, 0), (dBeta, H)] {
            launch("add_partial_sums", grid: Self.strided(H), [ptr(out), ptr(scratch + offset), int(parts), int(H), int(2 * H)])
        }
    }

    /// `y[N, O] = x[N, I] · Wᵀ (+ b)`: one matmul, the bias in its epilogue.
    public func linearForward(x: DeviceFloats, weight: DeviceFloats, bias: DeviceFloats?, y: DeviceFloats, rows N: Int,
                              inFeatures I: Int, outFeatures O: Int) {
        let xs = gemmInput(x, count: N * I, .gemmA), w = gemmInput(weight, count: O * I, .gemmB)
        gemm(transposeA: false, transposeB: true, M: N, N: O, K: I, A: xs.at(ld: I), B: w.at(ld: I), beta: 0, C: y,
             ldc: O, bias: bias)
    }

    public func addBias(_ y: DeviceFloats, bias: DeviceFloats, residual: DeviceFloats, _ out: DeviceFloats, rows: Int,
                        outFeatures: Int) {
        let n = rows * outFeatures
        launch("bias_residual_add", grid: Self.strided(n),
               [ptr(out), ptr(y), ptr(bias), ptr(residual), long(n), int(outFeatures)])
    }

    /// `dW += dyᵀ · x` (a matmul accumulating in place), `db += Σₙ dy` (column partial sums, then their sum), and
    /// `dx = dy · W` (`+=` when `accumulateInput`). x's copy is taken before dx is written, so dx may alias x.
    public func linearBackward(dy: DeviceFloats, x: DeviceFloats, weight: DeviceFloats, dx: DeviceFloats?,
                               dWeight: DeviceFloats, dBias: DeviceFloats?, rows N: Int, inFeatures I: Int,
                               outFeatures O: Int, accumulateInput: Bool, sequences: SequenceRows?) {
        // `sequences` is not honoured: cuBLASLt picks its own reduction over K = N, as the bias's 64-row parts are fixed.
        guard N > 0 else { return }
        let d = gemmInput(dy, count: N * O, .gemmA), xs = gemmInput(x, count: N * I, .gemmB)
        gemm(transposeA: true, transposeB: false, M: O, N: I, K: N, A: d.at(ld: O), B: xs.at(ld: I), beta: 1, C: dWeight,
             ldc: I)
        if let dBias {
            let rowsPerPart = 64, parts = (N + rowsPerPart - 1) / rowsPerPart
            let partial = DeviceFloats(address: UInt(scratch(.columnSums, bytes: 4 * parts * O)))
            launch("column_partial_sums", grid: Dim3((O + Self.threads - 1) / Self.threads, parts),
                   [ptr(partial), ptr(dy), int(N), int(O), int(rowsPerPart)])
            launch("add_partial_sums", grid: Self.strided(O), [ptr(dBias), ptr(partial), int(parts), int(O), int(O)])
        }
        if let dx {
            let w = gemmInput(weight, count: O * I, .gemmC)
            gemm(transposeA: false, transposeB: false, M: N, N: I, K: O, A: d.at(ld: O), B: w.at(ld: I),
                 beta: accumulateInput ? 1 : 0, C: dx, ldc: I)
        }
    }

    public func activationForward(_ f: Activation, _ x: DeviceFloats, bias: DeviceFloats?, _ y: DeviceFloats, rows: Int,
                                  features: Int) {
        let n = rows * features
        launch("bias_activation_forward_f32", grid: Self.strided(n),
               [ptr(y), ptr(nil as DeviceFloats?), ptr(x), ptr(bias), long(n), int(features), f.kernelForm])
    }

    public func activationValueAndDerivative(_ f: Activation, _ x: DeviceFloats, _ y: DeviceFloats, _ d: DeviceFloats,
                                             count: Int) {
        launch("activation_value_and_derivative", grid: Self.strided(count), [ptr(y), ptr(d), ptr(x), long(count), f.kernelForm])
    }

    public func activationBackward(_ dy: DeviceFloats, derivative: DeviceFloats, _ dx: DeviceFloats, count: Int) {
        launch("activation_backward_saved", grid: Self.strided(count), [ptr(dx), ptr(dy), ptr(derivative), long(count)])
    }

    public func activationBackward(_ f: Activation, _ dy: DeviceFloats, x: DeviceFloats, _ dx: DeviceFloats, count: Int) {
        launch("activation_backward", grid: Self.strided(count), [ptr(dx), ptr(dy), ptr(x), long(count), f.kernelForm])
    }

    /// Per head a, batched over the B sequences: scores = q·kᵀ/√D (into `probs`, or the scratch in inference), the
    /// softmax kernel (key bias, packed rows' key ranges, dropout; the dropped probabilities into the scratch's second
    /// half, bf16 in bf16 mode), then context = dropped · v. q, k, v of head a sit at columns a·D, H + a·D, 2H + a·D of
    /// qkv `[B, S, 3H]`.
    public func attentionForward(qkv: DeviceFloats, keyBias: DeviceFloats, keyRanges: DeviceInts?, probs: DeviceFloats?,
                                 context: DeviceFloats, batch B: Int, seqLength S: Int, heads A: Int, headSize D: Int,
                                 dropout p: Float, rng: CounterRNG, streamLength: Int, scratch: DeviceFloats) {
        let H = A * D, pairs = B * A * S * S, scale = 1 / Float(D).squareRoot()
        let q = gemmInput(qkv, count: B * S * 3 * H, .qkv)
        let P = probs ?? scratch, dropped = scratch + pairs
        for a in 0..<A {
            gemm(transposeA: false, transposeB: true, M: S, N: S, K: D, alpha: scale,
                 A: q.at(a * D, ld: 3 * H, stride: S * 3 * H), B: q.at(H + a * D, ld: 3 * H, stride: S * 3 * H),
                 beta: 0, C: P + a * S * S, ldc: S, strideC: A * S * S, batch: B)
        }
        let bf16 = precision == .bf16
        launch(bf16 ? "attention_softmax_forward_bf16" : "attention_softmax_forward_f32", grid: Dim3(B * A * S),
               block: Self.rowBlock(S), [ptr(P), ptr(dropped), ptr(P), ptr(keyBias), ptr(keyRanges), int(A), int(S), .float(p)]
                + rng.kernelArguments + [int(streamLength)])
        let d = CUDABackend.Input(base: UInt64(dropped.address), type: bf16 ? .bf16 : .fp32)
        for a in 0..<A {
            gemm(transposeA: false, transposeB: false, M: S, N: D, K: S, A: d.at(a * S * S, ld: S, stride: A * S * S),
                 B: q.at(2 * H + a * D, ld: 3 * H, stride: S * 3 * H), beta: 0, C: context + a * D, ldc: H,
                 strideC: S * H, batch: B)
        }
    }

    /// dV = dropoutᵀ(P)·dC, dP̃ = dC·vᵀ, the softmax backward kernel (dropout mask, then P ⊙ (dP − Σ dP ⊙ P)), then
    /// dq = dZ·k/√D and dk = dZᵀ·q/√D: per head, batched over the B sequences, as in the forward.
    public func attentionBackward(dContext: DeviceFloats, qkv: DeviceFloats, probs: DeviceFloats, dQKV: DeviceFloats,
                                  batch B: Int, seqLength S: Int, heads A: Int, headSize D: Int, dropout p: Float,
                                  rng: CounterRNG, streamLength: Int, scratch: DeviceFloats) {
        let H = A * D, pairs = B * A * S * S, scale = 1 / Float(D).squareRoot(), ld = 3 * H, rows = S * 3 * H
        let dScores = scratch, dropped = scratch + pairs
        let q = gemmInput(qkv, count: B * S * 3 * H, .qkv), dC = gemmInput(dContext, count: B * S * H, .gemmA)
        launch("dropout_apply", grid: Self.strided(pairs),
               [ptr(dropped), ptr(probs), ptr(nil as DeviceFloats?), long(pairs), .float(p)] + rng.kernelArguments
                + DropoutLayout(S: S, W: S, streamS: streamLength, streamW: streamLength).kernelArguments)
        let P = gemmInput(dropped, count: pairs, .gemmB)
        for a in 0..<A {
            gemm(transposeA: true, transposeB: false, M: S, N: D, K: S, A: P.at(a * S * S, ld: S, stride: A * S * S),
                 B: dC.at(a * D, ld: H, stride: S * H), beta: 0, C: dQKV + 2 * H + a * D, ldc: ld, strideC: rows, batch: B)
            gemm(transposeA: false, transposeB: true, M: S, N: S, K: D, A: dC.at(a * D, ld: H, stride: S * H),
                 B: q.at(2 * H + a * D, ld: ld, stride: rows), beta: 0, C: dScores + a * S * S, ldc: S,
                 strideC: A * S * S, batch: B)
        }
        launch("attention_softmax_backward", grid: Dim3(B * A * S), block: Self.rowBlock(S),
               [ptr(dScores), ptr(dScores), ptr(probs), int(S), .float(p)] + rng.kernelArguments + [int(streamLength)])
        let dZ = gemmInput(dScores, count: pairs, .scores)
        for a in 0..<A {
            gemm(transposeA: false, transposeB: false, M: S, N: D, K: S, alpha: scale,
                 A: dZ.at(a * S * S, ld: S, stride: A * S * S), B: q.at(H + a * D, ld: ld, stride: rows), beta: 0,
                 C: dQKV + a * D, ldc: ld, strideC: rows, batch: B)
            gemm(transposeA: true, transposeB: false, M: S, N: D, K: S, alpha: scale,
                 A: dZ.at(a * S * S, ld: S, stride: A * S * S), B: q.at(a * D, ld: ld, stride: rows), beta: 0,
                 C: dQKV + H + a * D, ldc: ld, strideC: rows, batch: B)
        }
    }

    public func dropoutForward(_ x: DeviceFloats, residual: DeviceFloats?, _ y: DeviceFloats, count: Int,
                               layout: DropoutLayout, probability: Float, rng: CounterRNG) {
        launch("dropout_apply", grid: Self.strided(count),
               [ptr(y), ptr(x), ptr(residual), long(count), .float(probability)] + rng.kernelArguments + layout.kernelArguments)
    }

    public func dropoutBackward(_ dy: DeviceFloats, _ dx: DeviceFloats, count: Int, layout: DropoutLayout,
                                probability: Float, rng: CounterRNG) {
        dropoutForward(dy, residual: nil, dx, count: count, layout: layout, probability: probability, rng: rng)
    }

    /// The kernel writes each row's loss and hit; they come back and are summed in row order, as the CPU sums them.
    public func crossEntropyForward(logits: DeviceFloats, labels: DeviceInts, rows: Int, classes: Int, ld: Int,
                                    logSumExp: DeviceFloats) -> (lossSum: Double, correct: Int) {
        guard rows > 0 else { return (0, 0) }
        let loss = DeviceFloats(address: UInt(scratch(.rowLosses, bytes: 4 * rows)))
        let hits = DeviceInts(address: UInt(scratch(.rowHits, bytes: 4 * rows)))
        launch("cross_entropy_forward", grid: Dim3(rows), block: Self.rowBlock(classes),
               [ptr(loss), ptr(logSumExp), ptr(hits), ptr(logits), ptr(labels), int(classes), int(ld)])
        let losses = download(loss, count: rows), correct = download(hits, count: rows)
        return (losses.reduce(0) { $0 + Double($1) }, Int(correct.reduce(0, +)))
    }

    public func crossEntropyBackward(logitsToGradient: DeviceFloats, labels: DeviceInts, rows: Int, classes: Int, ld: Int,
                                     logSumExp: DeviceFloats, scale: Float) {
        launch("cross_entropy_backward", grid: Dim3(rows), block: Self.rowBlock(ld),
               [ptr(logitsToGradient), ptr(logSumExp), ptr(labels), int(classes), int(ld), .float(scale)])
    }

    public func gatherRows(_ src: DeviceFloats, indices: DeviceInts, count: Int, width: Int, into out: DeviceFloats) {
        launch("gather_rows", grid: Dim3(count), block: Self.rowBlock(width), [ptr(out), ptr(src), ptr(indices), int(width)])
    }

    public func scatterAddRows(_ src: DeviceFloats, indices: DeviceInts, count: Int, width: Int, into dst: DeviceFloats) {
        launch("scatter_add_rows", grid: Dim3(count), block: Self.rowBlock(width),
               [ptr(dst), ptr(src), ptr(indices), int(width)])
    }

    public func transpose(_ x: DeviceFloats, rows: Int, columns: Int, into out: DeviceFloats) {
        launch("transpose", grid: Dim3((rows * columns + Self.threads - 1) / Self.threads),
               [ptr(out), ptr(x), int(rows), int(columns)])
    }
}
