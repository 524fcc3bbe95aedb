import BERTCUDA
import BERTKernels
import CBERTShared
import Testing

/// The optimizer kernels' chunk table covers every segment exactly once, keeps each tensor's chunks contiguous, and
/// the per-tensor sums the kernels form from it (chunk_sum_squares, then tensor_sums) are the CPU's per-tensor sums.
@Suite struct OptimizerChunkTableTests {
    /// ZeRO-like segments: tensor 1 split in two (out of order), tensor 3 absent, sizes around the chunk size.
    static let segments = [
        OptimizerSegment(offset: 0, count: 4096, weightDecay: true, tensor: 0),
        OptimizerSegment(offset: 9000, count: 5000, weightDecay: false, tensor: 1),
        OptimizerSegment(offset: 4096, count: 4904, weightDecay: false, tensor: 1),
        OptimizerSegment(offset: 14_000, count: 1, weightDecay: true, tensor: 2),
        OptimizerSegment(offset: 14_001, count: 8193, weightDecay: true, tensor: 4),
    ]

    @Test func chunksCoverTheSegmentsInTensorOrder() {
        let table = OptimizerChunkTable(segments: Self.segments, tensorCount: 5, weightDecay: 0.01)
        #expect(MemoryLayout<bert_chunk>.size == 16 && MemoryLayout<bert_chunk>.stride == 16)
        #expect(table.chunks.map(\.count) == [4096, 4096, 808, 4096, 904, 1, 4096, 4096, 1])
        #expect(table.firstChunk == [0, 1, 5, 6, 6, 9])
        #expect(table.tensorDecay == [0.01, 0, 0.01, 0, 0.01])
        var covered = Set<Int>()
        for (k, chunk) in table.chunks.enumerated() {
            #expect(chunk.count > 0 && chunk.count <= 4096)
            #expect(Int(table.firstChunk[Int(chunk.tensor)]) <= k && k < Int(table.firstChunk[Int(chunk.tensor) + 1]))
            for i in Int(chunk.offset)..<(Int(chunk.offset) + Int(chunk.count)) { #expect(covered.insert(i).inserted) }
        }
        #expect(covered == Set(Self.segments.flatMap { $0.offset..<($0.offset + $0.count) }))
    }

    @Test func perTensorSumsFromChunksEqualTheSegmentSums() {
        var r = TestRandom(11)
        let x = r.normal(22_194)
        let table = OptimizerChunkTable(segments: Self.segments, tensorCount: 5, weightDecay: 0.01)
        // The kernels' arithmetic on the host: a Double partial per chunk, then each tensor's chunks in order.
        let partial = table.chunks.map { chunk in
            (0..<Int(chunk.count)).reduce(0.0) { $0 + Double(x[Int(chunk.offset) + $1] * x[Int(chunk.offset) + $1]) }
        }
        let sums = (0..<5).map { t in
            (Int(table.firstChunk[t])..<Int(table.firstChunk[t + 1])).reduce(0.0) { $0 + partial[$1] }
        }
        var expected = [Double](repeating: 0, count: 5)
        for segment in Self.segments {
            for i in segment.offset..<(segment.offset + segment.count) { expected[segment.tensor] += Double(x[i] * x[i]) }
        }
        for t in 0..<5 { #expect(abs(sums[t] - expected[t]) <= 1e-9 * max(1, expected[t]), "tensor \(t)") }
        #expect(sums[3] == 0 && sums[4] > 1000)
    }
}
