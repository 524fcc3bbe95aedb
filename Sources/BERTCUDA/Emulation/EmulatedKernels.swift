import CBERTShared
import Foundation

/// A Swift reference of each kernel of Kernels/*.cu the CUDA backend launches, written from the `.cu` source: the
/// same loops over the launch's blocks and threads, the same shared device functions (bert_shared.cuh compiled for the
/// host: Philox dropout, exp, the activations, bf16 rounding), and each pointer read or written only over the extent
/// the kernel touches, bounds-checked. Block reductions are summed in thread order here and as a tree on the GPU, so
/// the two differ only in rounding. A kernel without a reference cannot be launched on the emulator.
enum EmulatedKernels {
    typealias Reference = @Sendable (KernelLaunch) throws -> Void

    /// Every kernel's reference: those below and the optimizer's (EmulatedOptimizerKernels.swift).
    static let references: [String: Reference] = optimizerReferences.merging(layerReferences) { optimizer, _ in optimizer }

    private static let layerReferences: [String: Reference] = [
        // activation.cu
        "bias_activation_forward_f32": { k in
            let n = k.int("n"), F = k.int("F"), form = Int32(k.int("form"))
            let y = try k.floats("y", n), pre = try k.floatsOrNull("pre", n), x = try k.floats("x", n)
            let bias = try k.floatsOrNull("bias", F)
            for i in 0..<n {
                let u = bias.map { x[i] + $0[i % F] } ?? x[i]
                pre?[i] = u
                y[i] = bs_activation(form, u)
            }
        },
        "activation_backward": { k in
            let n = k.int("n"), form = Int32(k.int("form"))
            let dx = try k.floats("dx", n), dy = try k.floats("dy", n), pre = try k.floats("pre", n)
            for i in 0..<n { dx[i] = dy[i] * bs_activation_derivative(form, pre[i]) }
        },
        "activation_value_and_derivative": { k in
            let n = k.int("n"), form = Int32(k.int("form"))
            let y = try k.floats("y", n), d = try k.floats("d", n), x = try k.floats("x", n)
            for i in 0..<n {
                let u = x[i]
                y[i] = bs_activation(form, u)
                d[i] = bs_activation_derivative(form, u)
            }
        },
        "activation_backward_saved": { k in
            let n = k.int("n")
            let dx = try k.floats("dx", n), dy = try k.floats("dy", n), d = try k.floats("d", n)
            for i in 0..<n { dx[i] = dy[i] * d[i] }
        },
        // attention.cu
        "attention_softmax_forward_f32": { k in try softmaxForward(k, bf16: false) },
        "attention_softmax_forward_bf16": { k in try softmaxForward(k, bf16: true) },
        "attention_softmax_backward": { k in
            let S = k.int("S"), p = k.float("p"), seed = k.u64("seed"), stream = k.u64("stream"), Ss = k.int("stream_S")
            let rows = try k.rowBlocks(), n = rows.count * S
            let dScores = try k.floats("d_scores", n), dDropped = try k.floats("d_dropped", n), probs = try k.floats("probs", n)
            let scale = 1 / (1 - p)
            for q in rows {
                let row = q * S, bits = ((q / S) * Ss + q % S) * Ss
                var dot: Float = 0
                for j in 0..<S {
                    var d = dDropped[row + j]
                    if p > 0 { d = d * Float(bs_dropout_keep(seed, stream, UInt64(bits + j), p)) * scale }
                    dScores[row + j] = d
                    dot += d * probs[row + j]
                }
                for j in 0..<S { dScores[row + j] = probs[row + j] * (dScores[row + j] - dot) }
            }
        },
        // cross_entropy.cu
        "cross_entropy_forward": { k in
            let C = k.int("C"), ld = k.int("ld"), rows = try k.rowBlocks(), N = rows.count
            let loss = try k.floats("loss", N), lse = try k.floats("lse", N), correct = try k.ints("correct", N)
            let logits = try k.floats("logits", (N - 1) * ld + C), labels = try k.ints("labels", N)
            for n in rows {
                let row = n * ld
                var m = -Float.infinity
                for j in 0..<C { m = max(m, logits[row + j]) }
                var sum: Float = 0, firstMax = C
                for j in 0..<C {
                    sum += bs_exp(logits[row + j] - m)
                    if logits[row + j] == m { firstMax = min(firstMax, j) }
                }
                let label = Int(labels[n])
                lse[n] = m + logf(sum)
                loss[n] = lse[n] - logits[row + label]
                correct[n] = firstMax == label ? 1 : 0
            }
        },
        "cross_entropy_backward": { k in
            let C = k.int("C"), ld = k.int("ld"), scale = k.float("scale"), rows = try k.rowBlocks(), N = rows.count
            let logits = try k.floats("logits", N * ld), lse = try k.floats("lse", N), labels = try k.ints("labels", N)
            for n in rows {
                for j in 0..<ld {
                    logits[n * ld + j] = j < C ? bs_exp(logits[n * ld + j] - lse[n]) * scale - (j == Int(labels[n]) ? scale : 0) : 0
                }
            }
        },
        // dropout.cu
        "dropout_apply": { k in
            let n = k.int("n"), p = k.float("p"), seed = k.u64("seed"), stream = k.u64("stream")
            let S = k.int("S"), W = k.int("W"), Ss = k.int("stream_S"), Ws = k.int("stream_W")
            let y = try k.floats("y", n), x = try k.floats("x", n), residual = try k.floatsOrNull("residual", n)
            let scale = 1 / (1 - p)
            for i in 0..<n {
                let r = i / W, e = ((r / S) * Ss + r % S) * Ws + i % W
                let v = p > 0 ? x[i] * Float(bs_dropout_keep(seed, stream, UInt64(e), p)) * scale : x[i]
                y[i] = residual.map { $0[i] + v } ?? v
            }
        },
        // embedding.cu
        "embedding_forward": { k in
            let S = k.int("S"), H = k.int("H"), tokens = 0..<k.grid.x, T = tokens.count
            let out = try k.floats("out", T * H), ids = try k.ints("ids", T), segments = try k.ints("segments", T)
            let positions = try k.intsOrNull("positions", T), positionId = { (t: Int) in positions.map { Int($0[t]) } ?? t % S }
            let word = try k.floats("word", (Int(ids.max() ?? 0) + 1) * H)
            let position = try k.floats("position", (positions.map { Int($0.max() ?? 0) + 1 } ?? S) * H)
            let tokenType = try k.floats("token_type", (Int(segments.max() ?? 0) + 1) * H)
            for t in tokens {
                for h in 0..<H {
                    out[t * H + h] = word[Int(ids[t]) * H + h] + position[positionId(t) * H + h] + tokenType[Int(segments[t]) * H + h]
                }
            }
        },
        "embedding_backward": { k in
            let S = k.int("S"), H = k.int("H"), paddingId = Int32(k.int("padding_id")), tokens = 0..<k.grid.x, T = tokens.count
            let dOut = try k.floats("d_out", T * H), ids = try k.ints("ids", T), segments = try k.ints("segments", T)
            let positions = try k.intsOrNull("positions", T), positionId = { (t: Int) in positions.map { Int($0[t]) } ?? t % S }
            let dWord = try k.floats("d_word", (Int(ids.max() ?? 0) + 1) * H)
            let dPosition = try k.floats("d_position", (positions.map { Int($0.max() ?? 0) + 1 } ?? S) * H)
            let dTokenType = try k.floats("d_token_type", (Int(segments.max() ?? 0) + 1) * H)
            for t in tokens {
                for h in 0..<H {
                    let g = dOut[t * H + h]
                    if ids[t] != paddingId { dWord[Int(ids[t]) * H + h] += g }
                    dPosition[positionId(t) * H + h] += g
                    dTokenType[Int(segments[t]) * H + h] += g
                }
            }
        },
        // layernorm.cu
        "layernorm_forward_f32": { k in
            let H = k.int("H"), eps = k.float("eps"), rows = try k.rowBlocks(), N = rows.count
            let y = try k.floats("y", N * H), mean = try k.floats("mean", N), rstd = try k.floats("rstd", N)
            let x = try k.floats("x", N * H), gamma = try k.floats("gamma", H), beta = try k.floats("beta", H)
            for r in rows {
                var sum: Float = 0
                for h in 0..<H { sum += x[r * H + h] }
                let m = sum / Float(H)
                var squares: Float = 0
                for h in 0..<H { let d = x[r * H + h] - m; squares += d * d }
                let rs = 1 / (squares / Float(H) + eps).squareRoot()
                for h in 0..<H { y[r * H + h] = (x[r * H + h] - m) * rs * gamma[h] + beta[h] }
                mean[r] = m
                rstd[r] = rs
            }
        },
        "layernorm_backward": { k in
            let N = k.int("N"), H = k.int("H"), blocks = 0..<k.grid.x
            guard k.block.x % 32 == 0, k.grid.y == 1 else {
                throw CUDAError.launchArguments(kernel: "layernorm_backward", problem: "block of 32k threads, 1-D grid")
            }
            let dx = try k.floats("dx", N * H), partial = try k.floats("partial", blocks.count * 2 * H)
            let dy = try k.floats("dy", N * H), x = try k.floats("x", N * H), gamma = try k.floats("gamma", H)
            let mean = try k.floats("mean", N), rstd = try k.floats("rstd", N)
            for block in blocks {
                let pg = block * 2 * H, pb = pg + H
                for h in 0..<H { partial[pg + h] = 0; partial[pb + h] = 0 }
                for r in stride(from: block, to: N, by: blocks.count) {
                    let m = mean[r], s = rstd[r]
                    var sumG: Float = 0, sumGX: Float = 0
                    for h in 0..<H {
                        let xh = (x[r * H + h] - m) * s, d = dy[r * H + h], g = d * gamma[h]
                        sumG += g
                        sumGX += g * xh
                        partial[pg + h] += d * xh
                        partial[pb + h] += d
                    }
                    let meanG = sumG / Float(H), meanGX = sumGX / Float(H)
                    for h in 0..<H {
                        let xh = (x[r * H + h] - m) * s, g = dy[r * H + h] * gamma[h]
                        dx[r * H + h] = (g - meanG - xh * meanGX) * s
                    }
                }
            }
        },
        // rows.cu
        "gather_rows": { k in
            let width = k.int("width"), n = k.grid.x, rows = try k.ints("rows", n)
            let out = try k.floats("out", n * width), src = try k.floats("src", (Int(rows.max() ?? 0) + 1) * width)
            for i in 0..<n { for h in 0..<width { out[i * width + h] = src[Int(rows[i]) * width + h] } }
        },
        "scatter_add_rows": { k in
            let width = k.int("width"), n = k.grid.x, rows = try k.ints("rows", n)
            let src = try k.floats("src", n * width), dst = try k.floats("dst", (Int(rows.max() ?? 0) + 1) * width)
            for i in 0..<n { for h in 0..<width { dst[Int(rows[i]) * width + h] += src[i * width + h] } }
        },
        "column_partial_sums": { k in
            let rows = k.int("rows"), cols = k.int("cols"), perPart = k.int("rows_per_part"), parts = k.grid.y
            let partial = try k.floats("partial", parts * cols), m = try k.floats("m", rows * cols)
            for part in 0..<parts {
                for c in 0..<min(cols, k.grid.x * k.block.x) {
                    var sum: Float = 0
                    for r in (part * perPart)..<min(rows, part * perPart + perPart) { sum += m[r * cols + c] }
                    partial[part * cols + c] = sum
                }
            }
        },
        "add_partial_sums": { k in
            let parts = k.int("parts"), cols = k.int("cols"), ld = k.int("ld")
            let out = try k.floats("out", cols), partial = try k.floats("partial", (parts - 1) * ld + cols)
            for c in 0..<min(cols, k.threads.count) {
                var sum: Float = 0
                for p in 0..<parts { sum += partial[p * ld + c] }
                out[c] += sum
            }
        },
        "convert_to_bf16": { k in
            let n = k.int("n"), out = try k.bf16s("out", n), x = try k.floats("in", n)
            for i in 0..<n { out[i] = bs_bf16_from_float(x[i]) }
        },
        "transpose": { k in
            let R = k.int("R"), C = k.int("C"), out = try k.floats("out", R * C), x = try k.floats("x", R * C)
            for i in 0..<min(R * C, k.threads.count) { out[(i % C) * R + i / C] = x[i] }
        },
        "bias_residual_add": { k in
            let n = k.int("n"), F = k.int("F")
            let out = try k.floats("out", n), y = try k.floats("y", n), bias = try k.floats("bias", F)
            let residual = try k.floats("residual", n)
            for i in 0..<n { out[i] = y[i] + bias[i % F] + residual[i] }
        },
    ]

