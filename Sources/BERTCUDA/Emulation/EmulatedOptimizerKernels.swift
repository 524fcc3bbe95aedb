import CBERTShared

/// Swift references of Kernels/optimizer.cu, written from the source as `EmulatedKernels` are: one block per chunk of
/// the table, each thread's fp32 partial sum over its strided elements, the block's partials added in fp64 in thread
/// order (a tree on the GPU). Moments are addressed from `base`; buffers are bounds-checked over the extent the chunks
/// reach.
extension EmulatedKernels {
    /// The chunk table of a launch (one chunk per block) and the extents it reaches: parameters `offset + count`, the
    /// moments that minus `base`, and tensors (for the per-tensor arrays).
    private struct Table {
        let chunks: UnsafeMutableBufferPointer<bert_chunk>
        let elements: Int, tensors: Int

        init(_ k: KernelLaunch) throws {
            chunks = try k.chunks("chunks", k.grid.x)
            elements = chunks.map { Int($0.offset) + Int($0.count) }.max() ?? 0
            tensors = (chunks.map { Int($0.tensor) }.max() ?? -1) + 1
        }

        /// `body(chunk, parameterIndex)` over every element, in chunk then element order.
        func forEach(_ body: (bert_chunk, Int) -> Void) {
            for ch in chunks { for j in 0..<Int(ch.count) { body(ch, Int(ch.offset) + j) } }
        }

        /// Each chunk's sum of `term(chunk, parameterIndex)` as the kernel forms it: per thread of `threads` in fp32 over
        /// its strided elements, then over the threads in fp64.
        func blockSums(threads: Int, _ term: (bert_chunk, Int) -> Float) -> [Double] {
            chunks.map { ch in
                var total = 0.0
                for t in 0..<threads {
                    var sum: Float = 0
                    for j in stride(from: t, to: Int(ch.count), by: threads) { sum += term(ch, Int(ch.offset) + j) }
                    total += Double(sum)
                }
                return total
            }
        }
    }

    /// Adam's moments at element s (`update_moments`): the new (m, v).
    private static func updateMoments(_ m: UnsafeMutableBufferPointer<Float>, _ v: UnsafeMutableBufferPointer<Float>,
                                      _ s: Int, _ g: Float, _ k: KernelLaunch) -> (m: Float, v: Float) {
        let mi = k.float("b1") * m[s] + k.float("c1") * g, vi = k.float("b2") * v[s] + k.float("c2") * g * g
        m[s] = mi
        v[s] = vi
        return (mi, vi)
    }

    /// The moments of a launch, addressed from its `base`.
    private static func moments(_ k: KernelLaunch, _ table: Table) throws
        -> (m: UnsafeMutableBufferPointer<Float>, v: UnsafeMutableBufferPointer<Float>, base: Int) {
        let base = k.int("base"), n = max(0, table.elements - base)
        return (try k.floats("m", n), try k.floats("v", n), base)
    }

    /// LANS's (r, c) at element i (`lans_directions`).
    private static func lansDirections(_ k: KernelLaunch, _ i: Int, _ s: Int, w: UnsafeMutableBufferPointer<Float>,
                                       m: UnsafeMutableBufferPointer<Float>, v: UnsafeMutableBufferPointer<Float>,
                                       g: UnsafeMutableBufferPointer<Float>, scale: Float, lambda: Float) -> (Float, Float) {
        let denominator = (v[s] / k.float("bc2")).squareRoot() + k.float("eps")
        return ((m[s] / k.float("bc1")) / denominator + lambda * w[i], g[i] * scale / denominator + lambda * w[i])
    }

