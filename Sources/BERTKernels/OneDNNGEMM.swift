import CDNNL
import Foundation

/// One fp32 product by oneDNN's `dnnl_sgemm` on the calling thread, shaped so that every row and column of C gets the
/// same bits however many rows or columns the call computes.
///
/// Why: a batch trimmed to its longest real sequence, and a different split over threads, give the padded run's bits
/// only if a row of C does not depend on M (nor a column on N). oneDNN picks its blocking of K, and for M < 16 a
/// different kernel, by the problem's size, so the same row came out differently at M = 16 and M = 2048 for K above
/// 768, and at every M below 16 (Debian's 2.6, AVX-512 kernels).
/// Calls of at most 768 terms of K (added into C one after another) and of at least 16 rows (a smaller M is computed
/// in a 16-row copy) were row- and column-invariant on every shape of the presets with its AVX-512 kernels; `GEMMTests`
/// checks it. Its AVX2 kernels are not, even so (`GEMM.Engine.keepsRowBits`).
enum OneDNNGEMM {
    /// The most terms of K one library call sums.
    static let depthChunk = 768
    /// The fewest rows one library call computes.
    static let minimumRows = 16

    static func multiply(transposeA: Bool, transposeB: Bool, M: Int, N: Int, K: Int, alpha: Float,
                         A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int, beta: Float,
                         C: UnsafeMutablePointer<Float>, ldc: Int) {
        // A team of one: oneDNN would otherwise start an OpenMP team of every core under each of our threads. The
        // setting belongs to the calling thread, and setting it again costs a store.
        omp_set_num_threads(1)
        atLeastMinimumRows(transposeA: transposeA, M: M, N: N, K: K, A: A, lda: lda, beta: beta, C: C, ldc: ldc) {
            chunked(transposeA, transposeB, $0, N, K, alpha, $1, $2, B, ldb, beta, $3, $4)
        }
    }

    /// `x · Wᵀ` (`x` `[M, K]` row-major with leading dimension `ldx`) into `C`, or added to it with β 1, with `W`
    /// packed once (`OneDNNPackedWeight`): the same bits as `multiply(transposeA: false, transposeB: true, …)`.
    static func multiply(M: Int, x: UnsafePointer<Float>, ldx: Int, packed w: OneDNNPackedWeight, beta: Float,
                         C: UnsafeMutablePointer<Float>, ldc: Int) {
        omp_set_num_threads(1)
        let N = w.outFeatures, K = w.inFeatures
        atLeastMinimumRows(transposeA: false, M: M, N: N, K: K, A: x, lda: ldx, beta: beta, C: C, ldc: ldc) {
            w.multiply(rows: $0, x: $1, ldx: $2, beta: beta, C: $3, ldc: $4)
        }
    }

    /// Runs `product(M, A, lda, C, ldc)` as it is when M ≥ 16, else on buffers of 16 rows laid out as the caller's
    /// (op(A)'s M rows and C's, the extra rows zero) whose first M rows of C are then copied back.
    private static func atLeastMinimumRows(
        transposeA: Bool, M: Int, N: Int, K: Int, A: UnsafePointer<Float>, lda: Int, beta: Float,
        C: UnsafeMutablePointer<Float>, ldc: Int,
        _ product: (Int, UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>, Int) -> Void
    ) {
        guard M < minimumRows else { return product(M, A, lda, C, ldc) }
        let rows = minimumRows
        let paddedA = UnsafeMutablePointer<Float>.allocate(capacity: rows * K)
        let paddedC = UnsafeMutablePointer<Float>.allocate(capacity: rows * N)
        defer { paddedA.deallocate(); paddedC.deallocate() }
        paddedA.initialize(repeating: 0, count: rows * K)
        paddedC.initialize(repeating: 0, count: rows * N)
        for m in 0..<M {
            if transposeA {
                for k in 0..<K { paddedA[k * rows + m] = A[k * lda + m] }
            } else {
                paddedA.advanced(by: m * K).update(from: A + m * lda, count: K)
            }
            if beta != 0 { paddedC.advanced(by: m * N).update(from: C + m * ldc, count: N) }
        }
        product(rows, paddedA, transposeA ? rows : K, paddedC, N)
        for m in 0..<M { (C + m * ldc).update(from: paddedC + m * N, count: N) }
    }

