import Foundation
import Testing
@testable import BERT

/// Rank `owner`'s test value at index `i`: small integers, so sums are exact.
private func value(_ owner: Int, _ i: Int) -> Float { Float((i % 97 + 1) * (owner + 1)) }

@Suite struct SingleProcessCommunicatorTests {
    @Test func collectivesAreIdentities() throws {
        let comm = SingleProcessCommunicator()
        #expect(comm.rank == 0 && comm.size == 1)
        var buffer: [Float] = [1, -2, 3.5, 4]
        try buffer.withUnsafeMutableBufferPointer { b in
            try comm.allReduceSum(b.baseAddress!, count: 4)
            try comm.reduceScatterSum(b.baseAddress!, counts: [4])
            try comm.allGather(b.baseAddress!, counts: [4])
            try comm.broadcast(b.baseAddress!, count: 4, root: 0)
        }
        #expect(buffer == [1, -2, 3.5, 4])
        #expect(try comm.allReduceSum([1.5, 2]) == [1.5, 2])
        #expect(try comm.broadcast(Data("abc".utf8), root: 0) == Data("abc".utf8))
        try comm.barrier()
        try comm.consistencyCheck(["config": "x"])
    }

    @Test func badArgumentsThrowNamingTheOperation() throws {
        let comm = SingleProcessCommunicator()
        var buffer: [Float] = [0, 0]
        buffer.withUnsafeMutableBufferPointer { b in
            #expect(throws: CommunicatorError.self) { try comm.reduceScatterSum(b.baseAddress!, counts: [1, 1]) }
            #expect(throws: CommunicatorError.self) { try comm.broadcast(b.baseAddress!, count: 2, root: 1) }
            #expect(throws: CommunicatorError.self) { try comm.allReduceSum(b.baseAddress!, count: -1) }
        }
        do {
            try buffer.withUnsafeMutableBufferPointer { try comm.allGather($0.baseAddress!, counts: [1, 1]) }
            Issue.record("expected an error")
        } catch {
            #expect("\(error)" == "allGather on rank 0: 2 counts for a world of 1")
        }
    }

    @Test func detectionFollowsTheLauncherEnvironment() throws {
        #expect(!Communicators.launchedByMPI(environment: [:]))
        #expect(Communicators.launchedByMPI(environment: ["OMPI_COMM_WORLD_SIZE": "2"]))
        #expect(Communicators.launchedByMPI(environment: ["PMI_SIZE": "4"]))
        #expect(Communicators.launchedByMPI(environment: ["PMIX_RANK": "0"]))
        #expect(try Communicators.detect(environment: ["HOME": "/root"]) is SingleProcessCommunicator)
    }

    @Test func slicing() {
        #expect(Communicators.evenCounts(total: 10, size: 3) == [4, 3, 3])
        #expect(Communicators.evenCounts(total: 2, size: 4) == [1, 1, 0, 0])
        #expect(Communicators.offsets([4, 3, 3]) == [0, 4, 7])
        #expect(Communicators.offsets([]) == [])
    }
}

@Suite struct LocalCommunicatorGroupTests {
    /// Runs every collective at several world sizes and checks each rank's result element by element.
    @Test(arguments: [1, 2, 3, 4])
    func collectiveSemantics(size: Int) throws {
        let group = LocalCommunicatorGroup(size: size)
        let count = 1001
        let counts = [7, 0, 500, 494].prefix(size - 1) + [count - [7, 0, 500, 494].prefix(size - 1).reduce(0, +)]
        let results = try group.run { comm -> [String] in
            var problems: [String] = []
            let rank = comm.rank
            let ranks = Float(comm.size * (comm.size + 1) / 2)
            var buffer = [Float](repeating: 0, count: count)
            let offsets = Communicators.offsets(Array(counts))

            buffer = (0..<count).map { value(rank, $0) }
            try buffer.withUnsafeMutableBufferPointer { try comm.allReduceSum($0.baseAddress!, count: count) }
            if buffer != (0..<count).map({ value(0, $0) * ranks }) { problems.append("allReduceSum on rank \(rank)") }

            buffer = (0..<count).map { value(rank, $0) }
            try buffer.withUnsafeMutableBufferPointer { try comm.reduceScatterSum($0.baseAddress!, counts: Array(counts)) }
            let mine = offsets[rank]..<(offsets[rank] + counts[rank])
            if Array(buffer[mine]) != mine.map({ value(0, $0) * ranks }) { problems.append("reduceScatterSum on rank \(rank)") }

            buffer = (0..<count).map { mine.contains($0) ? value(rank, $0) : -1 }
            try buffer.withUnsafeMutableBufferPointer { try comm.allGather($0.baseAddress!, counts: Array(counts)) }
            let gathered = (0..<comm.size).flatMap { owner in (offsets[owner]..<(offsets[owner] + counts[owner])).map { value(owner, $0) } }
            if buffer != gathered { problems.append("allGather on rank \(rank)") }

            let root = comm.size - 1
            buffer = rank == root ? (0..<count).map { value(root, $0) } : [Float](repeating: 0, count: count)
            try buffer.withUnsafeMutableBufferPointer { try comm.broadcast($0.baseAddress!, count: count, root: root) }
            if buffer != (0..<count).map({ value(root, $0) }) { problems.append("broadcast on rank \(rank)") }

            let payload = Data((0..<(300 + root)).map { UInt8(truncatingIfNeeded: $0 * 7) })
            let received = try comm.broadcast(rank == root ? payload : Data([1, 2, 3]), root: root)
            if received != payload { problems.append("broadcast(Data) on rank \(rank)") }
            if try comm.broadcast(Data(), root: 0) != Data() { problems.append("broadcast(empty Data) on rank \(rank)") }

            let sums = try comm.allReduceSum([Double(rank), 0.5])
            if sums != [Double(comm.size * (comm.size - 1) / 2), 0.5 * Double(comm.size)] { problems.append("allReduceSum([Double])") }
            try comm.barrier()
            try comm.consistencyCheck(["config": "bert-tiny", "shards": "a,b"])
            return problems
        }
        #expect(results.count == size)
        #expect(results.flatMap { $0 } == [])
    }

