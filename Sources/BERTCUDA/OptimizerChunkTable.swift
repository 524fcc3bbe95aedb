import BERTKernels
import CBERTShared

/// The table that drives the optimizer kernels (Kernels/optimizer.cu) over every tensor in one launch: the segments
/// cut into chunks of at most 4096 elements (the CPU's norm blocks), ordered by tensor so that each tensor's chunks are
/// contiguous and its per-tensor sums are one ordered loop, plus each tensor's weight decay.
public struct OptimizerChunkTable: Sendable {
    public static let chunkSize = 4096
    /// One per CUDA block; `bert_chunk` is the C type the kernels read, so the layouts agree by construction.
    public let chunks: [bert_chunk]
    /// `[tensorCount + 1]`: tensor t owns chunks `firstChunk[t] ..< firstChunk[t + 1]` (empty for tensors this rank
    /// holds no part of under ZeRO).
    public let firstChunk: [Int32]
    /// `[tensorCount]`: λ for tensors with weight decay, 0 for the others (and for tensors without segments).
    public let tensorDecay: [Float]

    /// - Parameters: `segments` as the CPU optimizer holds them; `tensorCount` the model's tensor count (the length of
    ///   the per-tensor sums, the same on every rank); `weightDecay` the settings' λ.
    public init(segments: [OptimizerSegment], tensorCount: Int, weightDecay: Float) {
        let ordered = segments.sorted { ($0.tensor, $0.offset) < ($1.tensor, $1.offset) }
        var chunks: [bert_chunk] = [], first = [Int32](repeating: 0, count: tensorCount + 1)
        var decay = [Float](repeating: 0, count: tensorCount)
        for segment in ordered {
            precondition(segment.tensor >= 0 && segment.tensor < tensorCount, "segment of tensor \(segment.tensor) of \(tensorCount)")
            decay[segment.tensor] = segment.weightDecay ? weightDecay : 0
            for start in stride(from: 0, to: segment.count, by: Self.chunkSize) {
                chunks.append(bert_chunk(offset: Int64(segment.offset + start),
                                         count: Int32(min(Self.chunkSize, segment.count - start)),
                                         tensor: Int32(segment.tensor)))
            }
            first[segment.tensor + 1] = Int32(chunks.count)
        }
        // Tensors without segments start where the previous tensor ended.
        for t in 0..<tensorCount where first[t + 1] < first[t] { first[t + 1] = first[t] }
        self.chunks = chunks
        firstChunk = first
        tensorDecay = decay
    }
}