    /// `dnnl_sgemm` over pieces of K of at most `depthChunk` terms, the first scaling C by β, the rest adding to it.
    private static func chunked(_ transposeA: Bool, _ transposeB: Bool, _ M: Int, _ N: Int, _ K: Int, _ alpha: Float,
                                _ A: UnsafePointer<Float>, _ lda: Int, _ B: UnsafePointer<Float>, _ ldb: Int,
                                _ beta: Float, _ C: UnsafeMutablePointer<Float>, _ ldc: Int) {
        let (t, n) = (CChar(UInt8(ascii: "T")), CChar(UInt8(ascii: "N")))
        var k0 = 0
        repeat {
            let depth = min(depthChunk, K - k0)
            let a = transposeA ? A + k0 * lda : A + k0, b = transposeB ? B + k0 : B + k0 * ldb
            let status = dnnl_sgemm(transposeA ? t : n, transposeB ? t : n, Int64(M), Int64(N), Int64(depth), alpha, a,
                                    Int64(lda), b, Int64(ldb), k0 == 0 ? beta : 1, C, Int64(ldc))
            precondition(status == dnnl_success, "dnnl_sgemm failed (status \(status.rawValue)) for \(M)×\(N)×\(depth)")
            k0 += depth
        } while k0 < K
    }
}

/// A linear layer's weight `[N, K]` packed once by oneDNN's own packing routine, for products `x · Wᵀ` on the
/// calling thread (`OneDNNGEMM.multiply(M:x:ldx:packed:…)`).
///
/// Why: at the few rows of a single request (128 tokens, split over the threads), `dnnl_sgemm` spent a sixth of a
/// bert-mini forward repacking the weights on every call (`perf`: `jit_avx512_core_f32_copy_at_kern` 14.7 % of the
/// samples, Zen 5); packed once, the products ran 1.05–1.5× faster at 16–192 rows and even at thousands
/// (`bench/results/onednn-packed.md`), with the same bits as `dnnl_sgemm`'s at every row count tried.
/// The routine (`sgemm_pack` / `sgemm_compute`, MKL's packed-GEMM interface as oneDNN's recurrent layers use it) is
/// exported by libdnnl but has no C declaration, so it is looked up by its C++ symbol; where it is missing (another
/// oneDNN), `init` fails and the caller keeps the unpacked product.
///
/// The packing depends on the OpenMP team size when it runs (`Layout`); the product always runs on one thread.
public final class OneDNNPackedWeight: @unchecked Sendable {
    /// The layout oneDNN packs for a team of this many threads: for two, the weight's outputs cut into two slices,
    /// each padded to a multiple of 256 outputs (a square 768 × 768 weight takes 1.36× its bytes, a 3072-wide one
    /// 1.01×), which a product on one thread runs in turn. The bits are the same in both.
    ///
    /// Why two: with the weight streamed from memory, as in a forward whose weights are far larger than the cache,
    /// one thread's product of few rows ran faster over the two-thread layout — 16–17 % at 16 and 64 rows, 3–5 % at
    /// 128 on bert-base's shapes (Zen 5) — and from 192 rows on within 3 % either way, reading the rows once per slice
    /// (`bench/results/onednn-packed-layout.md`). More threads' layouts took the same bytes and time as two's.
    public enum Layout: Int32, Sendable {
        case oneThread = 1, twoThreads = 2

        /// The faster layout for products of `rows` rows on a thread.
        public static func forProducts(ofRows rows: Int) -> Layout { rows <= 128 ? .twoThreads : .oneThread }
    }

    public let outFeatures: Int, inFeatures: Int
    public let layout: Layout
    /// One packed piece per `OneDNNGEMM.depthChunk` terms of K, as the unpacked product sums them.
    private let pieces: [UnsafeMutableRawPointer]
    /// Bytes held.
    public let bytes: Int

    /// Packs `weight` `[outFeatures, inFeatures]` (row-major, as PyTorch's `nn.Linear`) in `layout`; nil where oneDNN
    /// lacks the routine or refuses.
    public init?(weight: UnsafePointer<Float>, outFeatures N: Int, inFeatures K: Int, layout: Layout = .oneThread) {
        guard let api = Self.api, N > 0, K > 0 else { return nil }
        omp_set_num_threads(layout.rawValue)
        defer { omp_set_num_threads(1) }
        var pieces: [UnsafeMutableRawPointer] = [], bytes = 0
        var k0 = 0
        repeat {
            var (m, n, k, lda, ldb) = Self.pieceShape(outFeatures: N, inFeatures: K, from: k0)
            var size = 0, packs = false
            guard api.size("A", "T", "N", &m, &n, &k, &lda, &ldb, &size, &packs) == 0, size > 0 else { break }
            let piece = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
            guard api.pack("A", "T", "N", &m, &n, &k, &lda, &ldb, weight + k0, piece) == 0 else {
                piece.deallocate()
                break
            }
            pieces.append(piece)
            bytes += size
            k0 += k
        } while k0 < K
        guard k0 >= K else {
            pieces.forEach { $0.deallocate() }
            return nil
        }
        (outFeatures, inFeatures, self.layout, self.pieces, self.bytes) = (N, K, layout, pieces, bytes)
    }

