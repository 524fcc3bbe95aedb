// Row gathers and scatters: the MLM head reads only the masked positions, the pooler only [CLS].

public enum Rows {
    /// `out[i] = src[rows[i]]` for rows of `width` floats.
    public static func gather(_ src: UnsafePointer<Float>, rows: [Int], width: Int, into out: UnsafeMutablePointer<Float>) {
        for (i, r) in rows.enumerated() { (out + i * width).update(from: src + r * width, count: width) }
    }

    /// `dst[rows[i]] += src[i]` (rows may repeat).
    public static func scatterAdd(_ src: UnsafePointer<Float>, rows: [Int], width: Int, into dst: UnsafeMutablePointer<Float>) {
        for (i, r) in rows.enumerated() {
            let s = src + i * width, d = dst + r * width
            var h = 0
            while h < width { let n = min(8, width - h); store8(load8(d + h, n) + load8(s + h, n), d + h, n); h += 8 }
        }
    }
}
