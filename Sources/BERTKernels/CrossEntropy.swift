import CAVX512Kernels

// Softmax cross-entropy over the rows of a logits matrix. Shapes: N rows, C classes, row stride ld ≥ C
// (the MLM decoder's logits are [N, V8] with the vocabulary padded to a multiple of 8; columns ≥ C are ignored).

public enum CrossEntropy {
    /// The summed loss Σₙ −log softmax(logitsₙ)[labelₙ] and the number of rows where the argmax equals the label.
    /// Saves each row's log-sum-exp `[N]` for the backward.
    /// On AVX-512 (unless `avx512` is false) the max and the exponentials go 16 lanes at a time, with the same bits.
    public static func forward(logits: UnsafePointer<Float>, labels: UnsafeBufferPointer<Int32>, classes C: Int, ld: Int,
                               logSumExp lse: UnsafeMutablePointer<Float>,
                               avx512: Bool = AVX512.available) -> (lossSum: Double, correct: Int) {
        var losses = [Double](repeating: 0, count: labels.count), hits = [Bool](repeating: false, count: labels.count)
        losses.withUnsafeMutableBufferPointer { losses in
            hits.withUnsafeMutableBufferPointer { hits in
                Parallel.forChunks(labels.count) { _, rows in
                    for n in rows {
                        let row = logits + n * ld, label = Int(labels[n])
                        var sums = Vec8(), m: Float
                        if avx512 {
                            m = withUnsafeMutableBytes(of: &sums) {
                                ak_max_and_exponential_sums(row, C, $0.baseAddress!.assumingMemoryBound(to: Float.self))
                            }
                        } else {
                            m = rowMax(row, C)
                            sums = exponentialSums(row, C, max: m)
                        }
                        lse[n] = m + log(hsum(sums))
                        losses[n] = Double(lse[n] - row[label])
                        hits[n] = row[label] == m && (0..<label).allSatisfy { row[$0] < m }   // first argmax, as torch
                    }
                }
            }
        }
        return (losses.reduce(0, +), hits.filter { $0 }.count)
    }

    /// Backward of `scale · Σ losses`: overwrites the logits with `scale · (softmax − onehot)` (padding columns 0),
    /// softmax from the forward's saved log-sum-exp (16 lanes on AVX-512 unless `avx512` is false, with the same bits).
    public static func backward(logitsToGradient g: UnsafeMutablePointer<Float>, labels: UnsafeBufferPointer<Int32>, classes C: Int,
                                ld: Int, logSumExp: UnsafePointer<Float>, scale: Float, avx512: Bool = AVX512.available) {
        Parallel.forChunks(labels.count) { _, rows in
            for n in rows {
                let row = g + n * ld
                let lse = logSumExp[n]
                if avx512 {
                    ak_exp_shifted_scaled(row, C, lse, scale)
                } else {
                    var j = 0
                    while j < C {
                        let k = min(8, C - j)
                        store8(vexp(load8(row + j, k) - lse) * scale, row + j, k)
                        j += 8
                    }
                }
                row[Int(labels[n])] -= scale
                for j in C..<ld { row[j] = 0 }
            }
        }
    }

    private static func rowMax(_ row: UnsafePointer<Float>, _ C: Int) -> Float {
        var m = Vec8(repeating: -.infinity), j = 0
        while j < C {
            let v = load8(row + j, min(8, C - j), fill: -.infinity)
            m = m.replacing(with: v, where: v .> m)
            j += 8
        }
        return m.max()
    }

    /// Σ e^(row[j] − max), 8 lanes, taken 8 at a time in order.
    private static func exponentialSums(_ row: UnsafePointer<Float>, _ C: Int, max m: Float) -> Vec8 {
        var sum = Vec8(), j = 0
        while j < C {
            let k = min(8, C - j)
            var e = vexp(load8(row + j, k) - m)
            if k < 8 { for lane in k..<8 { e[lane] = 0 } }
            sum += e
            j += 8
        }
        return sum
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
