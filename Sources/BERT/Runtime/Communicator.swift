import Foundation

/// The collectives data-parallel training needs, over a fixed world of `size` ranks numbered `0..<size`.
///
/// Every collective is *collective*: every rank must call it, in the same order, with the same `count`,
/// `counts` and `root`. Buffers are updated in place. Implementations:
/// - `SingleProcessCommunicator`: a world of one; every collective is the identity.
/// - `MPICommunicator`: Open MPI, for processes launched by `mpirun`.
/// - `LocalCommunicatorGroup`: N simulated ranks on N threads of one process, for tests.
/// `Communicators.detect()` picks MPI when the process was launched by `mpirun`, else a single process.
///
/// Slices: `counts[r]` is the number of elements rank `r` owns; rank `r`'s slice starts at
/// `counts[0..<r].reduce(0, +)`. `counts.count` must equal `size` and the buffer must hold `counts.reduce(0, +)`.
///
/// Errors: a failing collective throws `CommunicatorError`, naming the operation and the rank. After a throw
/// the world is in an undefined state; call `abort` (which ends every rank) rather than carry on.
///
/// Hangs: MPI's blocking collectives wait for ever for a rank that stopped without dying. With a
/// `collectiveTimeout`, a rank that has waited that long at a collective for the others throws
/// `CommunicatorError.stalled` naming the ranks that never arrived, so the job can stop instead of hanging.
public protocol Communicator: AnyObject, Sendable {
    /// This process's rank, `0..<size`.
    var rank: Int { get }
    /// The number of ranks.
    var size: Int { get }
    /// Seconds a rank waits at a collective for the others to arrive before it throws `CommunicatorError.stalled`;
    /// 0 waits for ever. Every rank must use the same value (it decides whether ranks exchange arrival notices).
    var collectiveTimeout: Double { get set }
    /// Sums `count` floats element-wise over all ranks; every rank ends with the sum.
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws
    /// Sums `values` element-wise over all ranks (same length everywhere) and returns the sums (metrics, losses).
    func allReduceSum(_ values: [Double]) throws -> [Double]
    /// In place: rank `r` ends with the element-wise sum over all ranks of slice `r`, at slice `r`'s offset.
    /// The contents of the other slices of `buffer` are unspecified afterwards.
    func reduceScatterSum(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) throws
    /// In place: every rank's slice `r` is copied from rank `r`'s buffer; every rank ends with all slices.
    func allGather(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) throws
    /// Copies `count` floats from rank `root`'s buffer into everyone's.
    func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) throws
    /// Returns rank `root`'s `data` on every rank (the other ranks' argument is ignored; any size).
    func broadcast(_ data: Data, root: Int) throws -> Data
    /// Returns when every rank has entered the barrier.
    func barrier() throws
    /// Ends the whole job: prints `message` (prefixed with the rank) on standard error and makes every rank
    /// exit non-zero. Call it on any error once the world exists, so no rank waits for one that gave up.
    func abort(_ message: String) -> Never

    // The same collectives on a backend's buffers (the training step's gradients and parameters). The default
    // implementations go through host memory (`DeviceBuffer.withHostFloats`: the buffer itself on the CPU, a copy on a
    // device); a communicator that talks to the device directly (NCCL) implements them itself.
    func allReduceSum(_ buffer: DeviceBuffer, count: Int) throws
    func reduceScatterSum(_ buffer: DeviceBuffer, counts: [Int]) throws
    func allGather(_ buffer: DeviceBuffer, counts: [Int]) throws
    func broadcast(_ buffer: DeviceBuffer, count: Int, root: Int) throws
}

extension Communicator {
    public func allReduceSum(_ buffer: DeviceBuffer, count: Int) throws {
        try buffer.withHostFloats { try allReduceSum($0, count: count) }
    }

    public func reduceScatterSum(_ buffer: DeviceBuffer, counts: [Int]) throws {
        try buffer.withHostFloats { try reduceScatterSum($0, counts: counts) }
    }

    public func allGather(_ buffer: DeviceBuffer, counts: [Int]) throws {
        try buffer.withHostFloats { try allGather($0, counts: counts) }
    }

    public func broadcast(_ buffer: DeviceBuffer, count: Int, root: Int) throws {
        try buffer.withHostFloats { try broadcast($0, count: count, root: root) }
    }
}

