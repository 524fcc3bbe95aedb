import BERTKernels
import Foundation
import Testing

@Suite struct VectorTests {
    func lanes(_ f: (Vec8) -> Vec8, _ x: [Float]) -> [Float] {
        stride(from: 0, to: x.count, by: 8).flatMap { i -> [Float] in
            let n = min(8, x.count - i)
            let v = f(x.withUnsafeBufferPointer { load8($0.baseAddress! + i, n) })
            return (0..<n).map { v[$0] }
        }
    }

    let x: [Float] = stride(from: -20.0, through: 20.0, by: 0.0137).map { Float($0) }

    @Test func expIsAccurate() {
        for (xi, yi) in zip(x, lanes(vexp, x)) {
            let e = exp(Double(xi))
            #expect(abs(Double(yi) - e) <= 3e-7 * e, "exp(\(xi))")
        }
        #expect(lanes(vexp, [-100, -1e4, -87.4]) == [0, 0, 0], "underflow gives exactly 0, never a denormal")
    }

    @Test func erfAndTanhAreAccurate() {
        for (xi, yi) in zip(x, lanes(verf, x)) { #expect(abs(Double(yi) - erf(Double(xi))) <= 3e-7, "erf(\(xi))") }
        for (xi, yi) in zip(x, lanes(vtanh, x)) { #expect(abs(Double(yi) - tanh(Double(xi))) <= 2e-7, "tanh(\(xi))") }
    }
}
