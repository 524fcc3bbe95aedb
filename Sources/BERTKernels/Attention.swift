import CAVX512Kernels

// Multi-head self-attention core (the projections around it are Linear kernels).
// Shapes: B batch, S sequence, A heads, D head size, H = A·D.
//   qkv [B, S, 3H]: row (b, s) holds q | k | v, head a at columns a·D of each third
//   keyBias [B, S]: 0 for real keys, −10000 for padded ones (BERT's additive mask)
//   keyRanges [B, S, 2] (optional, packed rows): query (b, i) sees only keys [lo, hi) of its row — its own sequence,
//     which is contiguous — so its softmax runs over that range and the other probabilities are exactly 0
//   probs [B, A, S, S]: softmax(q·kᵀ/√D + keyBias), saved for the backward (before dropout); nil in inference, where
//     each thread's tile lives in its scratch
//   context [B, S, H]: dropout(probs) · v, heads side by side
//   streamLength: the untrimmed S of a batch cut to its longest real sequence (S itself otherwise); probability (i, j)
//     of pair (b, a) draws dropout stream element ((b·A + a)·streamLength + i)·streamLength + j, its bit at full length
// Each (b, a) pair is an independent task of small GEMMs; threads take pairs and call BLAS single-threaded, in blocks of
// one shape (`AttentionTiles`) so that a position's bits do not depend on S. With
// precision bf16 the products take bf16-rounded inputs (scores from rounded q and k, context from rounded
// probabilities and v; the backward's four likewise) and accumulate in fp32, as torch.autocast's bf16 matmul.

public enum Attention {
    /// Floats of scratch the kernels need: two `[S, S]` tiles and the padded blocks of `AttentionTiles` per thread.
    public static func scratchCount(seqLength S: Int) -> Int { perThread(S) * Parallel.threadCount }

    private static func perThread(_ S: Int) -> Int { 2 * S * S + AttentionTiles.scratchCount }

    public static func forward(qkv: UnsafePointer<Float>, keyBias: UnsafePointer<Float>,
                               probs: UnsafeMutablePointer<Float>?, context: UnsafeMutablePointer<Float>,
                               batch B: Int, seqLength S: Int, heads A: Int, headSize D: Int,
                               dropout p: Float, rng: CounterRNG, streamLength: Int? = nil,
                               scratch: UnsafeMutablePointer<Float>, keyRanges: UnsafePointer<Int32>? = nil,
                               precision: GEMMPrecision = .fp32) {
        let H = A * D, ld = 3 * H, scale = 1 / Float(D).squareRoot()
        let layout = DropoutLayout(S: S, W: S, streamS: streamLength ?? S, streamW: streamLength ?? S)
        Parallel.forChunks(B * A) { chunk, pairs in
            let dropped = scratch + chunk * perThread(S), tiles = dropped + 2 * S * S
            for pair in pairs {
                let b = pair / A, a = pair % A
                let q = qkv + b * S * 3 * H + a * D, k = q + H, v = q + 2 * H
                let C = context + b * S * H + a * D
                let P = probs.map { $0 + pair * S * S } ?? dropped + S * S
                let ranges = keyRanges.map { $0 + 2 * b * S }
                AttentionTiles.product(transposeA: false, transposeB: true, M: S, N: S, K: D, sequence: .columns, alpha: scale,
                                       A: q, lda: ld, B: k, ldb: ld, beta: 0, C: P, ldc: S, precision: precision,
                                       scratch: tiles)
                if probs == nil {
                    // Inference: nothing reads the probabilities, so the rows stay unnormalised and the 1/Σ scales the
                    // D-wide context rows instead of the S-wide probability rows (the first tile holds the factors).
                    for i in 0..<S {
                        dropped[i] = softmaxVisible(P + i * S, bias: keyBias + b * S, S: S, range: ranges.map { $0 + 2 * i },
                                                    normalize: false)
                    }
                    weightValues(P, v, into: C, S: S, D: D, ld: ld, H: H, precision: precision, scratch: tiles)
                    for i in 0..<S { scaleRow(C + i * H, by: dropped[i], count: D) }
                    continue
                }
                for i in 0..<S { softmaxVisible(P + i * S, bias: keyBias + b * S, S: S, range: ranges.map { $0 + 2 * i }) }
                let used = p > 0 ? dropout(P, into: dropped, pair: pair, S: S, layout: layout, p: p, rng: rng) : UnsafePointer(P)
                weightValues(used, v, into: C, S: S, D: D, ld: ld, H: H, precision: precision, scratch: tiles)
            }
        }
    }

