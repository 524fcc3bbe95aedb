import Foundation
import Testing
@testable import BERT

/// Learning-rate schedules against ports of NVIDIA's PolyWarmUpScheduler and HF's warmup schedules
/// (fixture from scripts/reference/schedules.py): lrs[k] is the rate of the k-th optimizer update.
@Suite struct ScheduleTests {
    struct Entry: Decodable {
        let name: String, kind: String, base_lr: Double, total_steps: Int, lrs: [Double]
        let warmup_proportion: Double?, warmup_steps: Int?, degree: Double?
    }

    @Test func matchesReference() throws {
        let entries = try JSONDecoder().decode([Entry].self, from: Data(contentsOf: URL(fileURLWithPath: fixture("schedules/schedules.json"))))
        #expect(entries.count >= 11)
        for e in entries {
            let kind: LearningRateSchedule.Kind = e.kind == "poly_warmup" ? .poly : e.kind == "linear_warmup" ? .linear : .constant
            let warmup = e.warmup_proportion ?? Double(e.warmup_steps!) / Double(e.total_steps)
            let schedule = LearningRateSchedule(kind: kind, baseRate: e.base_lr, warmupProportion: warmup,
                                                totalSteps: e.total_steps, degree: e.degree ?? 0.5)
            for (k, expected) in e.lrs.enumerated() {
                #expect(abs(Double(schedule.rate(at: k)) - expected) <= 1e-6 * e.base_lr, "\(e.name) step \(k)")
            }
        }
    }
}
