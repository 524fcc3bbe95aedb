import BERTCUDA
import BERTKernels

extension CUDABackend {
    public func optimizerPasses(segments: [OptimizerSegment], tensorCount: Int, weightDecay: Float,
                                parameters: DeviceFloats, gradients: DeviceFloats, m: DeviceFloats, v: DeviceFloats,
                                base: Int) -> any OptimizerPasses {
        CUDAOptimizerPasses(backend: self, table: OptimizerChunkTable(segments: segments, tensorCount: tensorCount,
                                                                       weightDecay: weightDecay),
                            segments: segments, w: parameters, g: gradients, m: m, v: v, base: base)
    }
}

/// The optimizer's passes as launches of Kernels/optimizer.cu, each one launch over every tensor driven by the chunk
/// table (uploaded once): per-tensor sums as per-chunk block sums added per tensor on the device, of which only the
/// `[tensors × width]` Doubles come back; per-segment scales go up as `[tensors]` floats.
final class CUDAOptimizerPasses: OptimizerPasses {
    private let backend: CUDABackend
    private let segments: [OptimizerSegment]
    private let tensorCount: Int, chunkCount: Int
    /// Whether each segment is the first of its tensor (a tensor may come in several segments).
    private let firstOfTensor: [Bool]
    private let w: DeviceFloats, g: DeviceFloats, m: DeviceFloats, v: DeviceFloats, base: Int
    /// The chunk table, each tensor's first chunk, each tensor's λ.
    private let chunks: UInt, firstChunk: UInt, tensorDecay: UInt
    /// Per-chunk partial sums `[chunks × 3]` and per-tensor sums `[tensors × 3]` (Doubles); per-tensor scales (floats):
    /// ĝ's (or LAMB's lr · ratio), LANS's r and c scales.
    private let partial: UInt, sums: UInt, tensorScale: UInt, rScale: UInt, cScale: UInt

    init(backend: CUDABackend, table: OptimizerChunkTable, segments: [OptimizerSegment], w: DeviceFloats,
         g: DeviceFloats, m: DeviceFloats, v: DeviceFloats, base: Int) {
        (self.backend, self.segments, self.w, self.g, self.m, self.v, self.base) = (backend, segments, w, g, m, v, base)
        tensorCount = table.tensorDecay.count
        var seen = Set<Int>()
        firstOfTensor = segments.map { seen.insert($0.tensor).inserted }
        chunkCount = table.chunks.count
        func uploaded<T>(_ values: [T]) -> UInt {
            let address = backend.allocate(bytes: max(1, values.count) * MemoryLayout<T>.stride)
            values.withUnsafeBytes { backend.upload($0, to: address) }
            return address
        }
        chunks = uploaded(table.chunks)
        firstChunk = uploaded(table.firstChunk)
        tensorDecay = uploaded(table.tensorDecay)
        partial = backend.allocate(bytes: max(1, 3 * chunkCount) * 8)
        sums = backend.allocate(bytes: 3 * tensorCount * 8 + 8)
        (tensorScale, rScale, cScale) = (uploaded([Float](repeating: 0, count: tensorCount)),
                                         uploaded([Float](repeating: 0, count: tensorCount)),
                                         uploaded([Float](repeating: 0, count: tensorCount)))
    }

    deinit { for a in [chunks, firstChunk, tensorDecay, partial, sums, tensorScale, rScale, cScale] { backend.release(a) } }

    private func launch(_ kernel: String, _ arguments: [KernelArgument]) {
        backend.launch(kernel, grid: Dim3(chunkCount), arguments)
    }

    private func at(_ address: UInt) -> KernelArgument { .pointer(UInt64(address)) }

    /// Per-segment `values` uploaded to the per-tensor array at `address`.
    private func upload(_ values: [Float], to address: UInt) {
        var perTensor = [Float](repeating: 0, count: tensorCount)
        for (seg, value) in zip(segments, values) { perTensor[seg.tensor] = value }
        perTensor.withUnsafeBytes { backend.upload($0, to: address) }
    }

