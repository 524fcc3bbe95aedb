// BERT's input embeddings: word + position + token type. Shapes: B batch, S sequence, H hidden.
// positions [B, S] (optional): each token's position id, restarting at each sequence of a packed row; nil means s.
// (The LayerNorm and dropout that follow are their own kernels.)

public enum Embedding {
    /// `out[b, s] = word[ids[b, s]] + position[positions[b, s] or s] + tokenType[segments[b, s]]`.
    /// - Parameters: `ids`, `segments` `[B, S]`; `word` `[V, H]`, `position` `[max position, H]`, `tokenType` `[T, H]`;
    ///   `out` `[B, S, H]`; `positions` `[B, S]` or nil for s. Ids and positions must already be validated against the
    ///   table sizes.
    public static func forward(ids: UnsafePointer<Int32>, segments: UnsafePointer<Int32>,
                               word: UnsafePointer<Float>, position: UnsafePointer<Float>,
                               tokenType: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                               batch B: Int, seqLength S: Int, hidden H: Int, positions: UnsafePointer<Int32>? = nil) {
        Parallel.forChunks(B * S, minimumChunk: 16) { _, tokens in
            for t in tokens {
                let w = word + Int(ids[t]) * H, p = position + positionId(t, S, positions) * H
                let y = tokenType + Int(segments[t]) * H
                let o = out + t * H
                var h = 0
                while h < H {
                    let n = min(8, H - h)
                    store8(load8(w + h, n) + load8(p + h, n) + load8(y + h, n), o + h, n)
                    h += 8
                }
            }
        }
    }

    /// Backward of `forward`: scatter-adds `dOut` into the three tables' gradients, except that the word row
    /// `paddingId` gets none (PyTorch's `nn.Embedding(padding_idx:)`, as HF builds BERT's word embeddings; the
    /// position and token-type rows of those tokens still do). Threads split the hidden columns, so tokens sharing a
    /// word never race.
    public static func backward(dOut: UnsafePointer<Float>, ids: UnsafePointer<Int32>, segments: UnsafePointer<Int32>,
                                dWord: UnsafeMutablePointer<Float>, dPosition: UnsafeMutablePointer<Float>,
                                dTokenType: UnsafeMutablePointer<Float>, batch B: Int, seqLength S: Int, hidden H: Int,
                                paddingId: Int32? = nil, positions: UnsafePointer<Int32>? = nil) {
        Parallel.forChunks((H + 7) / 8, minimumChunk: 8) { _, blocks in
            for block in blocks {
                let h = block * 8, n = min(8, H - h)
                for t in 0..<(B * S) {
                    let g = load8(dOut + t * H + h, n)
                    if ids[t] != paddingId { add(g, to: dWord + Int(ids[t]) * H + h, n) }
                    add(g, to: dPosition + positionId(t, S, positions) * H + h, n)
                    add(g, to: dTokenType + Int(segments[t]) * H + h, n)
                }
            }
        }
    }

    /// Token t's position id: its entry of `positions`, or t mod S without them.
    @inline(__always) private static func positionId(_ t: Int, _ S: Int, _ positions: UnsafePointer<Int32>?) -> Int {
        positions.map { Int($0[t]) } ?? t % S
    }

    @inline(__always) private static func add(_ g: Vec8, to p: UnsafeMutablePointer<Float>, _ n: Int) {
        store8(load8(p, n) + g, p, n)
    }
}
