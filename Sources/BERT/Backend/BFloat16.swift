/// bf16 storage on the host: a float rounded to the nearest bf16 (ties to even), as `__float2bfloat16_rn` does;
/// NaN stays NaN.
@inline(__always) func roundedToBFloat16(_ x: Float) -> Float {
    let bits = x.bitPattern
    guard !x.isNaN else { return x }
    let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
    return Float(bitPattern: rounded & 0xFFFF_0000)
}