    /// Backward of `forward`: writes `dQKV` `[B, S, 3H]` from `dContext` `[B, S, H]`.
    ///   dV = P̃ᵀ·dC,  dP̃ = dC·vᵀ,  dP = dropout(dP̃),  dZ = P ⊙ (dP − rowsum(dP ⊙ P)),  dq = dZ·k/√D,  dk = dZᵀ·q/√D
    public static func backward(dContext: UnsafePointer<Float>, qkv: UnsafePointer<Float>, probs: UnsafePointer<Float>,
                                dQKV: UnsafeMutablePointer<Float>, batch B: Int, seqLength S: Int, heads A: Int,
                                headSize D: Int, dropout p: Float, rng: CounterRNG, streamLength: Int? = nil,
                                scratch: UnsafeMutablePointer<Float>, precision: GEMMPrecision = .fp32) {
        let H = A * D, ld = 3 * H, scale = 1 / Float(D).squareRoot()
        let layout = DropoutLayout(S: S, W: S, streamS: streamLength ?? S, streamW: streamLength ?? S)
        Parallel.forChunks(B * A) { chunk, pairs in
            let dP = scratch + chunk * perThread(S), dropped = dP + S * S, tiles = dropped + S * S
            for pair in pairs {
                let b = pair / A, a = pair % A
                let q = qkv + b * S * 3 * H + a * D, k = q + H, v = q + 2 * H
                let dq = dQKV + b * S * 3 * H + a * D, dk = dq + H, dv = dq + 2 * H
                let dC = dContext + b * S * H + a * D
                let P = probs + pair * S * S
                let used = p > 0 ? dropout(P, into: dropped, pair: pair, S: S, layout: layout, p: p, rng: rng) : P
                AttentionTiles.product(transposeA: true, transposeB: false, M: S, N: D, K: S, sequence: .sum, A: used, lda: S,
                                       B: dC, ldb: H, beta: 0, C: dv, ldc: ld, precision: precision, scratch: tiles)
                AttentionTiles.product(transposeA: false, transposeB: true, M: S, N: S, K: D, sequence: .columns, A: dC, lda: H,
                                       B: v, ldb: ld, beta: 0, C: dP, ldc: S, precision: precision, scratch: tiles)
                if p > 0 { _ = dropout(dP, into: dP, pair: pair, S: S, layout: layout, p: p, rng: rng) }
                for i in 0..<S { softmaxBackwardRow(dP + i * S, probs: P + i * S, count: S) }
                AttentionTiles.product(transposeA: false, transposeB: false, M: S, N: D, K: S, sequence: .sum, alpha: scale,
                                       A: dP, lda: S, B: k, ldb: ld, beta: 0, C: dq, ldc: ld, precision: precision,
                                       scratch: tiles)
                AttentionTiles.product(transposeA: true, transposeB: false, M: S, N: D, K: S, sequence: .sum, alpha: scale,
                                       A: dP, lda: S, B: q, ldb: ld, beta: 0, C: dk, ldc: ld, precision: precision,
                                       scratch: tiles)
            }
        }
    }

