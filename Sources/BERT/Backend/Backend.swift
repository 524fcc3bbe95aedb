import BERTKernels

// The seam between the model and its kernels. The model (encoder, heads) owns no memory and calls no kernel
// directly: it plans its buffers in a backend's memory and calls one operation per kernel entry point, with the
// CPU kernels' arguments and semantics (see `BERTKernels` for the math of each). Host data crosses explicitly:
// token ids, key bias, packed rows' position ids and key ranges, labels and row indices go in by `upload`; losses
// and correct counts come back as the return values of the cross-entropy operations, the only synchronising kernels.
// Shapes as in the kernels: N rows, H features, B batch, S sequence, A heads, D head size.

/// A place where BERT's tensors live and its kernels run. `CPUBackend` forwards to `BERTKernels`; a device backend
/// implements the same operations on its own memory.
public protocol Backend: AnyObject, Sendable {
    /// `cpu`, `cuda`, … as `--device` names it.
    var name: String { get }

    // MARK: Memory
    /// `bytes` of zero-filled, 64-byte aligned memory; its address.
    func allocate(bytes: Int) -> UInt
    func release(_ address: UInt)
    /// Copies host bytes to `address`.
    func upload(_ bytes: UnsafeRawBufferPointer, to address: UInt)
    /// Copies bytes from `address` to the host (waits for the kernels before it).
    func download(from address: UInt, into bytes: UnsafeMutableRawBufferPointer)
    func fill(_ x: DeviceFloats, count: Int, value: Float)
    func copy(_ source: DeviceFloats, to destination: DeviceFloats, count: Int)
    /// Waits until every operation issued so far has finished.
    func synchronize()
    /// The host address of `pointer` where the backend's memory is the host's; nil for device memory.
    func hostAddress(_ pointer: DeviceFloats) -> UnsafeMutablePointer<Float>?
    /// Floats of scratch the attention operations need for B sequences of length S with A heads (0 if none).
    func attentionScratchCount(batch: Int, seqLength: Int, heads: Int) -> Int
    /// Floats of scratch `layerNormBackward` needs for H features.
    func layerNormScratchCount(features: Int) -> Int

    // MARK: Kernels (forward and backward side by side, as in `BERTKernels`)
    /// `positions` `[B, S]`: packed rows' position ids; nil means position s.
    func embeddingForward(ids: DeviceInts, segments: DeviceInts, positions: DeviceInts?, word: DeviceFloats,
                          position: DeviceFloats, tokenType: DeviceFloats, out: DeviceFloats, batch: Int, seqLength: Int,
                          hidden: Int)
    func embeddingBackward(dOut: DeviceFloats, ids: DeviceInts, segments: DeviceInts, positions: DeviceInts?,
                           dWord: DeviceFloats, dPosition: DeviceFloats, dTokenType: DeviceFloats, batch: Int,
                           seqLength: Int, hidden: Int, paddingId: Int32?)
    func layerNormForward(x: DeviceFloats, gamma: DeviceFloats, beta: DeviceFloats, y: DeviceFloats, mean: DeviceFloats,
                          rstd: DeviceFloats, rows: Int, features: Int, eps: Float)
    /// `sequences`: split dγ's and dβ's sums only between whole sequences (`SequenceRows.swift`); the CPU's promise.
    func layerNormBackward(dy: DeviceFloats, x: DeviceFloats, gamma: DeviceFloats, mean: DeviceFloats, rstd: DeviceFloats,
                           dx: DeviceFloats, dGamma: DeviceFloats, dBeta: DeviceFloats, rows: Int, features: Int,
                           scratch: DeviceFloats, sequences: SequenceRows?)
    func linearForward(x: DeviceFloats, weight: DeviceFloats, bias: DeviceFloats?, y: DeviceFloats, rows: Int,
                       inFeatures: Int, outFeatures: Int)
    /// `out = y + bias + residual` (the inference path's fused bias and residual add).
    func addBias(_ y: DeviceFloats, bias: DeviceFloats, residual: DeviceFloats, _ out: DeviceFloats, rows: Int, outFeatures: Int)
    /// `sequences`: sum dW over pieces of whole sequences (`SequenceRows.swift`); the CPU's promise.
    func linearBackward(dy: DeviceFloats, x: DeviceFloats, weight: DeviceFloats, dx: DeviceFloats?, dWeight: DeviceFloats,
                        dBias: DeviceFloats?, rows: Int, inFeatures: Int, outFeatures: Int, accumulateInput: Bool,
                        sequences: SequenceRows?)
    /// `y = f(x)` (or `f(x + bias)` per row when `bias` is given, for `rows × features`).
    func activationForward(_ f: Activation, _ x: DeviceFloats, bias: DeviceFloats?, _ y: DeviceFloats, rows: Int, features: Int)
    /// `y = f(x)` and `d = f'(x)` in one pass.
    func activationValueAndDerivative(_ f: Activation, _ x: DeviceFloats, _ y: DeviceFloats, _ d: DeviceFloats, count: Int)
    /// `dx = dy · d` with a derivative from `activationValueAndDerivative`.
    func activationBackward(_ dy: DeviceFloats, derivative: DeviceFloats, _ dx: DeviceFloats, count: Int)
    /// `dx = dy · f'(x)`.
    func activationBackward(_ f: Activation, _ dy: DeviceFloats, x: DeviceFloats, _ dx: DeviceFloats, count: Int)
    /// `keyRanges` `[B, S, 2]`: packed rows, each query's visible keys [lo, hi) (its own sequence); nil: all keys.
    /// `streamLength`: the untrimmed S whose dropout bits a trimmed batch keeps (`Attention.swift`); S when untrimmed.
    func attentionForward(qkv: DeviceFloats, keyBias: DeviceFloats, keyRanges: DeviceInts?, probs: DeviceFloats?,
                          context: DeviceFloats, batch: Int, seqLength: Int, heads: Int, headSize: Int, dropout: Float,
                          rng: CounterRNG, streamLength: Int, scratch: DeviceFloats)
    func attentionBackward(dContext: DeviceFloats, qkv: DeviceFloats, probs: DeviceFloats, dQKV: DeviceFloats, batch: Int,
                           seqLength: Int, heads: Int, headSize: Int, dropout: Float, rng: CounterRNG, streamLength: Int,
                           scratch: DeviceFloats)
    /// `y = [residual +] dropout(x)`, element i drawing stream element `layout.streamIndex(i)` (Dropout.swift).
    func dropoutForward(_ x: DeviceFloats, residual: DeviceFloats?, _ y: DeviceFloats, count: Int, layout: DropoutLayout,
                        probability: Float, rng: CounterRNG)
    func dropoutBackward(_ dy: DeviceFloats, _ dx: DeviceFloats, count: Int, layout: DropoutLayout, probability: Float,
                         rng: CounterRNG)
    /// Softmax cross-entropy over `rows` rows; returns the summed loss and the argmax hits (a synchronising crossing).
    func crossEntropyForward(logits: DeviceFloats, labels: DeviceInts, rows: Int, classes: Int, ld: Int,
                             logSumExp: DeviceFloats) -> (lossSum: Double, correct: Int)
    func crossEntropyBackward(logitsToGradient: DeviceFloats, labels: DeviceInts, rows: Int, classes: Int, ld: Int,
                              logSumExp: DeviceFloats, scale: Float)
    /// `out[i] = src[indices[i]]` for `count` rows of `width` floats.
    func gatherRows(_ src: DeviceFloats, indices: DeviceInts, count: Int, width: Int, into out: DeviceFloats)
    /// `dst[indices[i]] += src[i]` (indices may repeat).
    func scatterAddRows(_ src: DeviceFloats, indices: DeviceInts, count: Int, width: Int, into dst: DeviceFloats)
    /// `out[c, r] = x[r, c]` for a row-major `[rows, columns]` matrix.
    func transpose(_ x: DeviceFloats, rows: Int, columns: Int, into out: DeviceFloats)

