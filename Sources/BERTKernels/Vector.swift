/// 8-lane Float vectors (one AVX2 register) and the vectorised transcendental functions the kernels need.
///
/// libm's `expf`/`erff`/`tanhf` in a hot loop are 20–30× slower than a polynomial on a SIMD register, so GELU,
/// softmax and tanh run on these. Accuracy: `vexp` ≈ 1 ulp over the float range (Cephes' polynomial, fused),
/// `verf` ≤ 3e-7 absolute
/// (Abramowitz & Stegun 7.1.26, 1.5e-7 in exact arithmetic — the same formula PyTorch's CPU kernels use).

public typealias Vec8 = SIMD8<Float>

/// Loads `count` (≤ 8) floats from `p`; lanes past `count` are `fill`.
@inline(__always) public func load8(_ p: UnsafePointer<Float>, _ count: Int = 8, fill: Float = 0) -> Vec8 {
    if count >= 8 { return UnsafeRawPointer(p).loadUnaligned(as: Vec8.self) }
    var v = Vec8(repeating: fill)
    for i in 0..<count { v[i] = p[i] }
    return v
}

/// Stores the first `count` (≤ 8) lanes of `v` to `p`.
@inline(__always) public func store8(_ v: Vec8, _ p: UnsafeMutablePointer<Float>, _ count: Int = 8) {
    if count >= 8 { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec8.self); return }
    for i in 0..<count { p[i] = v[i] }
}

/// e^x for every lane; inputs below −87.3 give exactly 0 (no denormal results: a masked attention key must get a
/// probability of 0, and denormals running through the GEMMs slow them by orders of magnitude); above 88.3 clamped.
@inline(__always) public func vexp(_ x: Vec8) -> Vec8 {
    let underflow = x .< -87.3
    var x = x.replacing(with: -87.3, where: underflow)
    x = x.replacing(with: 88.3, where: x .> 88.3)
    // n = round(x / ln 2) through the 1.5·2^23 trick, which also leaves n in the low mantissa bits. Every step
    // that can is one fused multiply-add (AVX2's FMA, the baseline every build runs): a third fewer operations and
    // half the dependency chain of separate products and sums, and no less accurate.
    let magic: Float = 12_582_912
    let t = Vec8(repeating: magic).addingProduct(x, Vec8(repeating: 1.442_695_04))
    let n = t - magic
    let r = x.addingProduct(-n, Vec8(repeating: 0.693_359_375)).addingProduct(n, Vec8(repeating: 2.121_944_40e-4))
    var p: Vec8 = Vec8(repeating: 1.987_569_150_0e-4)
    p = Vec8(repeating: 1.398_199_950_7e-3).addingProduct(p, r)
    p = Vec8(repeating: 8.333_451_907_3e-3).addingProduct(p, r)
    p = Vec8(repeating: 4.166_579_589_4e-2).addingProduct(p, r)
    p = Vec8(repeating: 1.666_666_545_9e-1).addingProduct(p, r)
    p = Vec8(repeating: 5.000_000_120_1e-1).addingProduct(p, r)
    let er = r.addingProduct(p, r * r) + 1
    let ni = unsafeBitCast(t, to: SIMD8<Int32>.self) &- unsafeBitCast(Vec8(repeating: magic), to: SIMD8<Int32>.self)
    let scale = unsafeBitCast((ni &+ 127) &<< 23, to: Vec8.self)
    return (er * scale).replacing(with: 0, where: underflow)
}

/// |x| for every lane (clears the sign bit).
@inline(__always) public func vabs(_ x: Vec8) -> Vec8 {
    unsafeBitCast(unsafeBitCast(x, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: Vec8.self)
}

@inline(__always) private func withSignOf(_ magnitude: Vec8, _ x: Vec8) -> Vec8 {
    let sign = unsafeBitCast(x, to: SIMD8<UInt32>.self) & 0x8000_0000
    return unsafeBitCast(unsafeBitCast(magnitude, to: SIMD8<UInt32>.self) | sign, to: Vec8.self)
}

/// erf(x), absolute error ≤ 3e-7 in Float.
@inline(__always) public func verf(_ x: Vec8) -> Vec8 {
    let a = vabs(x)
    // The denominator and Horner's steps fused, as in vexp.
    let t = 1 / Vec8(repeating: 1).addingProduct(a, Vec8(repeating: 0.327_591_1))
    var p = Vec8(repeating: 1.061_405_429)
    p = Vec8(repeating: -1.453_152_027).addingProduct(p, t)
    p = Vec8(repeating: 1.421_413_741).addingProduct(p, t)
    p = Vec8(repeating: -0.284_496_736).addingProduct(p, t)
    p = Vec8(repeating: 0.254_829_592).addingProduct(p, t)
    let tail: Vec8 = p * t * vexp(-a * a)
    return withSignOf(1 - tail, x)
}

/// tanh(x) as 1 − 2 / (e^{2|x|} + 1) with the sign of x.
@inline(__always) public func vtanh(_ x: Vec8) -> Vec8 {
    let e: Vec8 = vexp(2 * vabs(x))
    let y: Vec8 = 1 - 2 / (e + 1)
    return withSignOf(y, x)
}

/// Σ lanes.
@inline(__always) public func hsum(_ v: Vec8) -> Float { v.sum() }
