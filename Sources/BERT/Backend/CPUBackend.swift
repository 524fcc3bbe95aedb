import BERTCUDA
import Foundation
import BERTKernels

/// The backend of host memory and the `BERTKernels` CPU kernels: every operation forwards to its kernel, and a
/// `DevicePointer` is the host address itself, so the seam costs one indirect call per kernel.
///
/// `emulatedDevice` builds the same kernels behind device-like memory (see `EmulatedMemory`), optionally rounding
/// every activation a kernel stores to bf16, as a bf16 device backend stores its activations.
///
/// `bf16` is the CPU's mixed precision: every GEMM — the linear layers' (the MLM decoder's included) and attention's
/// products — takes bf16-rounded inputs and accumulates in fp32 (`BF16GEMM`, on AMX tiles where the CPU has them), as
/// `torch.autocast("cpu", dtype=torch.bfloat16)` runs `nn.Linear` and `matmul`; everything else — stored activations,
/// LayerNorm, softmax, GELU, gradients, master weights, the optimizer — stays fp32.
public final class CPUBackend: Backend {
    /// One instance serves every model: it holds no state.
    public static let shared = CPUBackend()
    /// The CPU with bf16 GEMM inputs.
    public static let bf16 = CPUBackend(gemmPrecision: .bf16)

    /// The CPU with bf16 GEMM inputs for one inference model whose weights never change once it runs: each linear
    /// layer's weight is rounded and packed for the AMX tiles on its first use and kept. A model that trains, or a
    /// second model, must not run on it (the packed copies are found by the weights' addresses).
    public static func bf16Inference() -> CPUBackend { CPUBackend(gemmPrecision: .bf16, packsWeightsOnce: true) }

    /// The CPU in fp32 for one inference model whose weights never change once it runs: where oneDNN runs the GEMMs
    /// with its AVX-512 kernels, each linear layer's weight is packed once in oneDNN's layout on its first use and
    /// kept (the same bits as `shared`'s products, faster at a single request's few rows), and its fp32 copy's pages
    /// are given back (`PackedWeights`); elsewhere the plain CPU. Besides `bf16Inference`'s promise, nothing may read
    /// a linear weight but the linear layers (a word-embedding table a tied decoder multiplies by is left unpacked).
    public static func inference() -> CPUBackend {
        GEMM.Engine.selected == .onednn && GEMM.Engine.onednn.keepsRowBits && OneDNNPackedWeight.available
            ? CPUBackend(gemmPrecision: .fp32, packsWeightsOnce: true) : shared
    }

    public let name: String
    /// The emulated device's memory; nil for the CPU itself.
    private let emulated: EmulatedMemory?
    /// Whether stored activations are rounded to bf16 (emulation only).
    private let bf16Activations: Bool
    /// The inputs of the linear layers' GEMMs.
    private let gemmPrecision: GEMMPrecision
    /// Weights packed once (`bf16Inference`, `inference`), by address; nil where weights may change.
    private let packedWeights: PackedWeights?
    /// The linear layers' weights this backend has met, how many of them it packed, and the bytes of their fp32
    /// copies it gave back.
    var packedWeightCounts: (seen: Int, packed: Int, givenBack: Int) { packedWeights?.counts ?? (0, 0, 0) }

    public convenience init() { self.init(gemmPrecision: .fp32) }

    private init(gemmPrecision: GEMMPrecision, packsWeightsOnce: Bool = false) {
        (name, emulated, bf16Activations, self.gemmPrecision) = ("cpu", nil, false, gemmPrecision)
        let packs = packsWeightsOnce && (gemmPrecision == .fp32 || BF16GEMM.usesAMX)
        packedWeights = packs ? PackedWeights(precision: gemmPrecision) : nil
    }

    private init(emulatingWithBFloat16Activations bf16: Bool) {
        (name, emulated, bf16Activations, gemmPrecision) = ("emulated", EmulatedMemory(), bf16, .fp32)
        packedWeights = nil
    }

    /// A device emulated in host memory whose addresses the host cannot use; with `bf16Activations`, every activation
    /// a kernel stores is rounded to bf16 (parameters, gradients, statistics and the optimizer stay fp32).
    public static func emulatedDevice(bf16Activations: Bool = false) -> CPUBackend {
        CPUBackend(emulatingWithBFloat16Activations: bf16Activations)
    }

