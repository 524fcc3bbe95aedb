import CBF16GEMM
import Foundation

/// The inputs a GEMM multiplies: fp32 as stored, or rounded to bf16 (fp32 accumulation either way).
public enum GEMMPrecision: Sendable {
    case fp32
    /// `torch.autocast(dtype=torch.bfloat16)`'s GEMM inputs, with fp32 accumulation and fp32 output.
    case bf16
}

/// `GEMM.multiply` with both inputs rounded to bf16 (to nearest even) and fp32 accumulation — mixed-precision
/// arithmetic, run on the CPU's AMX tiles where it has them (Sapphire Rapids and later: 16×16×32 multiply-adds per
/// instruction, several times fp32 AVX-512's rate).
///
/// Elsewhere the same numbers come from rounding copies of the inputs and one fp32 `GEMM.multiply` (products of bf16
/// are exact in fp32, so the two differ only in the order of the fp32 sums); that path is correct but not faster.
public enum BF16GEMM {
    /// Whether this process runs bf16 GEMMs on AMX.
    public static let usesAMX = bg_amx_available() != 0

    public static func multiply(transposeA: Bool, transposeB: Bool, M: Int, N: Int, K: Int, alpha: Float = 1,
                                A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int,
                                beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int, amx: Bool = usesAMX) {
        guard M > 0, N > 0 else { return }
        guard amx else {
            return reference(transposeA: transposeA, transposeB: transposeB, M: M, N: N, K: K, alpha: alpha, A: A,
                             lda: lda, B: B, ldb: ldb, beta: beta, C: C, ldc: ldc)
        }
        scratch.withBuffer(bg_padded(K) * bg_padded(N)) { b in
            packB(B, ldb: ldb, transposed: transposeB, K: K, N: N, into: b)
            multiply(transposeA: transposeA, M: M, N: N, K: K, alpha: alpha, A: A, lda: lda, packedB: b, beta: beta,
                     C: C, ldc: ldc)
        }
    }

    /// `multiply` with op(B) already packed (`bg_pack_b`'s layout, e.g. a `BF16PackedWeight`). Needs `usesAMX`.
    public static func multiply(transposeA: Bool, M: Int, N: Int, K: Int, alpha: Float = 1, A: UnsafePointer<Float>,
                                lda: Int, packedB b: UnsafePointer<UInt16>, beta: Float, C: UnsafeMutablePointer<Float>,
                                ldc: Int) {
        guard M > 0, N > 0 else { return }
        let rowBlocks = bg_padded(M) / 32, columnBlocks = bg_padded(N) / 32
        scratch.withBuffer(bg_padded(M) * bg_padded(K)) { a in
            nonisolated(unsafe) let a = a
            // Packing reads each input once, a small part of the multiply's traffic; each thread packs its share.
            Parallel.forChunks(rowBlocks) { _, blocks in
                bg_pack_a(A, lda, transposeA ? 1 : 0, M, K, blocks.lowerBound * 32, blocks.upperBound * 32, a)
            }
            // Threads take whole block rows (or block columns, when there are more of those).
            Parallel.forChunks(max(rowBlocks, columnBlocks)) { _, blocks in
                let (rows, columns) = rowBlocks >= columnBlocks
                    ? (blocks, 0..<columnBlocks) : (0..<rowBlocks, blocks)
                bg_multiply(a, b, M, N, K, alpha, beta, C, ldc, rows.lowerBound, rows.upperBound,
                            columns.lowerBound, columns.upperBound)
            }
        }
    }

    /// op(B) `[K, N]` packed into `b` (`bg_pack_b`'s layout), each thread packing its blocks of columns.
    static func packB(_ B: UnsafePointer<Float>, ldb: Int, transposed: Bool, K: Int, N: Int,
                      into b: UnsafeMutablePointer<UInt16>) {
        nonisolated(unsafe) let b = b
        Parallel.forChunks(bg_padded(N) / 32) { _, blocks in
            bg_pack_b(B, ldb, transposed ? 1 : 0, K, N, blocks.lowerBound * 32, blocks.upperBound * 32, b)
        }
    }

