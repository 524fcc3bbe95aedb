import CMPI
import Foundation

/// The communicator of a process launched by `mpirun` (Open MPI 4.1): `MPI_COMM_WORLD`.
///
/// - Setup: `MPI_Init_thread` asking for `MPI_THREAD_SERIALIZED` (any thread may call, one at a time: calls are
///   serialised by a lock here); the error handler of the world is `MPI_ERRORS_RETURN`, so a failing call
///   returns its code, which becomes a `CommunicatorError.mpi` naming the MPI function and the rank.
/// - Teardown: an `on_exit` handler runs when the process exits. Any status but 0 calls `MPI_Abort` (after
///   printing a line naming the rank), because `MPI_Finalize` waits for every rank and would hang while the
///   others sit in a collective waiting for this one. Status 0 meets the other ranks at a non-blocking barrier,
///   then calls `MPI_Finalize`; if they have not all arrived within `BERT_MPI_EXIT_TIMEOUT` seconds (default
///   120: a rank that returned early while the others still run collectives — measured: without this, such a
///   job hangs for ever in MPI_Finalize), it aborts the job naming the rank.
/// - Large buffers: one MPI call takes an `Int32` count, so buffers are processed in pieces of at most
///   `maxElementsPerCall` elements (default `Int32.max`). Reduce-scatter and all-gather fall back to one
///   `MPI_Reduce` / `MPI_Bcast` per slice piece when the whole buffer does not fit in one call.
///
/// Faults, as measured with Open MPI 4.1.4 under `mpirun -np 2 --bind-to none` on one machine (`bert comm-check
/// --fail-rank 1 --fail-mode …`, checked by `MPIIntegrationTests`; rank 0 is blocked in `MPI_Allreduce` when rank 1
/// fails). Times are from the fault to mpirun's exit.
/// - **A Swift error on a rank** (`throw`): the command catches it (`abortingOnError`) and calls `abort`, which
///   prints `bert: rank 1 of 2: <error>` and calls `MPI_Abort`; mpirun kills the other ranks and exits with
///   status 1 in 0.02–0.07 s. mpirun's own "MPI_ABORT was invoked on rank 1" banner is not reliable (Open MPI
///   4.1 sometimes loses it: "ORTE_ERROR_LOG: Data unpack would read past end of buffer … show_help.c"), so our
///   line, printed first, is what names the rank. An error that escapes to `exit(1)` takes the exit-handler path.
/// - **A rank exits non-zero** (`exit`, `exit(3)` anywhere): the exit handler prints `bert: rank 1 of 2: exiting
///   with status 3; aborting the MPI job` and calls `MPI_Abort(3)`: mpirun exits with status 3 in 0.02–0.05 s.
///   Without our handler (`_exit(3)`), Open MPI alone also ends the job: "mpirun detected that one or more
///   processes exited with non-zero status … Process name: [[job,1],1] Exit code: 3", status 3, in ≈ 1.05 s.
/// - **A rank is killed** (`kill`, SIGKILL, the OOM killer): no code of ours runs. mpirun prints "mpirun noticed
///   that process rank 1 with PID … exited on signal 9 (Killed)", kills the rest and exits with status 137 in
///   ≈ 1.05 s. The second is Open MPI's `odls_base_sigkill_timeout` (default 1): it waits that long before it
///   SIGKILLs the survivors; `--mca odls_base_sigkill_timeout 0` brings it to ≈ 0.05 s.
/// - **A rank exits with status 0 early** (`exit0`) while the others still run collectives: a plain
///   `MPI_Finalize` would hang every rank for ever (measured). The exit barrier's time limit (`BERT_MPI_EXIT_TIMEOUT`)
///   turns it into an abort naming the rank: status 1, the limit plus ≈ 0.05 s.
/// In no case did a surviving rank hang or see an MPI error first: mpirun kills it inside its `MPI_Allreduce`.
/// - **A rank stops without dying** (a hung read, a sleeping process): mpirun sees nothing. With a
///   `collectiveTimeout`, every collective first passes an `MPIArrivalGate`, which throws `stalled` naming the ranks
///   that did not arrive in time; the command aborts the job with that line.
public final class MPICommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    /// The thread support level MPI granted (`MPI_THREAD_*`).
    public let threadLevel: Int32
    private let comm: MPI_Comm
    private let lock = NSLock()
    private let gate: MPIArrivalGate
    /// Seconds to wait at a collective for every rank (0: for ever, and no arrival notices are exchanged).
    public var collectiveTimeout: Double {
        get { lock.lock(); defer { lock.unlock() }; return _collectiveTimeout }
        set { lock.lock(); defer { lock.unlock() }; _collectiveTimeout = max(0, newValue) }
    }
    private var _collectiveTimeout = 0.0
    private var _maxElementsPerCall = Int(Int32.max)

    nonisolated(unsafe) private static var shared: MPICommunicator?
    private static let sharedLock = NSLock()

    /// `MPI_COMM_WORLD`, initialising MPI on first use (MPI can be initialised once per process).
    public static func world() throws -> MPICommunicator {
        sharedLock.lock()
        defer { sharedLock.unlock() }
        if let shared { return shared }
        let communicator = try MPICommunicator()
        shared = communicator
        return communicator
    }

    private init() throws {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized != 0 {
            throw CommunicatorError.invalidArgument(operation: "MPI_Init_thread", rank: -1, message: "MPI was already finalized")
        }
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        var provided: Int32 = swmpi_thread_serialized()
        if initialized == 0 {
            let code = MPI_Init_thread(nil, nil, swmpi_thread_serialized(), &provided)
            if code != swmpi_success() {
                throw CommunicatorError.mpi(operation: "MPI_Init_thread", rank: -1, code: code, message: Self.errorString(code))
            }
            _ = swmpi_on_exit { status, _ in MPICommunicator.processExiting(status: status) }
        } else {
            MPI_Query_thread(&provided)
        }
        comm = swmpi_comm_world()
        threadLevel = provided
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_set_errhandler(comm, swmpi_errors_return())
        MPI_Comm_rank(comm, &r)
        MPI_Comm_size(comm, &s)
        rank = Int(r)
        size = Int(s)
        gate = try MPIArrivalGate(world: swmpi_comm_world(), rank: Int(r), size: Int(s))
    }

    /// The most elements one MPI call moves (default `Int32.max`); smaller values exercise the chunked paths.
    public var maxElementsPerCall: Int {
        get { lock.lock(); defer { lock.unlock() }; return _maxElementsPerCall }
        set { lock.lock(); defer { lock.unlock() }; _maxElementsPerCall = max(1, min(newValue, Int(Int32.max))) }
    }

    private static func processExiting(status: Int32) {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        guard finalized == 0 else { return }
        if status == 0 {
            // MPI_Finalize waits for every rank. If this rank exits while the others still run collectives (a
            // rank that returns early), that wait never ends and neither do theirs: meet at a non-blocking
            // barrier first, and abort the job if the others do not arrive in time.
            var request: MPI_Request?
            if MPI_Ibarrier(swmpi_comm_world(), &request) == swmpi_success() {
                let limit = exitTimeout()
                let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(limit * 1e9)
                var done: Int32 = 0
                while MPI_Test(&request, &done, swmpi_status_ignore()) == swmpi_success() && done == 0 {
                    if DispatchTime.now().uptimeNanoseconds > deadline {
                        var r: Int32 = -1, s: Int32 = 0
                        MPI_Comm_rank(swmpi_comm_world(), &r)
                        MPI_Comm_size(swmpi_comm_world(), &s)
                        printRankMessage(rank: Int(r), size: Int(s), "exited (status 0) but the other ranks did not finish "
                            + "within \(limit) s (\(exitTimeoutVariable)); aborting the MPI job")
                        MPI_Abort(swmpi_comm_world(), 1)
                    }
                    usleep(1000)
                }
            }
            MPI_Finalize()
        } else {
            var r: Int32 = -1, s: Int32 = 0
            MPI_Comm_rank(swmpi_comm_world(), &r)
            MPI_Comm_size(swmpi_comm_world(), &s)
            printRankMessage(rank: Int(r), size: Int(s), "exiting with status \(status); aborting the MPI job")
            MPI_Abort(swmpi_comm_world(), status)
        }
    }

    /// The environment variable that sets how long (seconds) a rank exiting with status 0 waits for the others
    /// before aborting the job (default 120).
    public static let exitTimeoutVariable = "BERT_MPI_EXIT_TIMEOUT"

    static func exitTimeout() -> Double {
        ProcessInfo.processInfo.environment[exitTimeoutVariable].flatMap(Double.init).map { max(0, $0) } ?? 120
    }

    static func errorString(_ code: Int32) -> String {
        var chars = [CChar](repeating: 0, count: Int(swmpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &chars, &length)
        let bytes = chars.prefix(max(0, min(Int(length), chars.count))).map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Throws `CommunicatorError.mpi` naming `operation` and `rank` unless `code` is `MPI_SUCCESS`.
    static func check(_ code: Int32, _ operation: String, rank: Int) throws {
        guard code != swmpi_success() else { return }
        throw CommunicatorError.mpi(operation: operation, rank: rank, code: code, message: errorString(code))
    }

    private func check(_ code: Int32, _ operation: String) throws { try Self.check(code, operation, rank: rank) }

    /// Calls `body(offset, n)` for consecutive pieces of `0..<count`, each at most `maxElementsPerCall`.
    private func pieces(_ count: Int, _ body: (Int, Int32) throws -> Void) rethrows {
        var offset = 0
        while offset < count {
            let n = min(_maxElementsPerCall, count - offset)
            try body(offset, Int32(n))
            offset += n
        }
    }

    private func serialized<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Under the lock: waits at the arrival gate (with a timeout), then runs the collective `operation`.
    private func collective<T>(_ operation: String, _ body: () throws -> T) throws -> T {
        try serialized {
            if _collectiveTimeout > 0 && size > 1 { try gate.pass(operation, timeout: _collectiveTimeout) }
            return try body()
        }
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        try validate(count: count, operation: "allReduceSum")
        try collective("allReduceSum") {
            try pieces(count) { offset, n in
                try check(MPI_Allreduce(UnsafeRawPointer(swmpi_in_place()), buffer + offset, n, swmpi_float(), swmpi_sum(), comm),
                          "MPI_Allreduce")
            }
        }
    }

    public func allReduceSum(_ values: [Double]) throws -> [Double] {
        var result = values
        try collective("allReduceSum") {
            try result.withUnsafeMutableBufferPointer { buffer in
                try pieces(buffer.count) { offset, n in
                    try check(MPI_Allreduce(UnsafeRawPointer(swmpi_in_place()), buffer.baseAddress! + offset, n, swmpi_double(),
                                            swmpi_sum(), comm), "MPI_Allreduce")
                }
            }
        }
        return result
    }

    public func reduceScatterSum(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) throws {
        try validate(counts: counts, operation: "reduceScatterSum")
        let offsets = Communicators.offsets(counts)
        let total = counts.reduce(0, +)
        try collective("reduceScatterSum") {
            if total <= _maxElementsPerCall {
                var recvcounts = counts.map { Int32($0) }
                try check(MPI_Reduce_scatter(UnsafeRawPointer(swmpi_in_place()), buffer, &recvcounts, swmpi_float(), swmpi_sum(), comm),
                          "MPI_Reduce_scatter")
                // In place, MPI leaves rank r's sum at the start of the buffer: move it to the slice's offset.
                if offsets[rank] != 0 && counts[rank] > 0 {
                    memmove(buffer + offsets[rank], buffer, counts[rank] * MemoryLayout<Float>.stride)
                }
            } else {
                for owner in 0..<size {
                    try pieces(counts[owner]) { offset, n in
                        let piece = buffer + offsets[owner] + offset
                        let code = owner == rank
                            ? MPI_Reduce(UnsafeRawPointer(swmpi_in_place()), piece, n, swmpi_float(), swmpi_sum(), Int32(owner), comm)
                            : MPI_Reduce(UnsafeRawPointer(piece), nil, n, swmpi_float(), swmpi_sum(), Int32(owner), comm)
                        try check(code, "MPI_Reduce")
                    }
                }
            }
        }
    }

    public func allGather(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) throws {
        try validate(counts: counts, operation: "allGather")
        let offsets = Communicators.offsets(counts)
        let total = counts.reduce(0, +)
        try collective("allGather") {
            if total <= _maxElementsPerCall {
                var recvcounts = counts.map { Int32($0) }
                var displacements = offsets.map { Int32($0) }
                try check(MPI_Allgatherv(UnsafeRawPointer(swmpi_in_place()), 0, swmpi_float(), buffer, &recvcounts, &displacements,
                                         swmpi_float(), comm), "MPI_Allgatherv")
            } else {
                for owner in 0..<size {
                    try pieces(counts[owner]) { offset, n in
                        try check(MPI_Bcast(buffer + offsets[owner] + offset, n, swmpi_float(), Int32(owner), comm), "MPI_Bcast")
                    }
                }
            }
        }
    }

    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) throws {
        try validate(count: count, root: root, operation: "broadcast")
        try collective("broadcast") {
            try pieces(count) { offset, n in
                try check(MPI_Bcast(buffer + offset, n, swmpi_float(), Int32(root), comm), "MPI_Bcast")
            }
        }
    }

    public func broadcast(_ data: Data, root: Int) throws -> Data {
        try validate(count: 0, root: root, operation: "broadcast")
        return try collective("broadcast") {
            var length = Int64(rank == root ? data.count : 0)
            try check(MPI_Bcast(&length, 1, swmpi_int64(), Int32(root), comm), "MPI_Bcast")
            var bytes = rank == root ? [UInt8](data) : [UInt8](repeating: 0, count: Int(length))
            try bytes.withUnsafeMutableBytes { raw in
                try pieces(Int(length)) { offset, n in
                    try check(MPI_Bcast(raw.baseAddress! + offset, n, swmpi_byte(), Int32(root), comm), "MPI_Bcast")
                }
            }
            return Data(bytes)
        }
    }

    /// Makes one deliberately invalid call (`MPI_Bcast` of −1 elements, rejected by MPI's local argument checks
    /// before any communication, so the ranks need not agree) and returns the error it became: evidence that
    /// the world reports errors instead of aborting. Nil would mean the call succeeded.
    public func probeErrorReporting() -> CommunicatorError? {
        var value: Float = 0
        do {
            try serialized { try check(MPI_Bcast(&value, -1, swmpi_float(), 0, comm), "MPI_Bcast") }
            return nil
        } catch let error as CommunicatorError {
            return error
        } catch {
            return nil
        }
    }

    public func barrier() throws {
        try collective("barrier") { try check(MPI_Barrier(comm), "MPI_Barrier") }
    }

    /// Prints `bert: rank R of N: message` on standard error and calls `MPI_Abort(MPI_COMM_WORLD, 1)`: mpirun
    /// kills every rank and exits non-zero. Does not take the lock (another thread may be blocked in a call).
    public func abort(_ message: String) -> Never {
        printRankMessage(rank: rank, size: size, message)
        MPI_Abort(comm, 1)
        exit(1)
    }
}
