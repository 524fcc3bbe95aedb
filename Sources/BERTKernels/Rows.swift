// Row gathers and scatters: the MLM head reads only the masked positions, the pooler only [CLS]; and the transpose
// that turns the span head's [T, 2] logits into start and end rows.

public enum Rows {
    /// `out[i] = src[rows[i]]` for rows of `width` floats.
    public static func gather(_ src: UnsafePointer<Float>, rows: UnsafeBufferPointer<Int32>, width: Int,
                              into out: UnsafeMutablePointer<Float>) {
        for (i, r) in rows.enumerated() { (out + i * width).update(from: src + Int(r) * width, count: width) }
    }

    /// `dst[rows[i]] += src[i]` (rows may repeat).
    public static func scatterAdd(_ src: UnsafePointer<Float>, rows: UnsafeBufferPointer<Int32>, width: Int,
                                  into dst: UnsafeMutablePointer<Float>) {
        for (i, r) in rows.enumerated() {
            let s = src + i * width, d = dst + Int(r) * width
            var h = 0
            while h < width { let n = min(8, width - h); store8(load8(d + h, n) + load8(s + h, n), d + h, n); h += 8 }
        }
    }

    /// `out[c·R + r] = x[r·C + c]`: the `[C, R]` transpose of a row-major `[R, C]` matrix.
    public static func transpose(_ x: UnsafePointer<Float>, rows R: Int, columns C: Int, into out: UnsafeMutablePointer<Float>) {
        for r in 0..<R {
            for c in 0..<C { out[c * R + r] = x[r * C + c] }
        }
    }
}
