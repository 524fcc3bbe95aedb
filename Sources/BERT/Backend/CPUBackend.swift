import BERTKernels

/// The backend of host memory and the `BERTKernels` CPU kernels: every operation forwards to its kernel, and a
/// `DevicePointer` is the host address itself, so the seam costs one indirect call per kernel.
public final class CPUBackend: Backend {
    /// One instance serves every model: it holds no state.
    public static let shared = CPUBackend()

    public let name = "cpu"

    @inline(__always) private func p(_ x: DeviceFloats) -> UnsafeMutablePointer<Float> {
        UnsafeMutablePointer(bitPattern: x.address)!
    }

    @inline(__always) private func p(_ x: DeviceFloats?) -> UnsafeMutablePointer<Float>? { x.map(p) }

    @inline(__always) private func p(_ x: DeviceInts) -> UnsafeMutablePointer<Int32> {
        UnsafeMutablePointer(bitPattern: x.address)!
    }

    @inline(__always) private func ints(_ x: DeviceInts, _ count: Int) -> UnsafeBufferPointer<Int32> {
        UnsafeBufferPointer(start: p(x), count: count)
    }

    public func allocate(bytes: Int) -> UInt {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        return UInt(bitPattern: raw)
    }

    public func release(_ address: UInt) { UnsafeMutableRawPointer(bitPattern: address)?.deallocate() }

