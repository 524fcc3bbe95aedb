// Fully connected layer on CBLAS sgemm. Shapes: N rows (tokens), I in-features, O out-features.
// Weights are stored [O, I] like PyTorch's nn.Linear.

/// A linear layer's weight packed once for inference, where the weights never change.
public enum PackedWeight: Sendable {
    /// Rounded to bf16 for the AMX tiles (`BF16GEMM`).
    case bf16(BF16PackedWeight)
    /// fp32 in oneDNN's own layout: the unpacked product's bits without its per-call packing.
    case fp32(OneDNNPackedWeight)
}

public enum Linear {
    /// `y[N, O] = x[N, I] · Wᵀ + b`.
    /// - Parameters: `x` `[N, I]`, `weight` `[O, I]`, `bias` `[O]` or nil, `y` `[N, O]`; `precision` the GEMM's inputs;
    ///   `packedWeight`, when given, is `weight` already packed (for bf16, or for oneDNN in fp32) and used in its place.
    public static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                               y: UnsafeMutablePointer<Float>, rows N: Int, inFeatures I: Int, outFeatures O: Int,
                               precision: GEMMPrecision = .fp32, packedWeight: PackedWeight? = nil) {
        guard N > 0 else { return }
        if let bias {
            Parallel.forChunks(N, minimumChunk: 16) { _, rows in
                for n in rows { (y + n * O).update(from: bias, count: O) }
            }
        }
        let beta: Float = bias == nil ? 0 : 1
        switch packedWeight {
        case .bf16(let packed)?:
            precondition(packed.outFeatures == O && packed.inFeatures == I, "packed weight of another shape")
            BF16GEMM.multiply(transposeA: false, M: N, N: O, K: I, A: x, lda: I, packedB: packed.values, beta: beta,
                              C: y, ldc: O)
        case .fp32(let packed)?:
            precondition(packed.outFeatures == O && packed.inFeatures == I, "packed weight of another shape")
            GEMM.multiply(M: N, x: x, packed: packed, beta: beta, C: y)
        case nil:
            GEMM.multiply(transposeA: false, transposeB: true, M: N, N: O, K: I, A: x, lda: I, B: weight, ldb: I,
                          beta: beta, C: y, ldc: O, precision: precision)
        }
    }

    /// The bias of a `forward` run without one, added later in a pass that is made anyway: `out = y + bias + residual`
    /// with `bias` `[O]` broadcast over the rows of `y` `[N, O]` (inference's residual connections; `out` may alias
    /// `y`). The sums equal a biased `forward`'s to rounding (exactly, where BLAS does not split K into blocks).
    public static func addBias(_ y: UnsafePointer<Float>, bias: UnsafePointer<Float>, residual: UnsafePointer<Float>,
                               _ out: UnsafeMutablePointer<Float>, rows N: Int, outFeatures O: Int) {
        Parallel.forChunks(N, minimumChunk: 16) { _, rows in
            for n in rows {
                let r = n * O
                var j = 0
                while j < O {
                    let k = min(8, O - j)
                    store8(load8(y + r + j, k) + load8(bias + j, k) + load8(residual + r + j, k), out + r + j, k)
                    j += 8
                }
            }
        }
    }

    /// Backward of `forward`: `dW[O, I] += dyᵀ · x`, `db[O] += Σₙ dy`, and `dx[N, I] = dy · W` (or `+=` when
    /// `accumulateInput`). The weight gradient is taken before `dx` is written, so `dx` may alias `x`. With
    /// `sequences`, dW sums the rows in the pieces of `SequenceRows.pieces` (a trimmed batch's bits); else in one call.
    public static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>,
                                dBias: UnsafeMutablePointer<Float>?, rows N: Int, inFeatures I: Int,
                                outFeatures O: Int, accumulateInput: Bool = false, sequences: SequenceRows? = nil,
                                precision: GEMMPrecision = .fp32) {
        guard N > 0 else { return }
        for rows in sequences?.pieces(rows: N) ?? [0..<N] {
            GEMM.multiply(transposeA: true, transposeB: false, M: O, N: I, K: rows.count, A: dy + rows.lowerBound * O,
                          lda: O, B: x + rows.lowerBound * I, ldb: I, beta: 1, C: dWeight, ldc: I, precision: precision)
        }
        if let dBias { addColumnSums(dy, rows: N, columns: O, into: dBias) }
        if let dx {
            GEMM.multiply(transposeA: false, transposeB: false, M: N, N: I, K: O, A: dy, lda: O, B: weight, ldb: I,
                          beta: accumulateInput ? 1 : 0, C: dx, ldc: I, precision: precision)
        }
    }

    /// `out[c] += Σᵣ m[r, c]` for a row-major `[rows, columns]` matrix; threads split the columns. The sum is formed
    /// first and added once, so accumulating over micro-batches adds whole per-batch sums, as an all-reduce does.
    public static func addColumnSums(_ m: UnsafePointer<Float>, rows: Int, columns: Int,
                                     into out: UnsafeMutablePointer<Float>) {
        // 32 columns per pass down the rows where they are whole: four independent sums per row keep the adder busy
        // (one sum alone waits on its own latency), each column still summed in row order.
        Parallel.forChunks((columns + 31) / 32, minimumChunk: 16) { _, groups in
            for group in groups {
                let c = group * 32
                if c + 32 <= columns {
                    var (a0, a1, a2, a3) = (Vec8(), Vec8(), Vec8(), Vec8())
                    for r in 0..<rows {
                        let row = m + r * columns + c
                        a0 += load8(row)
                        a1 += load8(row + 8)
                        a2 += load8(row + 16)
                        a3 += load8(row + 24)
                    }
                    store8(load8(out + c) + a0, out + c)
                    store8(load8(out + c + 8) + a1, out + c + 8)
                    store8(load8(out + c + 16) + a2, out + c + 16)
                    store8(load8(out + c + 24) + a3, out + c + 24)
                    continue
                }
                for first in stride(from: c, to: columns, by: 8) {
                    let width = min(8, columns - first)
                    var acc = Vec8()
                    for r in 0..<rows { acc += load8(m + r * columns + first, width) }
                    store8(load8(out + first, width) + acc, out + first, width)
                }
            }
        }
    }
}
