import CBERTShared

/// The emulator's cuBLASLt: `MatmulDescription` interpreted with cuBLAS's documented semantics, column-major,
/// element (r, c) of a stored matrix at `r + c·ld`, batch t at `t·stride` elements; bf16 operands widened exactly,
/// products summed in fp32 (CUBLAS_COMPUTE_32F) over k in order, then `alpha·sum + beta·C + bias[i]`; C is not read
/// when beta is 0 (cuBLAS's rule, so an uninitialised output never leaks in). Leading dimensions below the rows of a
/// layout and operands that leave their allocation are errors, as cuBLASLt's layout checks make them.
struct MatmulReference {
    let runtime: EmulatedRuntime

    /// A stored operand's elements as floats, by (row, column, batch).
    private struct Matrix {
        let base: UnsafeMutableRawPointer, type: MatmulDescription.ElementType, ld: Int, stride: Int

        @inline(__always) func offset(_ r: Int, _ c: Int, _ t: Int) -> Int { t * stride + r + c * ld }

        @inline(__always) subscript(r: Int, c: Int, t: Int) -> Float {
            let i = offset(r, c, t)
            return type == .fp32 ? base.assumingMemoryBound(to: Float.self)[i]
                : bs_bf16_to_float(base.assumingMemoryBound(to: UInt16.self)[i])
        }
    }

    private func matrix(_ operand: MatmulDescription.Operand, _ shape: (rows: Int, columns: Int), batches: Int,
                        _ name: String) throws -> Matrix {
        guard operand.ld >= max(1, shape.rows), batches == 1 || operand.stride >= 0 else {
            throw CUDAError.launchArguments(kernel: "matmul", problem: "\(name): ld \(operand.ld) for \(shape.rows) rows")
        }
        let elements = (batches - 1) * operand.stride + (shape.columns - 1) * operand.ld + shape.rows
        let base = try runtime.host(operand.address, bytes: elements * operand.type.size, "matmul \(name)")
        return Matrix(base: base, type: operand.type, ld: operand.ld, stride: operand.stride)
    }

    func run(_ d: MatmulDescription) throws {
        guard d.c.type == .fp32, d.m > 0, d.n > 0, d.k > 0, d.batchCount >= 1 else {
            throw CUDAError.launchArguments(kernel: "matmul", problem: "C/D must be fp32 and m, n, k, batch positive")
        }
        let a = try matrix(d.a, d.shapeA, batches: d.batchCount, "A")
        let b = try matrix(d.b, d.shapeB, batches: d.batchCount, "B")
        let c = try matrix(d.c, d.shapeC, batches: d.batchCount, "C")
        var bias: UnsafeMutablePointer<Float>? = nil
        if case let .bias(address) = d.epilogue {
            bias = try runtime.host(address, bytes: 4 * d.m, "matmul bias").assumingMemoryBound(to: Float.self)
        }
        let out = c.base.assumingMemoryBound(to: Float.self)
        for t in 0..<d.batchCount {
            for j in 0..<d.n {
                for i in 0..<d.m {
                    var sum: Float = 0
                    for p in 0..<d.k {
                        let x = d.transposeA ? a[p, i, t] : a[i, p, t]
                        let y = d.transposeB ? b[j, p, t] : b[p, j, t]
                        sum += x * y
                    }
                    var value = d.alpha * sum
                    if d.beta != 0 { value += d.beta * c[i, j, t] }
                    if let bias { value += bias[i] }
                    out[c.offset(i, j, t)] = value
                }
            }
        }
    }
}