    public func upload(_ bytes: UnsafeRawBufferPointer, to address: UInt) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        UnsafeMutableRawPointer(bitPattern: address)!.copyMemory(from: source, byteCount: bytes.count)
    }

    public func download(from address: UInt, into bytes: UnsafeMutableRawBufferPointer) {
        guard let target = bytes.baseAddress, !bytes.isEmpty else { return }
        target.copyMemory(from: UnsafeRawPointer(bitPattern: address)!, byteCount: bytes.count)
    }

    public func fill(_ x: DeviceFloats, count: Int, value: Float) { p(x).update(repeating: value, count: count) }

    public func copy(_ source: DeviceFloats, to destination: DeviceFloats, count: Int) {
        p(destination).update(from: p(source), count: count)
    }

    public func synchronize() {}

    public func hostAddress(_ pointer: DeviceFloats) -> UnsafeMutablePointer<Float>? { p(pointer) }

    public func attentionScratchCount(seqLength: Int) -> Int { Attention.scratchCount(seqLength: seqLength) }

    public func layerNormScratchCount(features: Int) -> Int { 2 * features * Parallel.threadCount }

    public func embeddingForward(ids: DeviceInts, segments: DeviceInts, word: DeviceFloats, position: DeviceFloats,
                                 tokenType: DeviceFloats, out: DeviceFloats, batch: Int, seqLength: Int, hidden: Int) {
        Embedding.forward(ids: p(ids), segments: p(segments), word: p(word), position: p(position), tokenType: p(tokenType),
                          out: p(out), batch: batch, seqLength: seqLength, hidden: hidden)
    }

    public func embeddingBackward(dOut: DeviceFloats, ids: DeviceInts, segments: DeviceInts, dWord: DeviceFloats,
                                  dPosition: DeviceFloats, dTokenType: DeviceFloats, batch: Int, seqLength: Int, hidden: Int,
                                  paddingId: Int32?) {
        Embedding.backward(dOut: p(dOut), ids: p(ids), segments: p(segments), dWord: p(dWord), dPosition: p(dPosition),
                           dTokenType: p(dTokenType), batch: batch, seqLength: seqLength, hidden: hidden, paddingId: paddingId)
    }

    public func layerNormForward(x: DeviceFloats, gamma: DeviceFloats, beta: DeviceFloats, y: DeviceFloats,
                                 mean: DeviceFloats, rstd: DeviceFloats, rows: Int, features: Int, eps: Float) {
        LayerNorm.forward(x: p(x), gamma: p(gamma), beta: p(beta), y: p(y), mean: p(mean), rstd: p(rstd), rows: rows,
                          features: features, eps: eps)
    }

    public func layerNormBackward(dy: DeviceFloats, x: DeviceFloats, gamma: DeviceFloats, mean: DeviceFloats,
                                  rstd: DeviceFloats, dx: DeviceFloats, dGamma: DeviceFloats, dBeta: DeviceFloats, rows: Int,
                                  features: Int, scratch: DeviceFloats) {
        LayerNorm.backward(dy: p(dy), x: p(x), gamma: p(gamma), mean: p(mean), rstd: p(rstd), dx: p(dx), dGamma: p(dGamma),
                           dBeta: p(dBeta), rows: rows, features: features, scratch: p(scratch))
    }

    public func linearForward(x: DeviceFloats, weight: DeviceFloats, bias: DeviceFloats?, y: DeviceFloats, rows: Int,
                              inFeatures: Int, outFeatures: Int) {
        Linear.forward(x: p(x), weight: p(weight), bias: p(bias), y: p(y), rows: rows, inFeatures: inFeatures,
                       outFeatures: outFeatures)
    }

    public func addBias(_ y: DeviceFloats, bias: DeviceFloats, residual: DeviceFloats, _ out: DeviceFloats, rows: Int,
                        outFeatures: Int) {
        Linear.addBias(p(y), bias: p(bias), residual: p(residual), p(out), rows: rows, outFeatures: outFeatures)
    }

    public func linearBackward(dy: DeviceFloats, x: DeviceFloats, weight: DeviceFloats, dx: DeviceFloats?,
                               dWeight: DeviceFloats, dBias: DeviceFloats?, rows: Int, inFeatures: Int, outFeatures: Int,
                               accumulateInput: Bool) {
        Linear.backward(dy: p(dy), x: p(x), weight: p(weight), dx: p(dx), dWeight: p(dWeight), dBias: p(dBias), rows: rows,
                        inFeatures: inFeatures, outFeatures: outFeatures, accumulateInput: accumulateInput)
    }

    public func activationForward(_ f: Activation, _ x: DeviceFloats, bias: DeviceFloats?, _ y: DeviceFloats, rows: Int,
                                  features: Int) {
        if let bias {
            f.forward(p(x), bias: p(bias), p(y), rows: rows, features: features)
        } else {
            f.forward(p(x), p(y), count: rows * features)
        }
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

    public func attentionForward(qkv: DeviceFloats, keyBias: DeviceFloats, probs: DeviceFloats?, context: DeviceFloats,
                                 batch: Int, seqLength: Int, heads: Int, headSize: Int, dropout: Float, rng: CounterRNG,
                                 scratch: DeviceFloats) {
        Attention.forward(qkv: p(qkv), keyBias: p(keyBias), probs: p(probs), context: p(context), batch: batch,
                          seqLength: seqLength, heads: heads, headSize: headSize, dropout: dropout, rng: rng, scratch: p(scratch))
    }

    public func attentionBackward(dContext: DeviceFloats, qkv: DeviceFloats, probs: DeviceFloats, dQKV: DeviceFloats,
                                  batch: Int, seqLength: Int, heads: Int, headSize: Int, dropout: Float, rng: CounterRNG,
                                  scratch: DeviceFloats) {
        Attention.backward(dContext: p(dContext), qkv: p(qkv), probs: p(probs), dQKV: p(dQKV), batch: batch,
                           seqLength: seqLength, heads: heads, headSize: headSize, dropout: dropout, rng: rng,
                           scratch: p(scratch))
    }

    public func dropoutForward(_ x: DeviceFloats, residual: DeviceFloats?, _ y: DeviceFloats, count: Int,
                               probability: Float, rng: CounterRNG) {
        Dropout.forward(p(x), residual: p(residual), p(y), count: count, probability: probability, rng: rng)
    }

    public func dropoutBackward(_ dy: DeviceFloats, _ dx: DeviceFloats, count: Int, probability: Float, rng: CounterRNG) {
        Dropout.backward(p(dy), p(dx), count: count, probability: probability, rng: rng)
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
}
