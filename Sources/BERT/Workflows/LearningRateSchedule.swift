/// Learning rate per optimizer step. `rate(at: k)` is the rate of the k-th update (k = 0-based), with
/// progress p = (k + 1) / total and warmup w (a fraction of the total steps):
///   poly (NVIDIA's PolyWarmUpScheduler):  base · p / w while p < w, then base · (1 − p)^degree (degree 0.5)
///   linear (HF get_linear_schedule_with_warmup): base · k / W while k < W, then base · (T − k) / (T − W), W = ⌈w·T⌉
///   constant: base · k / W while k < W, then base
public struct LearningRateSchedule: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, CaseIterable, Sendable { case poly, linear, constant }

    public var kind: Kind
    public var baseRate: Double
    public var warmupProportion: Double
    public var totalSteps: Int
    /// The exponent of `poly` after warmup.
    public var degree: Double

    public init(kind: Kind, baseRate: Double, warmupProportion: Double, totalSteps: Int, degree: Double = 0.5) {
        self.kind = kind
        self.baseRate = baseRate
        self.warmupProportion = warmupProportion
        self.totalSteps = totalSteps
        self.degree = degree
    }

    public func rate(at k: Int) -> Float {
        let T = Double(totalSteps), w = warmupProportion
        switch kind {
        case .poly:
            let p = Double(k + 1) / T
            return Float(p < w ? baseRate * p / w : baseRate * pow(max(0, 1 - p), degree))
        case .linear, .constant:
            let W = (w * T).rounded(.up)
            if Double(k) < W { return Float(baseRate * Double(k) / W) }
            return Float(kind == .constant ? baseRate : baseRate * max(0, T - Double(k)) / max(1, T - W))
        }
    }
}

import Foundation
