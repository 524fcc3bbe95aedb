import Foundation
import Synchronization
import Testing
@testable import BERT

/// The collective timeout on simulated ranks: a rank that never arrives is named by every rank waiting for it, a
/// slow rank inside the limit is waited for, and a limit of 0 waits for ever.
@Suite struct CollectiveTimeoutTests {
    /// What one rank saw: its all-reduced values or its error, and how long the collective took.
    struct Outcome: Sendable {
        var sum: [Double]?
        var error: CommunicatorError?
        var seconds: Double
    }

    /// Runs `ranks` ranks with `timeout`; rank `late` sleeps `delay` seconds, then joins the all-reduce unless
    /// `joins` is false (it returns without calling it: a rank that never arrives).
    static func allReduce(ranks: Int, timeout: Double, late: Int, delay: Double, joins: Bool = true) throws -> [Outcome] {
        let group = LocalCommunicatorGroup(size: ranks)
        for c in group.communicators { c.collectiveTimeout = timeout }
        return try group.run { comm in
            if comm.rank == late {
                Thread.sleep(forTimeInterval: delay)
                if !joins { return Outcome(seconds: 0) }
            }
            let start = Date()
            do {
                let sum = try comm.allReduceSum([Double(comm.rank + 1)])
                return Outcome(sum: sum, seconds: Date().timeIntervalSince(start))
            } catch let error as CommunicatorError {
                return Outcome(error: error, seconds: Date().timeIntervalSince(start))
            }
        }
    }

    @Test func aRankThatNeverArrivesIsNamedByEveryWaitingRank() throws {
        let outcomes = try Self.allReduce(ranks: 3, timeout: 0.3, late: 2, delay: 1.5, joins: false)
        for r in 0..<2 {
            #expect(outcomes[r].error == .stalled(operation: "allReduceSum", rank: r, missingRanks: [2], timeout: 0.3), "rank \(r)")
            #expect(outcomes[r].seconds >= 0.3 && outcomes[r].seconds < 1.2, "rank \(r) waited \(outcomes[r].seconds) s")
        }
        #expect(outcomes[0].error.map { "\($0)" } == "rank 2 did not reach allReduceSum within 0.3 s")
    }

    @Test func everyMissingRankIsNamed() throws {
        let group = LocalCommunicatorGroup(size: 4)
        for c in group.communicators { c.collectiveTimeout = 0.2 }
        let errors = try group.run { comm -> CommunicatorError? in
            guard comm.rank == 0 else { return nil }   // only rank 0 reaches the barrier
            do { try comm.barrier(); return nil } catch let error as CommunicatorError { return error }
        }
        #expect(errors[0] == .stalled(operation: "barrier", rank: 0, missingRanks: [1, 2, 3], timeout: 0.2))
        #expect(errors[0].map { "\($0)" } == "ranks 1, 2, 3 did not reach barrier within 0.2 s")
    }

    @Test func aSlowRankWithinTheLimitIsWaitedFor() throws {
        let outcomes = try Self.allReduce(ranks: 3, timeout: 2, late: 1, delay: 0.4)
        for (r, outcome) in outcomes.enumerated() {
            #expect(outcome.error == nil && outcome.sum == [6], "rank \(r): \(outcome)")
        }
        #expect(outcomes[0].seconds >= 0.3, "rank 0 should have waited for rank 1: \(outcomes[0].seconds) s")
    }

    @Test func aLimitOfZeroWaitsForEver() throws {
        // The same late rank stalls the others under a short limit, and is waited for without one.
        let limited = try Self.allReduce(ranks: 2, timeout: 0.2, late: 1, delay: 0.8)
        #expect(limited[0].error == .stalled(operation: "allReduceSum", rank: 0, missingRanks: [1], timeout: 0.2))
        // Rank 1 then finds rank 0 gone: it names it instead of waiting for it.
        #expect(limited[1].error == .stalled(operation: "allReduceSum", rank: 1, missingRanks: [0], timeout: 0.2))
        let unlimited = try Self.allReduce(ranks: 2, timeout: 0, late: 1, delay: 0.8)
        #expect(unlimited.allSatisfy { $0.error == nil && $0.sum == [3] }, "\(unlimited)")
        #expect(unlimited[0].seconds >= 0.7)
    }
}

/// The watchdog that guards the data loader: it fires once for a call that overruns, never for one that returns in
/// time, and never with a limit of 0.
@Suite struct WatchdogTests {
    /// Runs a guarded call of `duration` seconds with `timeout`, waits `after` seconds more, and returns when the
    /// handler fired (seconds after the start) each time it did.
    static func firings(timeout: Double, duration: Double, after: Double = 0) -> [Double] {
        let fired = Mutex<[Double]>([])
        let watchdog = Watchdog(), start = Date()
        watchdog.guarding(timeout: timeout, onExpiry: { fired.withLock { $0.append(Date().timeIntervalSince(start)) } }) {
            Thread.sleep(forTimeInterval: duration)
        }
        Thread.sleep(forTimeInterval: after)
        return fired.withLock { $0 }
    }

    @Test func aCallThatOverrunsFiresTheHandlerOnceWhileItRuns() {
        let fired = Self.firings(timeout: 0.2, duration: 1.0, after: 0.3)
        #expect(fired.count == 1, "\(fired)")
        #expect(fired.allSatisfy { $0 >= 0.2 && $0 < 0.8 }, "fired at \(fired) s")
    }

    @Test func aCallThatReturnsInTimeDoesNotFire() {
        #expect(Self.firings(timeout: 0.3, duration: 0.05, after: 0.6).isEmpty)
    }

    @Test func aLimitOfZeroNeverFires() {
        #expect(Self.firings(timeout: 0, duration: 0.5).isEmpty)
    }

    @Test func theWatchdogIsReusedAcrossCalls() {
        let fired = Mutex(0)
        let watchdog = Watchdog()
        for duration in [0.05, 0.6, 0.05] {
            watchdog.guarding(timeout: 0.3, onExpiry: { fired.withLock { $0 += 1 } }) { Thread.sleep(forTimeInterval: duration) }
        }
        Thread.sleep(forTimeInterval: 0.4)
        #expect(fired.withLock { $0 } == 1)
    }
}
