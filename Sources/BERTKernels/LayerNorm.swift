// LayerNorm over the last dimension. Shapes: N rows, H features.
//   y = (x − mean) · rstd · γ + β,   rstd = 1 / sqrt(var + eps)   (biased variance, as PyTorch)

public enum LayerNorm {
    /// Normalises each row of `x` `[N, H]` into `y` `[N, H]` (y may alias x), saving `mean` and `rstd` `[N]` for the
    /// backward.
    public static func forward(x: UnsafePointer<Float>, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                               y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                               rstd: UnsafeMutablePointer<Float>, rows N: Int, features H: Int, eps: Float) {
        Parallel.forChunks(N, minimumChunk: 8) { _, rows in
            for r in rows {
                (mean[r], rstd[r]) = normalize(x + r * H, gamma: gamma, beta: beta, into: y + r * H, features: H, eps: eps)
            }
        }
    }

    /// One row: `y = (x − mean) · rstd · γ + β`; returns (mean, rstd). `y` may alias `x`.
    @inline(__always)
    static func normalize(_ xr: UnsafePointer<Float>, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                          into yr: UnsafeMutablePointer<Float>, features H: Int, eps: Float) -> (Float, Float) {
        let m = rowSum(xr, features: H) { $0 } / Float(H)
        let s = 1 / (rowSum(xr, features: H, fill: m) { ($0 - m) * ($0 - m) } / Float(H) + eps).squareRoot()
        var h = 0
        while h < H {
            let n = min(8, H - h)
            store8((load8(xr + h, n) - m) * s * load8(gamma + h, n) + load8(beta + h, n), yr + h, n)
            h += 8
        }
        return (m, s)
    }

    /// Σ f(x[h]) over a row, lanes past H read as `fill`. Four partial sums, each over every fourth block of 8: one
    /// running sum waits on its own latency at every add, and the statistics of a row are most of LayerNorm's time.
    @inline(__always)
    static func rowSum(_ xr: UnsafePointer<Float>, features H: Int, fill: Float = 0, _ f: (Vec8) -> Vec8) -> Float {
        var s0 = Vec8(), s1 = Vec8(), s2 = Vec8(), s3 = Vec8(), h = 0
        while h + 32 <= H {
            s0 += f(load8(xr + h))
            s1 += f(load8(xr + h + 8))
            s2 += f(load8(xr + h + 16))
            s3 += f(load8(xr + h + 24))
            h += 32
        }
        while h < H { s0 += f(load8(xr + h, min(8, H - h), fill: fill)); h += 8 }
        return hsum((s0 + s1) + (s2 + s3))
    }

    /// Backward of `forward`. With x̂ = (x − mean)·rstd and g = dy·γ:
    /// `dx = rstd · (g − mean(g) − x̂ · mean(g · x̂))`, `dγ += Σ dy·x̂`, `dβ += Σ dy`.
    /// `dx` may alias `dy` (each row's sums are taken before it is written). `scratch` holds
    /// `2 · H · Parallel.threadCount` floats for the per-thread partial sums of dγ and dβ. With `sequences`, the
    /// threads split the rows between whole sequences only (`SequenceRows.swift`: a trimmed batch's bits).
    public static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                dGamma: UnsafeMutablePointer<Float>, dBeta: UnsafeMutablePointer<Float>,
                                rows N: Int, features H: Int, scratch: UnsafeMutablePointer<Float>,
                                sequences: SequenceRows? = nil) {
        scratch.initialize(repeating: 0, count: 2 * H * Parallel.threadCount)
        let L = sequences?.length ?? 1
        Parallel.forChunks(N / L, minimumChunk: max(1, 8 / L)) { chunk, groups in
            let pg = scratch + chunk * 2 * H, pb = pg + H
            for r in (groups.lowerBound * L)..<(groups.upperBound * L) {
                let xr = x + r * H, dyr = dy + r * H, dxr = dx + r * H
                let m = mean[r], s = rstd[r]
                var sumG = Vec8(), sumGX = Vec8(), h = 0
                while h < H {
                    let n = min(8, H - h)
                    let xh = (load8(xr + h, n, fill: m) - m) * s, d = load8(dyr + h, n)
                    let g = d * load8(gamma + h, n)
                    sumG += g
                    sumGX += g * xh
                    store8(load8(pg + h, n) + d * xh, pg + h, n)
                    store8(load8(pb + h, n) + d, pb + h, n)
                    h += 8
                }
                let meanG = hsum(sumG) / Float(H), meanGX = hsum(sumGX) / Float(H)
                h = 0
                while h < H {
                    let n = min(8, H - h)
                    let xh = (load8(xr + h, n) - m) * s
                    let g = load8(dyr + h, n) * load8(gamma + h, n)
                    store8((g - meanG - xh * meanGX) * s, dxr + h, n)
                    h += 8
                }
            }
        }
        // Sum the per-thread partials (unused chunks are still zero), then add the total once.
        for h in 0..<H {
            var g: Float = 0, b: Float = 0
            for t in 0..<Parallel.threadCount { g += scratch[t * 2 * H + h]; b += scratch[t * 2 * H + H + h] }
            dGamma[h] += g
            dBeta[h] += b
        }
    }
}