    @inline(__always) private func address(_ x: UInt) -> UInt { emulated.map { $0.host(x) } ?? x }

    @inline(__always) private func p(_ x: DeviceFloats) -> UnsafeMutablePointer<Float> {
        UnsafeMutablePointer(bitPattern: address(x.address))!
    }

    @inline(__always) private func p(_ x: DeviceFloats?) -> UnsafeMutablePointer<Float>? { x.map(p) }

    @inline(__always) private func p(_ x: DeviceInts) -> UnsafeMutablePointer<Int32> {
        UnsafeMutablePointer(bitPattern: address(x.address))!
    }

    /// Rounds `count` stored activations at `y` to bf16 where the emulation asks for it.
    @inline(__always) private func stored(_ y: DeviceFloats, _ count: Int) {
        guard bf16Activations else { return }
        let y = p(y)
        for i in 0..<count { y[i] = roundedToBFloat16(y[i]) }
    }

    @inline(__always) private func p(_ x: DeviceInts?) -> UnsafeMutablePointer<Int32>? { x.map(p) }

    @inline(__always) private func ints(_ x: DeviceInts, _ count: Int) -> UnsafeBufferPointer<Int32> {
        UnsafeBufferPointer(start: p(x), count: count)
    }

    public func allocate(bytes: Int) -> UInt {
        if let emulated { return emulated.allocate(bytes: bytes) }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        packedWeights?.allocated(raw, bytes: bytes)
        return UInt(bitPattern: raw)
    }

    public func release(_ address: UInt) {
        if let emulated { return emulated.release(address) }
        guard let raw = UnsafeMutableRawPointer(bitPattern: address) else { return }
        packedWeights?.willRelease(raw)
        raw.deallocate()
    }