/// An error from a collective. Every message names the operation and the rank it happened on.
public enum CommunicatorError: Error, CustomStringConvertible, Equatable {
    /// An MPI call returned an error code.
    case mpi(operation: String, rank: Int, code: Int32, message: String)
    /// The arguments are wrong on this rank (negative count, counts not one per rank, bad root…).
    case invalidArgument(operation: String, rank: Int, message: String)
    /// Ranks called the collective with arguments that differ (counts, sizes).
    case mismatch(operation: String, rank: Int, message: String)
    /// Another rank failed or aborted, so the collective cannot complete (simulated ranks only: under MPI the
    /// job is killed instead).
    case peerFailed(operation: String, rank: Int, failedRank: Int, message: String)
    /// `consistencyCheck` found ranks whose settings differ. The same error is thrown on every rank.
    case inconsistent(field: String, ranks: [Int], message: String)
    /// `missingRanks` did not reach the collective within `timeout` seconds of this rank's arrival.
    case stalled(operation: String, rank: Int, missingRanks: [Int], timeout: Double)

    public var description: String {
        switch self {
        case let .mpi(operation, rank, code, message):
            return "\(operation) failed on rank \(rank) (MPI error \(code)): \(message)"
        case let .invalidArgument(operation, rank, message):
            return "\(operation) on rank \(rank): \(message)"
        case let .mismatch(operation, rank, message):
            return "\(operation) on rank \(rank): ranks disagree: \(message)"
        case let .peerFailed(operation, rank, failedRank, message):
            return "\(operation) on rank \(rank): rank \(failedRank) failed: \(message)"
        case let .inconsistent(_, _, message):
            return message
        case let .stalled(operation, _, missing, timeout):
            let who = missing.count == 1 ? "rank \(missing[0])" : "ranks \(missing.map(String.init).joined(separator: ", "))"
            return "\(who) did not reach \(operation) within \(secondsText(timeout)) s"
        }
    }
}

/// Chooses the communicator for this process.
public enum Communicators {
    /// The environment variables a launcher sets: Open MPI's `mpirun` (`OMPI_COMM_WORLD_SIZE`), PMI (`PMI_SIZE`,
    /// Slurm/Hydra) and PMIx (`PMIX_RANK`).
    public static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"]

    /// True when the process was started by an MPI launcher.
    public static func launchedByMPI(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        launcherVariables.contains { environment[$0] != nil }
    }

    /// `MPICommunicator.world()` when launched by `mpirun` (or another MPI launcher), else a
    /// `SingleProcessCommunicator`. No flag needed: `bert pretrain` and `mpirun -np 8 bert pretrain` both work.
    public static func detect(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> any Communicator {
        launchedByMPI(environment: environment) ? try MPICommunicator.world() : SingleProcessCommunicator()
    }

    /// Each slice's offset in a buffer sliced by `counts` (rank r's slice starts at `offsets(counts)[r]`).
    public static func offsets(_ counts: [Int]) -> [Int] {
        var offsets = [Int](), total = 0
        for c in counts { offsets.append(total); total += c }
        return offsets
    }

    /// Splits `total` elements into `size` slices as evenly as possible (the first `total % size` get one more).
    public static func evenCounts(total: Int, size: Int) -> [Int] {
        (0..<size).map { total / size + ($0 < total % size ? 1 : 0) }
    }
}

extension Communicator {
    /// Checks `counts` for a sliced collective on this rank.
    func validate(counts: [Int], operation: String) throws {
        guard counts.count == size else {
            throw CommunicatorError.invalidArgument(operation: operation, rank: rank,
                                                    message: "\(counts.count) counts for a world of \(size)")
        }
        if let bad = counts.firstIndex(where: { $0 < 0 }) {
            throw CommunicatorError.invalidArgument(operation: operation, rank: rank,
                                                    message: "negative count \(counts[bad]) for rank \(bad)")
        }
    }

    func validate(count: Int, root: Int? = nil, operation: String) throws {
        guard count >= 0 else {
            throw CommunicatorError.invalidArgument(operation: operation, rank: rank, message: "negative count \(count)")
        }
        if let root, !(0..<size).contains(root) {
            throw CommunicatorError.invalidArgument(operation: operation, rank: rank,
                                                    message: "root \(root) outside 0..<\(size)")
        }
    }

