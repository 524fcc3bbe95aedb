// Elementwise activations, forward and backward. Shapes: n elements.
//   geluErf:  y = ½x(1 + erf(x/√2))                      y' = Φ(x) + x·φ(x)
//   geluTanh: y = ½x(1 + tanh(k(x + 0.044715x³))), k = √(2/π)
//             y' = ½(1 + t) + ½x(1 − t²)·k(1 + 3·0.044715x²)
//   tanh:     y' = 1 − y²          relu: y' = [x > 0]

import CAVX512Kernels

/// The activation functions BERT configurations use (`hidden_act`), plus the pooler's tanh.
public enum Activation: Sendable, Equatable {
    /// Exact GELU (HF `gelu`).
    case geluErf
    /// Tanh-approximated GELU (HF `gelu_new`, `gelu_pytorch_tanh`; Google's and NVIDIA's BERT).
    case geluTanh
    case relu
    case tanh

    private static let k: Float = 0.797_884_560_802_865_4      // √(2/π)
    private static let invSqrt2: Float = 0.707_106_781_186_547_5
    private static let invSqrt2Pi: Float = 0.398_942_280_401_432_7

    /// k·(x + 0.044715·x³), the tanh form's argument.
    @inline(__always) private static func inner(_ x: Vec8) -> Vec8 {
        let x3: Vec8 = x * x * x
        return k * (x + 0.044715 * x3)
    }

    @inline(__always) private func value(_ x: Vec8) -> Vec8 {
        switch self {
        case .geluErf:
            let cdf: Vec8 = 0.5 * (1 + verf(x * Activation.invSqrt2))
            return x * cdf
        case .geluTanh:
            let t = vtanh(Activation.inner(x))
            return 0.5 * x * (1 + t)
        case .relu: return x.replacing(with: 0, where: x .< 0)
        case .tanh: return vtanh(x)
        }
    }

    @inline(__always) private func derivative(_ x: Vec8) -> Vec8 {
        switch self {
        case .geluErf:
            let cdf: Vec8 = 0.5 * (1 + verf(x * Activation.invSqrt2))
            let pdf: Vec8 = vexp(-0.5 * x * x) * Activation.invSqrt2Pi
            return cdf + x * pdf
        case .geluTanh:
            let t = vtanh(Activation.inner(x))
            let x2: Vec8 = x * x
            let dInner: Vec8 = Activation.k * (1 + 0.134145 * x2)
            let half: Vec8 = 0.5 * (1 + t)
            return half + 0.5 * x * (1 - t * t) * dInner
        case .relu: return Vec8(repeating: 1).replacing(with: 0, where: x .<= 0)
        case .tanh: let t = vtanh(x); return 1 - t * t
        }
    }

    /// The `tanh_form` argument of the 16-lane GELU kernels (CAVX512Kernels) when this is a GELU and `avx512` is on:
    /// they give the 8-lane kernels' bits. The public functions below take `avx512: false` to keep to 8 lanes.
    private func gelu16(_ avx512: Bool) -> Int32? {
        guard avx512 else { return nil }
        switch self {
        case .geluErf: return 0
        case .geluTanh: return 1
        case .relu, .tanh: return nil
        }
    }

    /// `y = f(x)`; `y` may alias `x`.
    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int,
                        avx512: Bool = AVX512.available) {
        let form = gelu16(avx512)
        Parallel.forChunks((count + 7) / 8, minimumChunk: 512) { _, blocks in
            if let form {
                let i = blocks.lowerBound * 8
                return ak_gelu_forward(form, x + i, y + i, min(count, blocks.upperBound * 8) - i)
            }
            for block in blocks {
                let i = block * 8, n = min(8, count - i)
                store8(value(load8(x + i, n)), y + i, n)
            }
        }
    }

    /// `y = f(x + bias)` with `bias` `[features]` broadcast over the rows of `x` `[rows, features]`: the inference FFN
    /// folds the intermediate projection's bias in here instead of copying it into the GEMM's output first. `y` may
    /// alias `x`.
    public func forward(_ x: UnsafePointer<Float>, bias: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                        rows: Int, features: Int, avx512: Bool = AVX512.available) {
        let form = gelu16(avx512)
        Parallel.forChunks(rows, minimumChunk: 4) { _, rows in
            for r in rows {
                let row = r * features
                if let form {
                    ak_gelu_forward_bias(form, x + row, bias, y + row, features)
                    continue
                }
                var j = 0
                while j < features {
                    let n = min(8, features - j)
                    store8(value(load8(x + row + j, n) + load8(bias + j, n)), y + row + j, n)
                    j += 8
                }
            }
        }
    }

    /// `y = f(x)` and `d = f′(x)` in one pass (they share the transcendental work): the FFN backward needs both —
    /// the value for the output projection's weight gradient, the derivative once the value's gradient is known.
    public func valueAndDerivative(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                   _ d: UnsafeMutablePointer<Float>, count: Int, avx512: Bool = AVX512.available) {
        let form = gelu16(avx512)
        Parallel.forChunks((count + 7) / 8, minimumChunk: 512) { _, blocks in
            if let form {
                let i = blocks.lowerBound * 8
                return ak_gelu_value_and_derivative(form, x + i, y + i, d + i, min(count, blocks.upperBound * 8) - i)
            }
            for block in blocks {
                let i = block * 8, n = min(8, count - i), v = load8(x + i, n)
                store8(value(v), y + i, n)
                store8(derivative(v), d + i, n)
            }
        }
    }

    /// `dx = dy · d` for a derivative `d` saved by `valueAndDerivative`; `dx` may alias `dy`.
    public static func backward(_ dy: UnsafePointer<Float>, derivative d: UnsafePointer<Float>,
                                _ dx: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forChunks((count + 7) / 8, minimumChunk: 512) { _, blocks in
            for block in blocks {
                let i = block * 8, n = min(8, count - i)
                store8(load8(dy + i, n) * load8(d + i, n), dx + i, n)
            }
        }
    }

    /// `dx = dy · f′(x)`; `dx` may alias `dy`.
    public func backward(_ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                         count: Int, avx512: Bool = AVX512.available) {
        let form = gelu16(avx512)
        Parallel.forChunks((count + 7) / 8, minimumChunk: 512) { _, blocks in
            if let form {
                let i = blocks.lowerBound * 8
                return ak_gelu_backward(form, dy + i, x + i, dx + i, min(count, blocks.upperBound * 8) - i)
            }
            for block in blocks {
                let i = block * 8, n = min(8, count - i)
                store8(load8(dy + i, n) * derivative(load8(x + i, n)), dx + i, n)
            }
        }
    }
}