    deinit { pieces.forEach { $0.deallocate() } }

    /// The bytes a weight `[outFeatures, inFeatures]` takes packed in `layout`; nil where oneDNN lacks the routine.
    public static func bytes(outFeatures N: Int, inFeatures K: Int, layout: Layout) -> Int? {
        guard let api, N > 0, K > 0 else { return nil }
        omp_set_num_threads(layout.rawValue)
        defer { omp_set_num_threads(1) }
        var total = 0
        for k0 in stride(from: 0, to: K, by: OneDNNGEMM.depthChunk) {
            var (m, n, k, lda, ldb) = pieceShape(outFeatures: N, inFeatures: K, from: k0)
            var size = 0, packs = false
            guard api.size("A", "T", "N", &m, &n, &k, &lda, &ldb, &size, &packs) == 0 else { return nil }
            total += size
        }
        return total
    }

    /// The column-major terms of the piece of K from `k0`: A = Wᵀ's rows k0..<k0+depth (K × N, ld K) is what gets
    /// packed, "T" since C is computed as (x · Wᵀ)ᵀ = W · xᵀ; `n` the fewest rows a product computes.
    private static func pieceShape(outFeatures N: Int, inFeatures K: Int, from k0: Int)
        -> (m: Int, n: Int, k: Int, lda: Int, ldb: Int) {
        (N, OneDNNGEMM.minimumRows, min(OneDNNGEMM.depthChunk, K - k0), K, K)
    }

    /// `C = x · Wᵀ + β·C` for `rows` ≥ 16 rows, one `sgemm_compute` per piece of K.
    fileprivate func multiply(rows M: Int, x: UnsafePointer<Float>, ldx: Int, beta: Float,
                              C: UnsafeMutablePointer<Float>, ldc: Int) {
        let api = Self.api!
        var k0 = 0
        for piece in pieces {
            var (m, n, k, lda, ldb, ldcc) = (outFeatures, M, min(OneDNNGEMM.depthChunk, inFeatures - k0), inFeatures, ldx, ldc)
            var b: Float = k0 == 0 ? beta : 1
            let status = api.compute("P", "N", &m, &n, &k, piece.assumingMemoryBound(to: Float.self), &lda, x + k0,
                                     &ldb, &b, C, &ldcc)
            precondition(status == 0, "oneDNN sgemm_compute failed (status \(status)) for \(M)×\(outFeatures)×\(k)")
            k0 += k
        }
    }

    private typealias Size = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafePointer<CChar>,
                                             UnsafePointer<Int>, UnsafePointer<Int>, UnsafePointer<Int>,
                                             UnsafePointer<Int>, UnsafePointer<Int>, UnsafeMutablePointer<Int>,
                                             UnsafeMutablePointer<Bool>) -> Int32
    private typealias Pack = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafePointer<CChar>,
                                             UnsafePointer<Int>, UnsafePointer<Int>, UnsafePointer<Int>,
                                             UnsafePointer<Int>, UnsafePointer<Int>, UnsafePointer<Float>,
                                             UnsafeMutableRawPointer) -> Int32
    private typealias Compute = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafePointer<Int>,
                                                UnsafePointer<Int>, UnsafePointer<Int>, UnsafePointer<Float>,
                                                UnsafePointer<Int>, UnsafePointer<Float>, UnsafePointer<Int>,
                                                UnsafePointer<Float>, UnsafeMutablePointer<Float>,
                                                UnsafePointer<Int>) -> Int32
    private struct API: @unchecked Sendable { let size: Size, pack: Pack, compute: Compute }

    /// `dnnl::impl::cpu::sgemm_pack_get_size`, `sgemm_pack` and `sgemm_compute` (oneDNN 2.x's `gemm_pack.hpp`).
    private static let api: API? = {
        let h = dlopen(nil, RTLD_NOW)
        guard let size = dlsym(h, "_ZN4dnnl4impl3cpu19sgemm_pack_get_sizeEPKcS3_S3_PKlS5_S5_S5_S5_PmPb"),
              let pack = dlsym(h, "_ZN4dnnl4impl3cpu10sgemm_packEPKcS3_S3_PKlS5_S5_S5_S5_PKfPf"),
              let compute = dlsym(h, "_ZN4dnnl4impl3cpu13sgemm_computeEPKcS3_PKlS5_S5_PKfS5_S7_S5_S7_PfS5_")
        else { return nil }
        return API(size: unsafeBitCast(size, to: Size.self), pack: unsafeBitCast(pack, to: Pack.self),
                   compute: unsafeBitCast(compute, to: Compute.self))
    }()

    /// Whether this process's oneDNN has the packing routine.
    public static var available: Bool { api != nil }
}
