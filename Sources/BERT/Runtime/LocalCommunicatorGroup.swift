import Foundation

/// N simulated ranks in one process: `communicators[r]` is rank r's `Communicator`, to be used from its own
/// thread (one thread per rank, as one process per rank under MPI). Collectives meet at a shared barrier and
/// read each other's buffers directly, so their semantics (slices, roots, in-place updates) can be tested, and
/// a trainer can be run data-parallel, without `mpirun`.
///
/// Sums are taken in rank order (rank 0 + rank 1 + …), and every rank receives the same bits.
///
/// Faults: when a rank's body throws or calls `abort` inside `run`, the group is marked failed; ranks waiting
/// in (or later entering) a collective throw `CommunicatorError.peerFailed` naming the failed rank, instead of
/// waiting forever. `run` then throws `LocalCommunicatorGroup.RankFailure` for the lowest failing rank.
///
/// Hangs: a rank whose `collectiveTimeout` is set throws `CommunicatorError.stalled`, naming the ranks that have not
/// arrived, once it has waited that long at a collective (as `MPICommunicator` does).
public final class LocalCommunicatorGroup: @unchecked Sendable {
    public let size: Int
    public private(set) var communicators: [LocalCommunicator] = []
    let state: SharedState

    public init(size: Int) {
        precondition(size >= 1, "a group needs at least one rank")
        self.size = size
        state = SharedState(size: size)
        communicators = (0..<size).map { LocalCommunicator(rank: $0, size: size, state: state) }
    }

    /// Marks `rank` as failed: every collective waiting now or called later throws `peerFailed` naming it. `run`
    /// does this for a rank that throws; call it yourself when driving the communicators from your own threads.
    public func markFailed(rank: Int, message: String) {
        state.fail(rank: rank, message: message, primary: true)
    }

    /// A rank's failure inside `run`: the rank and what it threw (or the message it aborted with).
    public struct RankFailure: Error, CustomStringConvertible {
        public let rank: Int
        public let message: String
        public var description: String { "rank \(rank) failed: \(message)" }
    }

