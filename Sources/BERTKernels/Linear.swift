import CBLAS

// Fully connected layer on CBLAS sgemm. Shapes: N rows (tokens), I in-features, O out-features.
// Weights are stored [O, I] like PyTorch's nn.Linear.

public enum Linear {
    /// `y[N, O] = x[N, I] · Wᵀ + b`.
    /// - Parameters: `x` `[N, I]` (row stride `ldx`, default I), `weight` `[O, I]`, `bias` `[O]` or nil, `y` `[N, O]`.
    public static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                               y: UnsafeMutablePointer<Float>, rows N: Int, inFeatures I: Int, outFeatures O: Int,
                               ldx: Int? = nil) {
        guard N > 0 else { return }
        if let bias {
            Parallel.forChunks(N, minimumChunk: 16) { _, rows in
                for n in rows { (y + n * O).update(from: bias, count: O) }
            }
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(N), Int32(O), Int32(I),
                    1, x, Int32(ldx ?? I), weight, Int32(I), bias == nil ? 0 : 1, y, Int32(O))
    }

    /// Backward of `forward`: `dW[O, I] += dyᵀ · x`, `db[O] += Σₙ dy`, and `dx[N, I] = dy · W` (or `+=` when
    /// `accumulateInput`). The weight gradient is taken before `dx` is written, so `dx` may alias `x`.
    public static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>,
                                dBias: UnsafeMutablePointer<Float>?, rows N: Int, inFeatures I: Int,
                                outFeatures O: Int, accumulateInput: Bool = false, ldx: Int? = nil) {
        guard N > 0 else { return }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(O), Int32(I), Int32(N),
                     1, dy, Int32(O), x, Int32(ldx ?? I), 1, dWeight, Int32(I))
        if let dBias { addColumnSums(dy, rows: N, columns: O, into: dBias) }
        if let dx {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(N), Int32(I), Int32(O),
                         1, dy, Int32(O), weight, Int32(I), accumulateInput ? 1 : 0, dx, Int32(ldx ?? I))
        }
    }

    /// `out[c] += Σᵣ m[r, c]` for a row-major `[rows, columns]` matrix; threads split the columns.
    public static func addColumnSums(_ m: UnsafePointer<Float>, rows: Int, columns: Int,
                                     into out: UnsafeMutablePointer<Float>) {
        Parallel.forChunks((columns + 7) / 8, minimumChunk: 64) { _, blocks in
            for block in blocks {
                let c = block * 8, width = min(8, columns - c)
                var acc = load8(out + c, width)
                for r in 0..<rows { acc += load8(m + r * columns + c, width) }
                store8(acc, out + c, width)
            }
        }
    }
}