    /// attention_softmax_forward_{f32,bf16}: row q = blockIdx.x of [B·A·S, S], key bias row q / S / A, key range of
    /// token (q / S / A)·S + q mod S (all S keys without key_ranges), dropout bits from row q of the stream_S layout.
    private static func softmaxForward(_ k: KernelLaunch, bf16: Bool) throws {
        let A = k.int("A"), S = k.int("S"), p = k.float("p"), seed = k.u64("seed"), stream = k.u64("stream")
        let Ss = k.int("stream_S"), rows = try k.rowBlocks(), n = rows.count * S
        let probs = try k.floats("probs", n), scores = try k.floats("scores", n)
        let keyBias = try k.floats("key_bias", (rows.count / S / A) * S)
        let keyRanges = try k.intsOrNull("key_ranges", 2 * (rows.count / A))
        let dropped32 = bf16 ? nil : try k.floats("dropped", n), dropped16 = bf16 ? try k.bf16s("dropped", n) : nil
        let scale = 1 / (1 - p)
        for q in rows {
            let row = q * S, bias = (q / S / A) * S, token = bias + q % S, bits = ((q / S) * Ss + q % S) * Ss
            let visible = keyRanges.map { Int($0[2 * token])..<Int($0[2 * token + 1]) } ?? 0..<S
            var m = -Float.infinity
            for j in visible { m = max(m, scores[row + j] + keyBias[bias + j]) }
            var sum: Float = 0
            for j in 0..<S {
                let e = visible.contains(j) ? bs_exp(scores[row + j] + keyBias[bias + j] - m) : 0
                probs[row + j] = e
                sum += e
            }
            let inv = 1 / sum
            for j in 0..<S {
                let P = probs[row + j] * inv
                probs[row + j] = P
                let kept = p > 0 ? P * Float(bs_dropout_keep(seed, stream, UInt64(bits + j), p)) * scale : P
                if let dropped32 { dropped32[row + j] = kept } else { dropped16![row + j] = bs_bf16_from_float(kept) }
            }
        }
    }
}