    /// Runs `body` on `size` threads, one per rank, and returns their results in rank order. If any rank throws
    /// or aborts, the others are released from their collectives with `peerFailed`, and this throws the first
    /// rank's failure (the one that caused the others to fail).
    public func run<T: Sendable>(_ body: @escaping @Sendable (any Communicator) throws -> T) throws -> [T] {
        let results = ResultBox<T>(size: size)
        let done = DispatchGroup()
        state.condition.lock()
        state.currentRun = done
        state.failures = []
        state.arrived = []  // a failed run may leave ranks counted at a barrier they never passed
        state.gaveUp = []
        state.generation += 1
        state.condition.unlock()
        for r in 0..<size {
            done.enter()
            let communicator = communicators[r]
            let thread = Thread {
                communicator.insideRun = true
                let outcome = Result { try body(communicator) }
                if case .failure(let error) = outcome {
                    self.state.fail(rank: r, message: "\(error)", primary: !(error is CommunicatorError))
                }
                results.set(r, outcome)
                done.leave()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        // An aborted rank parks its thread and leaves the group through `abortedRanks`.
        done.wait()
        if let failure = state.firstFailure() { throw RankFailure(rank: failure.rank, message: failure.message) }
        return try results.values()
    }

    final class ResultBox<T>: @unchecked Sendable {
        private let lock = NSLock()
        private var slots: [Result<T, Error>?]
        init(size: Int) { slots = Array(repeating: nil, count: size) }
        func set(_ r: Int, _ value: Result<T, Error>) { lock.lock(); slots[r] = value; lock.unlock() }
        func values() throws -> [T] { lock.lock(); defer { lock.unlock() }; return try slots.map { try $0!.get() } }
    }

    /// The barrier, the posted buffers, and the failure state the ranks share.
    final class SharedState: @unchecked Sendable {
        let size: Int
        let condition = NSCondition()
        /// The ranks waiting at the barrier of the current generation, and those that stopped waiting (timed out):
        /// these arrived, so a rank timing out later does not name them.
        var arrived: Set<Int> = []
        var gaveUp: Set<Int> = []
        var generation = 0
        var failures: [(rank: Int, message: String, primary: Bool)] = []
        var posted: [Any?]
        /// The threads of the `run` in progress.
        var currentRun: DispatchGroup?
        /// The all-reduce sums, written by every rank (each its own part), read by all. Raw memory: several
        /// threads write disjoint parts at once.
        var scratch = UnsafeMutablePointer<Float>.allocate(capacity: 1)
        var scratchCapacity = 1
        deinit { scratch.deallocate() }

        func reserveScratch(_ count: Int) {
            condition.lock()
            if count > scratchCapacity {
                scratch.deallocate()
                scratch = .allocate(capacity: count)
                scratchCapacity = count
            }
            condition.unlock()
        }

        init(size: Int) {
            self.size = size
            posted = Array(repeating: nil, count: size)
        }

        func fail(rank: Int, message: String, primary: Bool) {
            condition.lock()
            failures.append((rank, message, primary))
            condition.broadcast()
            condition.unlock()
        }

        /// The rank that failed first on its own (not because a peer failed), else the first recorded.
        func firstFailure() -> (rank: Int, message: String)? {
            condition.lock()
            defer { condition.unlock() }
            let pick = failures.filter(\.primary).min { $0.rank < $1.rank } ?? failures.min { $0.rank < $1.rank }
            return pick.map { ($0.rank, $0.message) }
        }

        func peerFailure(operation: String, rank: Int) -> CommunicatorError? {
            guard let first = failures.filter(\.primary).min(by: { $0.rank < $1.rank }) ?? failures.first else { return nil }
            return .peerFailed(operation: operation, rank: rank, failedRank: first.rank, message: first.message)
        }

        /// Waits until every rank has arrived, or throws if a rank failed or (with a `timeout` above 0) if some have
        /// not arrived within `timeout` seconds.
        func barrier(operation: String, rank: Int, timeout: Double) throws {
            condition.lock()
            defer { condition.unlock() }
            if let failure = peerFailure(operation: operation, rank: rank) { throw failure }
            let mine = generation
            arrived.insert(rank)
            if arrived.count == size {
                arrived = []
                gaveUp = []
                generation += 1
                condition.broadcast()
                return
            }
            let deadline = Date(timeIntervalSinceNow: timeout)   // (wait(until:) traps on .distantFuture)
            while generation == mine {
                if let failure = peerFailure(operation: operation, rank: rank) { throw failure }
                guard timeout > 0 else { condition.wait(); continue }
                if !condition.wait(until: deadline) && generation == mine {
                    // Name the ranks that never came; if all came but some left, those that left.
                    let absent = (0..<size).filter { !arrived.contains($0) }
                    let missing = absent.contains { !gaveUp.contains($0) } ? absent.filter { !gaveUp.contains($0) } : absent
                    arrived.remove(rank)   // this rank no longer waits here
                    gaveUp.insert(rank)
                    throw CommunicatorError.stalled(operation: operation, rank: rank, missingRanks: missing, timeout: timeout)
                }
            }
        }

        func post(_ rank: Int, _ value: Any) {
            condition.lock()
            posted[rank] = value
            condition.unlock()
        }

        func read(_ rank: Int) -> Any? {
            condition.lock()
            defer { condition.unlock() }
            return posted[rank]
        }
    }
}

/// One simulated rank of a `LocalCommunicatorGroup`.
public final class LocalCommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    let state: LocalCommunicatorGroup.SharedState
    var insideRun = false
    public var collectiveTimeout: Double = 0

    init(rank: Int, size: Int, state: LocalCommunicatorGroup.SharedState) {
        self.rank = rank
        self.size = size
        self.state = state
    }

    /// A raw pointer handed between threads.
    struct Pointer: @unchecked Sendable { let base: UnsafeMutablePointer<Float> }

    /// Posts this rank's argument, meets the others, runs `body` with every rank's argument, meets again (so no
    /// rank changes its buffer while another still reads it).
    private func collective<P>(_ operation: String, _ mine: P, _ body: ([P]) throws -> Void) throws {
        state.post(rank, mine)
        try state.barrier(operation: operation, rank: rank, timeout: collectiveTimeout)
        let all = (0..<size).map { state.read($0) as! P }
        var failure: Error?
        do { try body(all) } catch { failure = error }
        try state.barrier(operation: operation, rank: rank, timeout: collectiveTimeout)
        if let failure { throw failure }
    }

    private func sameEverywhere<V: Equatable>(_ values: [V], _ what: String, _ operation: String) throws {
        if let other = values.firstIndex(where: { $0 != values[0] }) {
            throw CommunicatorError.mismatch(operation: operation, rank: rank,
                                             message: "\(what) is \(values[0]) on rank 0 but \(values[other]) on rank \(other)")
        }
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        try validate(count: count, operation: "allReduceSum")
        // Each rank sums one part of the index range into a shared scratch buffer; then all copy it out.
        if rank == 0 { state.reserveScratch(count) }
        try collective("allReduceSum", (Pointer(base: buffer), count)) { all in
            try sameEverywhere(all.map(\.1), "count", "allReduceSum")
            let part = Communicators.evenCounts(total: count, size: size)
            let start = part[0..<rank].reduce(0, +)
            let scratch = state.scratch
            for i in start..<(start + part[rank]) {
                var sum = all[0].0.base[i]
                for q in 1..<size { sum += all[q].0.base[i] }
                scratch[i] = sum
            }
        }
        try collective("allReduceSum", 0) { _ in
            if count > 0 { buffer.update(from: state.scratch, count: count) }
        }
    }

    public func allReduceSum(_ values: [Double]) throws -> [Double] {
        var result = values
        try collective("allReduceSum", values) { all in
            try sameEverywhere(all.map(\.count), "count", "allReduceSum")
            for i in values.indices { result[i] = all.dropFirst().reduce(all[0][i]) { $0 + $1[i] } }
        }
        return result
    }

    public func reduceScatterSum(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) throws {
        try validate(counts: counts, operation: "reduceScatterSum")
        try collective("reduceScatterSum", (Pointer(base: buffer), counts)) { all in
            try sameEverywhere(all.map(\.1), "counts", "reduceScatterSum")
            // Rank r writes only its own slice of its own buffer, which no other rank reads.
            let start = Communicators.offsets(counts)[rank]
            for i in start..<(start + counts[rank]) {
                var sum = all[0].0.base[i]
                for q in 1..<size { sum += all[q].0.base[i] }
                buffer[i] = sum
            }
        }
    }

    public func allGather(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) throws {
        try validate(counts: counts, operation: "allGather")
        try collective("allGather", (Pointer(base: buffer), counts)) { all in
            try sameEverywhere(all.map(\.1), "counts", "allGather")
            // Rank r writes the other slices of its own buffer; others read only slice r of it.
            let offsets = Communicators.offsets(counts)
            for owner in 0..<size where owner != rank && counts[owner] > 0 {
                (buffer + offsets[owner]).update(from: all[owner].0.base + offsets[owner], count: counts[owner])
            }
        }
    }

    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) throws {
        try validate(count: count, root: root, operation: "broadcast")
        try collective("broadcast", (Pointer(base: buffer), count, root)) { all in
            try sameEverywhere(all.map(\.1), "count", "broadcast")
            try sameEverywhere(all.map(\.2), "root", "broadcast")
            if rank != root && count > 0 { buffer.update(from: all[root].0.base, count: count) }
        }
    }

    public func broadcast(_ data: Data, root: Int) throws -> Data {
        try validate(count: 0, root: root, operation: "broadcast")
        var result = data
        try collective("broadcast", (data, root)) { all in
            try sameEverywhere(all.map(\.1), "root", "broadcast")
            result = all[root].0
        }
        return result
    }

    public func barrier() throws {
        try state.barrier(operation: "barrier", rank: rank, timeout: collectiveTimeout)
    }

    /// Inside `LocalCommunicatorGroup.run`: prints the message, marks the group failed (the other ranks' collectives
    /// throw `peerFailed`) and parks this thread for good, as if the process had ended. Outside `run`: prints the
    /// message and exits the process with status 1, like a single process.
    public func abort(_ message: String) -> Never {
        printRankMessage(rank: rank, size: size, message)
        guard insideRun else { exit(1) }
        state.fail(rank: rank, message: message, primary: true)
        state.parked()
    }
}

extension LocalCommunicatorGroup.SharedState {
    /// An aborted rank's thread: tells `run` it is done, then never returns.
    func parked() -> Never {
        condition.lock()
        let run = currentRun
        condition.unlock()
        run?.leave()
        while true { Thread.sleep(forTimeInterval: 3600) }
    }
}