    public func upload(_ bytes: UnsafeRawBufferPointer, to address: UInt) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        UnsafeMutableRawPointer(bitPattern: self.address(address))!.copyMemory(from: source, byteCount: bytes.count)
    }

    public func download(from address: UInt, into bytes: UnsafeMutableRawBufferPointer) {
        guard let target = bytes.baseAddress, !bytes.isEmpty else { return }
        target.copyMemory(from: UnsafeRawPointer(bitPattern: self.address(address))!, byteCount: bytes.count)
    }

    public func fill(_ x: DeviceFloats, count: Int, value: Float) { p(x).update(repeating: value, count: count) }

    public func copy(_ source: DeviceFloats, to destination: DeviceFloats, count: Int) {
        p(destination).update(from: p(source), count: count)
    }

    public func synchronize() {}

    public func hostAddress(_ pointer: DeviceFloats) -> UnsafeMutablePointer<Float>? { emulated == nil ? p(pointer) : nil }

    /// Per-thread `[S, S]` tiles: the CPU works through the (batch, head) pairs a few at a time.
    public func attentionScratchCount(batch: Int, seqLength: Int, heads: Int) -> Int {
        Attention.scratchCount(seqLength: seqLength)
    }

    public func layerNormScratchCount(features: Int) -> Int { 2 * features * Parallel.threadCount }

    public func embeddingForward(ids: DeviceInts, segments: DeviceInts, positions: DeviceInts?, word: DeviceFloats,
                                 position: DeviceFloats, tokenType: DeviceFloats, out: DeviceFloats, batch: Int,
                                 seqLength: Int, hidden: Int) {
        packedWeights?.readsAsTable(p(word))
        Embedding.forward(ids: p(ids), segments: p(segments), word: p(word), position: p(position), tokenType: p(tokenType),
                          out: p(out), batch: batch, seqLength: seqLength, hidden: hidden, positions: p(positions))
        stored(out, batch * seqLength * hidden)
    }

    public func embeddingBackward(dOut: DeviceFloats, ids: DeviceInts, segments: DeviceInts, positions: DeviceInts?,
                                  dWord: DeviceFloats, dPosition: DeviceFloats, dTokenType: DeviceFloats, batch: Int,
                                  seqLength: Int, hidden: Int, paddingId: Int32?) {
        Embedding.backward(dOut: p(dOut), ids: p(ids), segments: p(segments), dWord: p(dWord), dPosition: p(dPosition),
                           dTokenType: p(dTokenType), batch: batch, seqLength: seqLength, hidden: hidden, paddingId: paddingId,
                           positions: p(positions))
    }

    public func layerNormForward(x: DeviceFloats, gamma: DeviceFloats, beta: DeviceFloats, y: DeviceFloats,
                                 mean: DeviceFloats, rstd: DeviceFloats, rows: Int, features: Int, eps: Float) {
        LayerNorm.forward(x: p(x), gamma: p(gamma), beta: p(beta), y: p(y), mean: p(mean), rstd: p(rstd), rows: rows,
                          features: features, eps: eps)
        stored(y, rows * features)
    }

    public func layerNormBackward(dy: DeviceFloats, x: DeviceFloats, gamma: DeviceFloats, mean: DeviceFloats,
                                  rstd: DeviceFloats, dx: DeviceFloats, dGamma: DeviceFloats, dBeta: DeviceFloats, rows: Int,
                                  features: Int, scratch: DeviceFloats, sequences: SequenceRows?) {
        LayerNorm.backward(dy: p(dy), x: p(x), gamma: p(gamma), mean: p(mean), rstd: p(rstd), dx: p(dx), dGamma: p(dGamma),
                           dBeta: p(dBeta), rows: rows, features: features, scratch: p(scratch), sequences: sequences)
    }

    public func linearForward(x: DeviceFloats, weight: DeviceFloats, bias: DeviceFloats?, y: DeviceFloats, rows: Int,
                              inFeatures: Int, outFeatures: Int) {
        let packed = packedWeights?.packed(p(weight), outFeatures: outFeatures, inFeatures: inFeatures, rows: rows)
        Linear.forward(x: p(x), weight: p(weight), bias: p(bias), y: p(y), rows: rows, inFeatures: inFeatures,
                       outFeatures: outFeatures, precision: gemmPrecision, packedWeight: packed)
        stored(y, rows * outFeatures)
    }

    public func addBias(_ y: DeviceFloats, bias: DeviceFloats, residual: DeviceFloats, _ out: DeviceFloats, rows: Int,
                        outFeatures: Int) {
        Linear.addBias(p(y), bias: p(bias), residual: p(residual), p(out), rows: rows, outFeatures: outFeatures)
        stored(out, rows * outFeatures)
    }

    public func linearBackward(dy: DeviceFloats, x: DeviceFloats, weight: DeviceFloats, dx: DeviceFloats?,
                               dWeight: DeviceFloats, dBias: DeviceFloats?, rows: Int, inFeatures: Int, outFeatures: Int,
                               accumulateInput: Bool, sequences: SequenceRows?) {
        Linear.backward(dy: p(dy), x: p(x), weight: p(weight), dx: p(dx), dWeight: p(dWeight), dBias: p(dBias), rows: rows,
                        inFeatures: inFeatures, outFeatures: outFeatures, accumulateInput: accumulateInput,
                        sequences: sequences, precision: gemmPrecision)
    }

    public func activationForward(_ f: Activation, _ x: DeviceFloats, bias: DeviceFloats?, _ y: DeviceFloats, rows: Int,
                                  features: Int) {
        if let bias {
            f.forward(p(x), bias: p(bias), p(y), rows: rows, features: features)
        } else {
            f.forward(p(x), p(y), count: rows * features)
        }
        stored(y, rows * features)
    }

    public func activationValueAndDerivative(_ f: Activation, _ x: DeviceFloats, _ y: DeviceFloats, _ d: DeviceFloats,
                                             count: Int) {
        f.valueAndDerivative(p(x), p(y), p(d), count: count)
    }

    public func activationBackward(_ dy: DeviceFloats, derivative: DeviceFloats, _ dx: DeviceFloats, count: Int) {
        Activation.backward(p(dy), derivative: p(derivative), p(dx), count: count)
    }

    public func activationBackward(_ f: Activation, _ dy: DeviceFloats, x: DeviceFloats, _ dx: DeviceFloats, count: Int) {
        f.backward(p(dy), x: p(x), p(dx), count: count)
    }

    public func attentionForward(qkv: DeviceFloats, keyBias: DeviceFloats, keyRanges: DeviceInts?, probs: DeviceFloats?,
                                 context: DeviceFloats, batch: Int, seqLength: Int, heads: Int, headSize: Int,
                                 dropout: Float, rng: CounterRNG, streamLength: Int, scratch: DeviceFloats) {
        Attention.forward(qkv: p(qkv), keyBias: p(keyBias), probs: p(probs), context: p(context), batch: batch,
                          seqLength: seqLength, heads: heads, headSize: headSize, dropout: dropout, rng: rng,
                          streamLength: streamLength, scratch: p(scratch), keyRanges: p(keyRanges), precision: gemmPrecision)
        stored(context, batch * seqLength * heads * headSize)
    }

    public func attentionBackward(dContext: DeviceFloats, qkv: DeviceFloats, probs: DeviceFloats, dQKV: DeviceFloats,
                                  batch: Int, seqLength: Int, heads: Int, headSize: Int, dropout: Float, rng: CounterRNG,
                                  streamLength: Int, scratch: DeviceFloats) {
        Attention.backward(dContext: p(dContext), qkv: p(qkv), probs: p(probs), dQKV: p(dQKV), batch: batch,
                           seqLength: seqLength, heads: heads, headSize: headSize, dropout: dropout, rng: rng,
                           streamLength: streamLength, scratch: p(scratch), precision: gemmPrecision)
    }

    public func dropoutForward(_ x: DeviceFloats, residual: DeviceFloats?, _ y: DeviceFloats, count: Int,
                               layout: DropoutLayout, probability: Float, rng: CounterRNG) {
        Dropout.forward(p(x), residual: p(residual), p(y), count: count, layout: layout, probability: probability, rng: rng)
        stored(y, count)
    }

    public func dropoutBackward(_ dy: DeviceFloats, _ dx: DeviceFloats, count: Int, layout: DropoutLayout,
                                probability: Float, rng: CounterRNG) {
        Dropout.backward(p(dy), p(dx), count: count, layout: layout, probability: probability, rng: rng)
    }

    public func crossEntropyForward(logits: DeviceFloats, labels: DeviceInts, rows: Int, classes: Int, ld: Int,
                                    logSumExp: DeviceFloats) -> (lossSum: Double, correct: Int) {
        CrossEntropy.forward(logits: p(logits), labels: ints(labels, rows), classes: classes, ld: ld, logSumExp: p(logSumExp))
    }

    public func crossEntropyBackward(logitsToGradient: DeviceFloats, labels: DeviceInts, rows: Int, classes: Int, ld: Int,
                                     logSumExp: DeviceFloats, scale: Float) {
        CrossEntropy.backward(logitsToGradient: p(logitsToGradient), labels: ints(labels, rows), classes: classes, ld: ld,
                              logSumExp: p(logSumExp), scale: scale)
    }

    public func gatherRows(_ src: DeviceFloats, indices: DeviceInts, count: Int, width: Int, into out: DeviceFloats) {
        Rows.gather(p(src), rows: ints(indices, count), width: width, into: p(out))
    }

    public func scatterAddRows(_ src: DeviceFloats, indices: DeviceInts, count: Int, width: Int, into dst: DeviceFloats) {
        Rows.scatterAdd(p(src), rows: ints(indices, count), width: width, into: p(dst))
    }

    public func transpose(_ x: DeviceFloats, rows: Int, columns: Int, into out: DeviceFloats) {
        Rows.transpose(p(x), rows: rows, columns: columns, into: p(out))
    }

    /// Today's CPU loops on the (translated) host addresses: the emulated device updates with the CPU's bits.
    public func optimizerPasses(segments: [OptimizerSegment], tensorCount: Int, weightDecay: Float,
                                parameters: DeviceFloats, gradients: DeviceFloats, m: DeviceFloats, v: DeviceFloats,
                                base: Int) -> any OptimizerPasses {
        HostOptimizerPasses(segments: segments, weightDecay: weightDecay, parameters: p(parameters),
                            gradients: p(gradients), m: p(m), v: p(v), base: base)
    }
}