    /// `multiply` in the calling thread alone, for kernels already running on a worker (attention's per-head products).
    static func serial(transposeA: Bool, transposeB: Bool, M: Int, N: Int, K: Int, alpha: Float,
                       A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int, beta: Float,
                       C: UnsafeMutablePointer<Float>, ldc: Int) {
        guard M > 0, N > 0 else { return }
        guard usesAMX else {
            return reference(transposeA: transposeA, transposeB: transposeB, M: M, N: N, K: K, alpha: alpha, A: A,
                             lda: lda, B: B, ldb: ldb, beta: beta, C: C, ldc: ldc, serial: true)
        }
        let (m32, n32, k32) = (bg_padded(M), bg_padded(N), bg_padded(K))
        scratch.withBuffer(k32 * n32) { b in
            scratch.withBuffer(m32 * k32) { a in
                bg_pack_b(B, ldb, transposeB ? 1 : 0, K, N, 0, n32, b)
                bg_pack_a(A, lda, transposeA ? 1 : 0, M, K, 0, m32, a)
                bg_multiply(a, b, M, N, K, alpha, beta, C, ldc, 0, m32 / 32, 0, n32 / 32)
            }
        }
    }

    /// The same numbers without AMX: bf16-rounded copies of op(A) and op(B), then an fp32 GEMM.
    static func reference(transposeA: Bool, transposeB: Bool, M: Int, N: Int, K: Int, alpha: Float,
                          A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int, beta: Float,
                          C: UnsafeMutablePointer<Float>, ldc: Int, serial: Bool = false) {
        let a = rounded(A, transposed: transposeA, rows: M, columns: K, ld: lda)
        let b = rounded(B, transposed: transposeB, rows: K, columns: N, ld: ldb)
        if serial {
            GEMM.serial(transposeA: false, transposeB: false, M: M, N: N, K: K, alpha: alpha, A: a, lda: K, B: b, ldb: N,
                        beta: beta, C: C, ldc: ldc)
        } else {
            GEMM.multiply(transposeA: false, transposeB: false, M: M, N: N, K: K, alpha: alpha, A: a, lda: K, B: b,
                          ldb: N, beta: beta, C: C, ldc: ldc)
        }
    }

    /// op(X) `[rows, columns]` rounded to bf16, row-major.
    private static func rounded(_ x: UnsafePointer<Float>, transposed: Bool, rows: Int, columns: Int,
                                ld: Int) -> [Float] {
        var out = [Float](repeating: 0, count: rows * columns)
        for r in 0..<rows {
            for c in 0..<columns {
                out[r * columns + c] = roundedToBFloat16(transposed ? x[c * ld + r] : x[r * ld + c])
            }
        }
        return out
    }

    private static let scratch = PackedScratch()
}

/// A linear layer's weight `[O, I]` rounded and packed once as the right operand of `x · Wᵀ`, for inference, where
/// the weights never change: packing them on every call cost about a sixth of a batch-1 forward.
public final class BF16PackedWeight: @unchecked Sendable {
    let values: UnsafeMutablePointer<UInt16>
    public let outFeatures: Int, inFeatures: Int

    /// Packs `weight` `[outFeatures, inFeatures]`. Needs `BF16GEMM.usesAMX`.
    public init(weight: UnsafePointer<Float>, outFeatures: Int, inFeatures: Int) {
        (self.outFeatures, self.inFeatures) = (outFeatures, inFeatures)
        values = .allocate(capacity: bg_padded(inFeatures) * bg_padded(outFeatures))
        BF16GEMM.packB(weight, ldb: inFeatures, transposed: true, K: inFeatures, N: outFeatures, into: values)
    }

    deinit { values.deallocate() }
}

/// Packing buffers reused across calls (a fresh large allocation per GEMM would page-fault its way in every time),
/// handed out under a lock so that concurrent GEMMs each get their own.
private final class PackedScratch: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [(UnsafeMutablePointer<UInt16>, Int)] = []

    func withBuffer(_ count: Int, _ body: (UnsafeMutablePointer<UInt16>) -> Void) {
        let buffer = take(count)
        body(buffer.0)
        lock.withLock { free.append(buffer) }
    }

    /// A free buffer of at least `count` elements: the largest one, grown when too small.
    private func take(_ count: Int) -> (UnsafeMutablePointer<UInt16>, Int) {
        let largest: (UnsafeMutablePointer<UInt16>, Int)? = lock.withLock {
            guard let i = free.indices.max(by: { free[$0].1 < free[$1].1 }) else { return nil }
            return free.remove(at: i)
        }
        if let largest, largest.1 >= count { return largest }
        largest?.0.deallocate()
        return (.allocate(capacity: count), count)
    }
}