    /// Runs `body`; on any error, aborts the whole job with the error's message (naming this rank). The way to
    /// wrap a command's work once the communicator exists: no rank is left waiting in a collective for a rank
    /// that threw.
    public func abortingOnError<T>(_ body: () throws -> T) -> T {
        do { return try body() } catch { abort("\(error)") }
    }

    /// Checks that every rank runs with the same settings (config, shard list, world size, flags…), before the
    /// first collective of a run. Rank 0's fields are broadcast; each rank compares them with its own; the
    /// ranks that differ and the first differing field (in sorted key order, as seen by the lowest such rank)
    /// are then shared, so every rank throws the same `CommunicatorError.inconsistent`, e.g.
    /// `settings differ between ranks: "shards" is "a.hdf5" on rank 0 but "b.hdf5" on rank 2 (ranks differing
    /// from rank 0: 2, 3)`. A world of one always passes.
    public func consistencyCheck(_ fields: [String: String]) throws {
        guard size > 1 else { return }
        let mine = Self.encode(fields)
        let reference = try broadcast(mine, root: 0)
        let referenceFields = try Self.decode(reference)
        let differing = Self.firstDifference(referenceFields, fields)
        var flags = [Double](repeating: 0, count: size)
        if differing != nil { flags[rank] = 1 }
        let allFlags = try allReduceSum(flags)
        let ranks = allFlags.indices.filter { allFlags[$0] != 0 }
        guard let first = ranks.first else { return }
        // The lowest differing rank tells everyone which field and which value.
        var report = Data()
        if rank == first, let differing {
            report = Self.encode(["field": differing, "value": fields[differing] ?? "<absent>"])
        }
        let shared = try Self.decode(try broadcast(report, root: first))
        let field = shared["field"] ?? "?"
        let theirs = shared["value"] ?? "?"
        let reference0 = referenceFields[field] ?? "<absent>"
        let message = "settings differ between ranks: \"\(field)\" is \"\(reference0)\" on rank 0 but \"\(theirs)\" "
            + "on rank \(first) (ranks differing from rank 0: \(ranks.map(String.init).joined(separator: ", ")))"
        throw CommunicatorError.inconsistent(field: field, ranks: ranks, message: message)
    }

    static func firstDifference(_ a: [String: String], _ b: [String: String]) -> String? {
        Set(a.keys).union(b.keys).sorted().first { a[$0] != b[$0] }
    }

    static func encode(_ fields: [String: String]) -> Data {
        (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data()
    }

    static func decode(_ data: Data) throws -> [String: String] {
        guard !data.isEmpty else { return [:] }
        guard let fields = try JSONSerialization.jsonObject(with: data) as? [String: String] else {
            throw CommunicatorError.mismatch(operation: "consistencyCheck", rank: -1, message: "undecodable fingerprint")
        }
        return fields
    }
}

/// A duration in seconds as a person writes it: `3`, `0.5`.
func secondsText(_ seconds: Double) -> String {
    seconds == seconds.rounded() && abs(seconds) < 1e15 ? "\(Int(seconds))" : "\(seconds)"
}

/// Prints `bert: rank R of N: message` on standard error, unbuffered, so it appears before the job is torn down.
func printRankMessage(rank: Int, size: Int, _ message: String) {
    let line = "bert: rank \(rank) of \(size): \(message)\n"
    FileHandle.standardError.write(Data(line.utf8))
}

/// A world of one process: every collective leaves the buffer as it is (a sum over one rank, a gather of one
/// slice, a broadcast from oneself). `abort` prints the message and exits with status 1.
public final class SingleProcessCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    /// Always 0: a world of one never waits for anyone.
    public var collectiveTimeout: Double { get { 0 } set {} }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        try validate(count: count, operation: "allReduceSum")
    }
    public func allReduceSum(_ values: [Double]) throws -> [Double] { values }
    public func reduceScatterSum(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) throws {
        try validate(counts: counts, operation: "reduceScatterSum")
    }
    public func allGather(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) throws {
        try validate(counts: counts, operation: "allGather")
    }
    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) throws {
        try validate(count: count, root: root, operation: "broadcast")
    }
    public func broadcast(_ data: Data, root: Int) throws -> Data {
        try validate(count: 0, root: root, operation: "broadcast")
        return data
    }
    public func barrier() throws {}
    public func abort(_ message: String) -> Never {
        printRankMessage(rank: 0, size: 1, message)
        exit(1)
    }
}