    /// Adds each tensor's chunk partials (`width` columns) on the device and brings back the asked columns, per segment:
    /// the tensor's sum on its first segment and 0 on any other of the same tensor, so that the recipe's per-tensor and
    /// global totals come out the same.
    private func segmentSums(width: Int, columns: [Int]) -> [[Double]] {
        backend.launch("tensor_sums", grid: Dim3((tensorCount * width + CUDABackend.threads - 1) / CUDABackend.threads),
                       [at(sums), at(partial), at(firstChunk), .int(Int32(tensorCount)), .int(Int32(width))])
        var host = [Double](repeating: 0, count: tensorCount * width)
        host.withUnsafeMutableBytes { backend.download(from: sums, into: $0) }
        return columns.map { column in
            zip(segments, firstOfTensor).map { seg, first in first ? host[seg.tensor * width + column] : 0 }
        }
    }

    private func moments(_ k: MomentCoefficients) -> [KernelArgument] {
        [.float(k.b1), .float(k.b2), .float(k.c1), .float(k.c2)]
    }

    func sumsOfSquares(_ operand: OptimizerOperand) -> [Double] {
        launch("chunk_sum_squares", [at(partial), ptr(operand == .parameters ? w : g), at(chunks), .int(1), .int(0)])
        return segmentSums(width: 1, columns: [0])[0]
    }

    func lambMoments(_ k: MomentCoefficients, clip: Float) {
        launch("lamb_moments", [ptr(g), ptr(m), ptr(v), ptr(w), at(chunks), at(tensorDecay), .longLong(Int64(base)),
                                .float(clip)] + moments(k) + [.float(k.bc1), .float(k.bc2), .float(k.epsilon)])
    }

    func scaledUpdate(scales: [Float]) {
        upload(scales, to: tensorScale)
        launch("scaled_update", [ptr(w), ptr(g), at(chunks), at(tensorScale)])
    }

    func adamw(_ k: MomentCoefficients, clip: Float, learningRate lr: Float, stepSize: Float, bc2Root: Float) {
        adamwUpdate(k, clip: clip, learningRate: lr, stepSize: stepSize, bc2Root: bc2Root, biasCorrection: true)
    }

    func adamwNoBiasCorrection(_ k: MomentCoefficients, clip: Float, learningRate lr: Float) {
        adamwUpdate(k, clip: clip, learningRate: lr, stepSize: 0, bc2Root: 1, biasCorrection: false)
    }

    private func adamwUpdate(_ k: MomentCoefficients, clip: Float, learningRate lr: Float, stepSize: Float,
                             bc2Root: Float, biasCorrection: Bool) {
        launch("adamw_update", [ptr(w), ptr(m), ptr(v), ptr(g), at(chunks), at(tensorDecay), .longLong(Int64(base)),
                                .float(clip)] + moments(k)
               + [.float(lr), .float(stepSize), .float(bc2Root), .float(k.epsilon), .int(biasCorrection ? 1 : 0)])
    }

    func lansMoments(_ k: MomentCoefficients, scales: [Float]) {
        upload(scales, to: tensorScale)
        launch("lans_moments", [ptr(m), ptr(v), ptr(g), at(chunks), at(tensorScale), .longLong(Int64(base))] + moments(k))
    }

    func lansDirectionSums(_ k: MomentCoefficients, scales: [Float]) -> [(r: Double, c: Double)] {
        upload(scales, to: tensorScale)
        launch("lans_direction_sums", [at(partial), ptr(w), ptr(m), ptr(v), ptr(g), at(chunks), at(tensorDecay),
                                       at(tensorScale), .longLong(Int64(base)), .float(k.bc1), .float(k.bc2),
                                       .float(k.epsilon)])
        let columns = segmentSums(width: 3, columns: [1, 2])
        return zip(columns[0], columns[1]).map { (r: $0, c: $1) }
    }

    func lansUpdate(_ k: MomentCoefficients, scales: [Float], rScales: [Float], cScales: [Float]) {
        upload(scales, to: tensorScale)
        upload(rScales, to: rScale)
        upload(cScales, to: cScale)
        launch("lans_update", [ptr(w), ptr(m), ptr(v), ptr(g), at(chunks), at(tensorDecay), at(tensorScale), at(rScale),
                               at(cScale), .longLong(Int64(base)), .float(k.bc1), .float(k.bc2), .float(k.epsilon)])
    }
}