    static let optimizerReferences: [String: Reference] = [
        "chunk_sum_squares": { k in
            let table = try Table(k), width = k.int("width"), column = k.int("column")
            let partial = try k.doubles("partial", table.chunks.count * width), x = try k.floats("x", table.elements)
            for (b, sum) in table.blockSums(threads: k.block.x, { _, i in x[i] * x[i] }).enumerated() {
                partial[b * width + column] = sum
            }
        },
        "tensor_sums": { k in
            let tensors = k.int("tensors"), width = k.int("width"), first = try k.ints("first_chunk", tensors + 1)
            let partial = try k.doubles("partial", Int(first[tensors]) * width), sums = try k.doubles("sums", tensors * width)
            for i in 0..<min(tensors * width, k.threads.count) {
                let (t, c) = (i / width, i % width)
                var sum = 0.0
                for chunk in Int(first[t])..<Int(first[t + 1]) { sum += partial[chunk * width + c] }
                sums[i] = sum
            }
        },
        "lamb_moments": { k in
            let table = try Table(k), (m, v, base) = try moments(k, table), clip = k.float("clip")
            let g = try k.floats("g", table.elements), w = try k.floats("w", table.elements)
            let decay = try k.floats("tensor_decay", table.tensors)
            let (bc1, bc2, eps) = (k.float("bc1"), k.float("bc2"), k.float("eps"))
            table.forEach { ch, i in
                let mv = updateMoments(m, v, i - base, g[i] * clip, k)
                g[i] = (mv.m / bc1) / ((mv.v / bc2).squareRoot() + eps) + decay[Int(ch.tensor)] * w[i]
            }
        },
        "scaled_update": { k in
            let table = try Table(k), w = try k.floats("w", table.elements), u = try k.floats("u", table.elements)
            let scale = try k.floats("tensor_scale", table.tensors)
            table.forEach { ch, i in w[i] -= scale[Int(ch.tensor)] * u[i] }
        },
        "adamw_update": { k in
            let table = try Table(k), (m, v, base) = try moments(k, table), clip = k.float("clip")
            let w = try k.floats("w", table.elements), g = try k.floats("g", table.elements)
            let decay = try k.floats("tensor_decay", table.tensors)
            let (lr, stepSize, bc2Root, eps) = (k.float("lr"), k.float("step_size"), k.float("bc2_root"), k.float("eps"))
            let biasCorrection = k.int("bias_correction") != 0
            table.forEach { ch, i in
                let mv = updateMoments(m, v, i - base, g[i] * clip, k), lambda = decay[Int(ch.tensor)]
                if biasCorrection {
                    w[i] = w[i] * (1 - lr * lambda) - stepSize * mv.m / (mv.v.squareRoot() / bc2Root + eps)
                } else {
                    w[i] -= lr * (mv.m / (mv.v.squareRoot() + eps) + lambda * w[i])
                }
            }
        },
        "lans_moments": { k in
            let table = try Table(k), (m, v, base) = try moments(k, table), g = try k.floats("g", table.elements)
            let scale = try k.floats("tensor_scale", table.tensors)
            table.forEach { ch, i in _ = updateMoments(m, v, i - base, g[i] * scale[Int(ch.tensor)], k) }
        },
        "lans_direction_sums": { k in
            let table = try Table(k), (m, v, base) = try moments(k, table)
            let w = try k.floats("w", table.elements), g = try k.floats("g", table.elements)
            let decay = try k.floats("tensor_decay", table.tensors), scale = try k.floats("tensor_scale", table.tensors)
            let partial = try k.doubles("partial", table.chunks.count * 3)
            func direction(_ ch: bert_chunk, _ i: Int) -> (Float, Float) {
                lansDirections(k, i, i - base, w: w, m: m, v: v, g: g, scale: scale[Int(ch.tensor)],
                               lambda: decay[Int(ch.tensor)])
            }
            let rSums = table.blockSums(threads: k.block.x) { ch, i in let r = direction(ch, i).0; return r * r }
            let cSums = table.blockSums(threads: k.block.x) { ch, i in let c = direction(ch, i).1; return c * c }
            for b in 0..<table.chunks.count {
                partial[b * 3 + 1] = rSums[b]
                partial[b * 3 + 2] = cSums[b]
            }
        },
        "lans_update": { k in
            let table = try Table(k), (m, v, base) = try moments(k, table)
            let w = try k.floats("w", table.elements), g = try k.floats("g", table.elements)
            let decay = try k.floats("tensor_decay", table.tensors), scale = try k.floats("tensor_scale", table.tensors)
            let rScale = try k.floats("r_scale", table.tensors), cScale = try k.floats("c_scale", table.tensors)
            table.forEach { ch, i in
                let t = Int(ch.tensor)
                let (r, c) = lansDirections(k, i, i - base, w: w, m: m, v: v, g: g, scale: scale[t], lambda: decay[t])
                w[i] -= rScale[t] * r + cScale[t] * c
            }
        },
    ]
}
