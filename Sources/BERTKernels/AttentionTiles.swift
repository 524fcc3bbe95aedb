/// Attention's per-head products in library calls of one shape, whatever the sequence length.
///
/// Why: a GEMM library picks its kernels and its blocking of the sum from a call's size, so an element of q·kᵀ, or a
/// sum over keys, can come out with other bits when S changes. A batch trimmed to its longest real sequence (and a
/// packed row against the same sequences unpacked) must give its real positions the padded batch's bits. Measured:
/// oneDNN's AVX2 kernels changed q·kᵀ for S = 152 against S = 384, and P·v's rows, and on AVX-512 a sum over more than
/// 256 keys changed with its length (zero terms past the end included); OpenBLAS's Haswell kernels changed nearly
/// every shape. So every dimension that runs over the sequence — C's rows always, and either its columns (q·kᵀ, one per
/// key) or the sum (over keys or queries) — is cut into blocks of `size`; a partial last block is computed as a whole
/// one, zero-padded in scratch. Each element is then computed by a call of the same shape at the same place in it, in
/// a trimmed batch as in the padded one, on every CPU and library.
///
/// Relying on a library keeping a row's bits is not enough here: oneDNN's AVX-512 kernels, which do for the model's
/// other products (`GEMM.Engine.keepsRowBits`), changed P·v's rows between S = 152 and S = 384 at MiniLM's head size of
/// 32. The padding costs a trimmed batch the work of its last partial block: trimmed MRPC training with bert-mini ran
/// 7 % slower than with unpadded products (which were not exact).
enum AttentionTiles {
    /// Positions per block.
    static let size = 128
    /// Floats of scratch one thread's products need: padded blocks of A, B and C.
    static let scratchCount = 3 * size * size

    /// Which dimension besides C's rows runs over the sequence.
    enum Sequence {
        /// C's columns (q·kᵀ and dC·vᵀ: one per key); the sum runs over the head size.
        case columns
        /// The sum (P·v and dZ·k over keys, P̃ᵀ·dC and dZᵀ·q over queries); C's columns are the head size.
        case sum
    }

    /// `C[M, N] = α·op(A)·op(B) + β·C` in calls of `size` rows and, along `sequence`, `size` columns or terms; the other
    /// dimension (the head size) in pieces of at most `size`.
    static func product(transposeA: Bool, transposeB: Bool, M: Int, N: Int, K: Int, sequence: Sequence, alpha: Float = 1,
                        A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int, beta: Float,
                        C: UnsafeMutablePointer<Float>, ldc: Int, precision: GEMMPrecision,
                        scratch: UnsafeMutablePointer<Float>) {
        // A head wider than a block is cut too: the same cuts in every run, since the head size does not change.
        let T = size, nStep = sequence == .columns ? T : min(N, T), kStep = sequence == .sum ? T : min(K, T)
        let padA = scratch, padB = scratch + T * T, padC = scratch + 2 * T * T
        for m0 in stride(from: 0, to: M, by: T) {
            let m = min(T, M - m0)
            for n0 in stride(from: 0, to: N, by: nStep) {
                let n = min(nStep, N - n0)
                let whole = m == T && n == nStep
                let c = whole ? C + m0 * ldc + n0 : padC, cld = whole ? ldc : nStep
                if !whole && beta != 0 {   // with β = 0 the first call overwrites the padded block
                    padC.update(repeating: 0, count: T * nStep)
                    for i in 0..<m { (padC + i * nStep).update(from: C + (m0 + i) * ldc + n0, count: n) }
                }
                for k0 in stride(from: 0, to: K, by: kStep) {
                    let k = min(kStep, K - k0)
                    let a = block(A, ld: lda, transposed: transposeA, rows: m0, m, of: T, columns: k0, k, of: kStep, into: padA)
                    let b = block(B, ld: ldb, transposed: transposeB, rows: k0, k, of: kStep, columns: n0, n, of: nStep,
                                  into: padB)
                    GEMM.serial(transposeA: transposeA, transposeB: transposeB, M: T, N: nStep, K: kStep, alpha: alpha,
                                A: a.pointer, lda: a.ld, B: b.pointer, ldb: b.ld, beta: k0 == 0 ? beta : 1, C: c, ldc: cld,
                                precision: precision)
                }
                if !whole { for i in 0..<m { (C + (m0 + i) * ldc + n0).update(from: padC + i * nStep, count: n) } }
            }
        }
    }

    /// Rows `r0..<r0+r` and columns `c0..<c0+c` of `op(X)`, as a pointer and leading dimension laid out as X is (`op`
    /// transposes when `transposed`): X itself when the block is whole (`r == R`, `c == Cw`), else a copy zero-padded to
    /// `R × Cw` in `scratch`.
    @inline(__always)
    private static func block(_ X: UnsafePointer<Float>, ld: Int, transposed: Bool, rows r0: Int, _ r: Int, of R: Int,
                              columns c0: Int, _ c: Int, of Cw: Int,
                              into scratch: UnsafeMutablePointer<Float>) -> (pointer: UnsafePointer<Float>, ld: Int) {
        // In memory, op(X)'s rows are X's columns when transposed.
        let (outer0, outer, outerPad, inner0, inner, innerPad) = transposed ? (c0, c, Cw, r0, r, R) : (r0, r, R, c0, c, Cw)
        if outer == outerPad && inner == innerPad { return (X + outer0 * ld + inner0, ld) }
        scratch.update(repeating: 0, count: outerPad * innerPad)
        for o in 0..<outer { (scratch + o * innerPad).update(from: X + (outer0 + o) * ld + inner0, count: inner) }
        return (UnsafePointer(scratch), innerPad)
    }
}