    @Test func sumsAreIdenticalOnEveryRank() throws {
        let group = LocalCommunicatorGroup(size: 3)
        let results = try group.run { comm -> [Float] in
            var buffer: [Float] = [0.1, 1e8, -0.3].map { $0 * Float(comm.rank + 1) }
            try buffer.withUnsafeMutableBufferPointer { try comm.allReduceSum($0.baseAddress!, count: 3) }
            return buffer
        }
        #expect(results[0] == results[1] && results[1] == results[2])
        #expect(results[0][1] == 6e8)
    }

    @Test func consistencyCheckNamesTheFieldAndRanksOnEveryRank() throws {
        let group = LocalCommunicatorGroup(size: 4)
        let messages = try group.run { comm -> String in
            var fields = ["config": "bert-base", "shards": "s0,s1", "world_size": "4"]
            if comm.rank >= 2 { fields["shards"] = "s\(comm.rank)" }
            if comm.rank == 3 { fields["zzz"] = "extra" }
            do {
                try comm.consistencyCheck(fields)
                return "passed"
            } catch let error as CommunicatorError {
                guard case let .inconsistent(field, ranks, _) = error else { return "wrong error \(error)" }
                return "\(field) \(ranks) | \(error)"
            }
        }
        let expected = #"shards [2, 3] | settings differ between ranks: "shards" is "s0,s1" on rank 0 but "s2" on rank 2 (ranks differing from rank 0: 2, 3)"#
        #expect(messages == Array(repeating: expected, count: 4))

        let missing = try LocalCommunicatorGroup(size: 2).run { comm -> String in
            do { try comm.consistencyCheck(comm.rank == 0 ? ["a": "1", "b": "2"] : ["a": "1"]); return "passed" }
            catch { return "\(error)" }
        }
        #expect(missing[1] == #"settings differ between ranks: "b" is "2" on rank 0 but "<absent>" on rank 1 (ranks differing from rank 0: 1)"#)
        #expect(missing[0] == missing[1])
    }

    @Test func mismatchedCountsThrowOnEveryRank() throws {
        let group = LocalCommunicatorGroup(size: 2)
        let errors = try group.run { comm -> String in
            var buffer = [Float](repeating: 1, count: 8)
            do {
                try buffer.withUnsafeMutableBufferPointer {
                    try comm.reduceScatterSum($0.baseAddress!, counts: comm.rank == 0 ? [4, 4] : [5, 3])
                }
                return "no error"
            } catch { return "\(error)" }
        }
        #expect(errors == ["reduceScatterSum on rank 0: ranks disagree: counts is [4, 4] on rank 0 but [5, 3] on rank 1",
                           "reduceScatterSum on rank 1: ranks disagree: counts is [4, 4] on rank 0 but [5, 3] on rank 1"])
    }

    struct Boom: Error, CustomStringConvertible { var description: String { "out of data" } }

    @Test func aRankThatThrowsReleasesTheOthers() throws {
        let group = LocalCommunicatorGroup(size: 3)
        let start = Date()
        do {
            _ = try group.run { comm -> Int in
                if comm.rank == 1 { throw Boom() }
                var buffer: [Float] = [1, 2]
                try buffer.withUnsafeMutableBufferPointer { try comm.allReduceSum($0.baseAddress!, count: 2) }
                return 0
            }
            Issue.record("run should have thrown")
        } catch let failure as LocalCommunicatorGroup.RankFailure {
            #expect(failure.rank == 1)
            #expect("\(failure)" == "rank 1 failed: out of data")
        }
        #expect(Date().timeIntervalSince(start) < 5)
        // The group is usable again after a failed run.
        let sums = try group.run { comm in try comm.allReduceSum([1]) }
        #expect(sums == [[3], [3], [3]])
    }

    @Test func markFailedReleasesRanksOnOwnThreads() throws {
        let group = LocalCommunicatorGroup(size: 2)
        let released = DispatchSemaphore(value: 0)
        let message = LockedBox("")
        let waiter = group.communicators[1]
        Thread {
            do { try waiter.barrier() } catch { message.withLock { $0 = "\(error)" } }
            released.signal()
        }.start()
        Thread.sleep(forTimeInterval: 0.05)
        group.markFailed(rank: 0, message: "loader thread died")
        #expect(released.wait(timeout: .now() + 5) == .success)
        #expect(message.withLock { $0 } == "barrier on rank 1: rank 0 failed: loader thread died")
    }

    @Test func aRankThatAbortsReleasesTheOthers() throws {
        let group = LocalCommunicatorGroup(size: 2)
        let seen = LockedBox<[String]>([])
        do {
            _ = try group.run { comm -> Int in
                if comm.rank == 0 { comm.abort("checkpoint directory is read-only") }
                do { try comm.barrier() } catch { seen.withLock { $0.append("\(error)") }; throw error }
                return 0
            }
            Issue.record("run should have thrown")
        } catch let failure as LocalCommunicatorGroup.RankFailure {
            #expect(failure.rank == 0 && failure.message == "checkpoint directory is read-only")
        }
        #expect(seen.withLock { $0 } == ["barrier on rank 1: rank 0 failed: checkpoint directory is read-only"])
    }
}

/// A lock-protected value (tests only).
final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