    /// `row = softmax(row + bias)` in place; without `normalize`, `row = exp(row + bias − max)` and the caller divides
    /// by the sum. Returns 1 / the sum.
    @discardableResult @inline(__always)
    static func softmaxRow(_ row: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, count S: Int,
                           normalize: Bool = true, avx512: Bool = AVX512.available) -> Float {
        // Two passes over the row: the max of row + bias (reading only), then the exponentials stored and summed —
        // on AVX-512 the same passes 16 lanes at a time, with the same bits.
        var sum = Vec8()
        if avx512 {
            withUnsafeMutableBytes(of: &sum) {
                ak_softmax_exponentials(row, bias, S, $0.baseAddress!.assumingMemoryBound(to: Float.self))
            }
        } else {
            var mx = Vec8(repeating: -.infinity), j = 0
            while j < S {
                let n = min(8, S - j)
                let z = load8(row + j, n, fill: -.infinity) + load8(bias + j, n)
                mx = mx.replacing(with: z, where: z .> mx)
                j += 8
            }
            let m = mx.max()
            j = 0
            while j < S {
                let n = min(8, S - j)
                var e = vexp(load8(row + j, n) + load8(bias + j, n) - m)
                if n < 8 { for lane in n..<8 { e[lane] = 0 } }
                store8(e, row + j, n)
                sum += e
                j += 8
            }
        }
        let inv = 1 / hsum(sum)
        if normalize { scaleRow(row, by: inv, count: S) }
        return inv
    }

    /// `softmaxRow` over the keys [range[0], range[1]) of an S-wide row, the others set to 0; over all S without a range.
    @discardableResult @inline(__always)
    static func softmaxVisible(_ row: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, S: Int,
                               range: UnsafePointer<Int32>?, normalize: Bool = true) -> Float {
        guard let range else { return softmaxRow(row, bias: bias, count: S, normalize: normalize) }
        let lo = Int(range[0]), hi = Int(range[1])
        row.update(repeating: 0, count: lo)
        (row + hi).update(repeating: 0, count: S - hi)
        return softmaxRow(row + lo, bias: bias + lo, count: hi - lo, normalize: normalize)
    }

    /// `C[S, D] = P[S, S] · v[S, D]`: probabilities times values, summed over the keys.
    @inline(__always) static func weightValues(_ P: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                                               into C: UnsafeMutablePointer<Float>, S: Int, D: Int, ld: Int, H: Int,
                                               precision: GEMMPrecision, scratch: UnsafeMutablePointer<Float>) {
        AttentionTiles.product(transposeA: false, transposeB: false, M: S, N: D, K: S, sequence: .sum, A: P, lda: S, B: v,
                               ldb: ld, beta: 0, C: C, ldc: H, precision: precision, scratch: scratch)
    }

    /// `row *= factor`.
    @inline(__always) static func scaleRow(_ row: UnsafeMutablePointer<Float>, by factor: Float, count: Int) {
        var j = 0
        while j < count { let n = min(8, count - j); store8(load8(row + j, n) * factor, row + j, n); j += 8 }
    }

    /// `dz = P ⊙ (dP − Σ dP ⊙ P)` in place over `dP`.
    @inline(__always) static func softmaxBackwardRow(_ dP: UnsafeMutablePointer<Float>, probs P: UnsafePointer<Float>,
                                                     count S: Int) {
        var dot = Vec8(), j = 0
        while j < S { let n = min(8, S - j); dot += load8(dP + j, n) * load8(P + j, n); j += 8 }
        let d = hsum(dot)
        j = 0
        while j < S { let n = min(8, S - j); store8(load8(P + j, n) * (load8(dP + j, n) - d), dP + j, n); j += 8 }
    }

    /// Dropout of one (b, a) tile; element (i, j) of pair `pair` is stream element `layout.streamIndex((pair·S + i)·S + j)`.
    private static func dropout(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, pair: Int, S: Int,
                                layout: DropoutLayout, p: Float, rng: CounterRNG) -> UnsafePointer<Float> {
        var o = 0
        while o < S * S {
            let (first, n) = layout.run(from: pair * S * S + o, to: (pair + 1) * S * S)
            Dropout.apply(src + o, into: dst + o, elements: first..<(first + n), probability: p, rng: rng)
            o += n
        }
        return UnsafePointer(dst)
    }
}
