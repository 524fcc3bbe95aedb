import CBERTShared

/// bf16 storage on the host: a float rounded to the nearest bf16 (ties to even) by the kernels' own shared function
/// (`bs_bf16_from_float` in bert_shared.cuh, checked against PyTorch), widened back exactly.
@inline(__always) public func roundedToBFloat16(_ x: Float) -> Float { bs_bf16_to_float(bs_bf16_from_float(x)) }