    // MARK: Optimizer
    /// The elementwise passes of an optimizer over `segments` of `parameters` and `gradients`, with moments `m` and `v`
    /// addressed from parameter offset `base`, all in this backend's memory (`OptimizerRecipe` drives them).
    /// - Parameters: `tensorCount` the model's tensors; `weightDecay` the settings' λ.
    func optimizerPasses(segments: [OptimizerSegment], tensorCount: Int, weightDecay: Float, parameters: DeviceFloats,
                         gradients: DeviceFloats, m: DeviceFloats, v: DeviceFloats, base: Int) -> any OptimizerPasses
}

extension Backend {
    /// Copies `values` to `pointer`.
    public func upload<T>(_ values: UnsafeBufferPointer<T>, to pointer: DevicePointer<T>) {
        upload(UnsafeRawBufferPointer(values), to: pointer.address)
    }

    public func upload<T>(_ values: [T], to pointer: DevicePointer<T>) {
        values.withUnsafeBufferPointer { upload($0, to: pointer) }
    }

    public func download<T>(_ pointer: DevicePointer<T>, into values: UnsafeMutableBufferPointer<T>) {
        download(from: pointer.address, into: UnsafeMutableRawBufferPointer(values))
    }

    /// `count` elements from `pointer`, as a host array.
    public func download<T: Numeric>(_ pointer: DevicePointer<T>, count: Int) -> [T] {
        var out = [T](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { download(pointer, into: $0) }
        return out
    }

    /// `layerNormBackward` with the backend's own split of the sums.
    public func layerNormBackward(dy: DeviceFloats, x: DeviceFloats, gamma: DeviceFloats, mean: DeviceFloats,
                                  rstd: DeviceFloats, dx: DeviceFloats, dGamma: DeviceFloats, dBeta: DeviceFloats, rows: Int,
                                  features: Int, scratch: DeviceFloats) {
        layerNormBackward(dy: dy, x: x, gamma: gamma, mean: mean, rstd: rstd, dx: dx, dGamma: dGamma, dBeta: dBeta,
                          rows: rows, features: features, scratch: scratch, sequences: nil)
    }

    /// `linearBackward` with the backend's own split of the weight gradient's sum.
    public func linearBackward(dy: DeviceFloats, x: DeviceFloats, weight: DeviceFloats, dx: DeviceFloats?,
                               dWeight: DeviceFloats, dBias: DeviceFloats?, rows: Int, inFeatures: Int, outFeatures: Int,
                               accumulateInput: Bool) {
        linearBackward(dy: dy, x: x, weight: weight, dx: dx, dWeight: dWeight, dBias: dBias, rows: rows,
                       inFeatures: inFeatures, outFeatures: outFeatures, accumulateInput: accumulateInput, sequences: nil)
    }

    /// `dropoutForward` of an untrimmed tensor: element i draws stream element i.
    public func dropoutForward(_ x: DeviceFloats, residual: DeviceFloats?, _ y: DeviceFloats, count: Int,
                               probability: Float, rng: CounterRNG) {
        dropoutForward(x, residual: residual, y, count: count, layout: .flat(count), probability: probability, rng: rng)
    }

    /// `dropoutBackward` of an untrimmed tensor: element i draws stream element i.
    public func dropoutBackward(_ dy: DeviceFloats, _ dx: DeviceFloats, count: Int, probability: Float, rng: CounterRNG) {
        dropoutBackward(dy, dx, count: count, layout: .flat(count), probability: probability, rng: rng)
    }
}
