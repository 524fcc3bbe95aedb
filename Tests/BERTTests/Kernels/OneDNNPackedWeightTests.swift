@testable import BERTKernels
import Testing

/// A weight packed once by oneDNN (`OneDNNPackedWeight`), in either layout, gives the unpacked oneDNN product's bits
/// with its AVX-512 kernels (to rounding with its AVX2 ones): every row count (below 16 rows, ragged blocks of 16,
/// split over the threads or not), K in one piece and in several, β 0 and 1.
@Suite(.enabled(if: OneDNNPackedWeight.available, "this oneDNN has no packing routine"))
struct OneDNNPackedWeightTests {
    // (N, K): K = 800 takes two pieces of K; 768 outputs are two padded slices in the two-thread layout.
    static let shapes = [(128, 128), (192, 800), (256, 96), (768, 200)]
    static let layouts: [OneDNNPackedWeight.Layout] = [.oneThread, .twoThreads]

    @Test(arguments: shapes, layouts)
    func packedProductsHaveTheUnpackedBits(shape: (Int, Int), layout: OneDNNPackedWeight.Layout) throws {
        let (N, K) = shape
        var r = TestRandom(31)
        let w = r.normal(N * K, scale: 0.2)
        let packed = try #require(OneDNNPackedWeight(weight: w, outFeatures: N, inFeatures: K, layout: layout))
        #expect(packed.outFeatures == N && packed.inFeatures == K && packed.layout == layout)
        #expect(packed.bytes >= 4 * N * K
                && packed.bytes == OneDNNPackedWeight.bytes(outFeatures: N, inFeatures: K, layout: layout))
        for M in [1, 5, 16, 17, 128, 300] {
            let x = r.normal(M * K), start = r.normal(M * N)
            for beta: Float in [0, 1] {
                var plain = start, fromPacked = start
                GEMM.multiply(transposeA: false, transposeB: true, M: M, N: N, K: K, A: x, lda: K, B: w, ldb: K,
                              beta: beta, C: &plain, ldc: N, engine: .onednn)
                GEMM.multiply(M: M, x: x, packed: packed, beta: beta, C: &fromPacked)
                if GEMM.Engine.onednn.keepsRowBits {
                    #expect(fromPacked.map(\.bitPattern) == plain.map(\.bitPattern), "M \(M), N \(N), K \(K), β \(beta)")
                } else {   // oneDNN's AVX2 kernels: the same sums, blocked otherwise
                    expectClose("M \(M), N \(N), K \(K), β \(beta)", fromPacked, plain, tolerance: 1e-5)
                }
            }
        }
    }

    /// Through `Linear.forward`, with a bias, as the inference backend calls it.
    @Test func aLinearLayerWithItsPackedWeight() throws {
        let (M, N, K) = (40, 128, 200)
        var r = TestRandom(32)
        let x = r.normal(M * K), w = r.normal(N * K, scale: 0.2), b = r.normal(N)
        let packed = try #require(OneDNNPackedWeight(weight: w, outFeatures: N, inFeatures: K))
        var plain = [Float](repeating: 0, count: M * N), fromPacked = plain
        plain.withUnsafeMutableBufferPointer { c in
            for m in 0..<M { (c.baseAddress! + m * N).update(from: b, count: N) }
            GEMM.multiply(transposeA: false, transposeB: true, M: M, N: N, K: K, A: x, lda: K, B: w, ldb: K, beta: 1,
                          C: c.baseAddress!, ldc: N, engine: .onednn)
        }
        Linear.forward(x: x, weight: w, bias: b, y: &fromPacked, rows: M, inFeatures: K, outFeatures: N,
                       packedWeight: .fp32(packed))
        if GEMM.Engine.onednn.keepsRowBits {
            #expect(fromPacked.map(\.bitPattern) == plain.map(\.bitPattern))
        } else {
            expectClose("y", fromPacked, plain, tolerance: 1e-5)
        }
    }

    /// The two-thread layout for a thread's few rows, the one-thread layout for a batch's many; with the AVX-512
    /// kernels the two-thread one pads each half of the outputs to a multiple of 256 (768 → 2 × 512 and a little).
    @Test func theLayoutFollowsTheRowsAThreadComputes() throws {
        #expect(OneDNNPackedWeight.Layout.forProducts(ofRows: 1) == .twoThreads)
        #expect(OneDNNPackedWeight.Layout.forProducts(ofRows: 128) == .twoThreads)
        #expect(OneDNNPackedWeight.Layout.forProducts(ofRows: 129) == .oneThread)
        guard GEMM.Engine.onednn.keepsRowBits else { return }
        let one = try #require(OneDNNPackedWeight.bytes(outFeatures: 768, inFeatures: 768, layout: .oneThread))
        let two = try #require(OneDNNPackedWeight.bytes(outFeatures: 768, inFeatures: 768, layout: .twoThreads))
        #expect(one < 4 * 768 * 800 && two > 4 * 1024 * 768 && two < 4 * 1100 * 768, "\(one) and \(two) bytes")
    }
}
