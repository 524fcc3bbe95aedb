import ArgumentParser
import BERT
import Foundation

struct CommCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "comm-check",
        abstract: "Check and time the collectives (run under mpirun); rank 0 prints one JSON object.",
        discussion: """
        Every rank fills buffers with rank-dependent integers (exact in Float), runs all-reduce, reduce-scatter, \
        all-gather, both broadcasts, the Double all-reduce, a barrier and the settings consistency check, and \
        verifies every element. Then it times all-reduce, reduce-scatter and all-gather of --count floats \
        (ms: median of --iterations after --warmup, min_ms: the fastest; rank 0's clock, each after a barrier). algbw_gbps is bytes/time for the whole buffer; busbw_gbps scales \
        it as nccl-tests do (all-reduce 2(n-1)/n, reduce-scatter and all-gather (n-1)/n). Without mpirun it runs \
        as a world of one. --fail-rank/--fail-mode inject a fault on one rank while the others wait in a \
        collective: exit (exit(3)), throw (a Swift error), kill (SIGKILL), _exit (exit(3) skipping exit \
        handlers, to see what Open MPI alone does) or exit0 (exit(0): a rank that stops early; see \
        BERT_MPI_EXIT_TIMEOUT).
        """)

    @Option(help: "Floats per collective.")
    var count = 1 << 20
    @Option(parsing: .unconditional, help: "Timed repetitions of each collective.")
    var iterations = 5
    @Option(parsing: .unconditional, help: "Untimed repetitions first.")
    var warmup = 1
    @Option(parsing: .unconditional, help: "Most elements per MPI call (default Int32.max); small values exercise the chunked paths.")
    var chunkElements: Int?
    @Option(parsing: .unconditional, help: "Rank on which to inject a fault.")
    var failRank: Int?
    @Option(help: "How the fault rank fails: exit, throw, kill, _exit or exit0.")
    var failMode = "throw"
    @Option(parsing: .unconditional, help: "Rank whose settings differ from the others' (the consistency check must fail on every rank).")
    var mismatchRank: Int?
    @Option(parsing: .unconditional, help: "As bert pretrain's: seconds a rank waits at a collective before the job stops naming the missing ranks (0: for ever, without arrival notices).")
    var collectiveTimeout = 600.0

    struct CheckFailure: Error, CustomStringConvertible { let description: String }

    func run() throws {
        guard count >= 0, iterations > 0, warmup >= 0, collectiveTimeout >= 0 else {
            throw ValidationError("--count, --warmup and --collective-timeout must be non-negative, --iterations positive")
        }
        guard ["exit", "throw", "kill", "_exit", "exit0"].contains(failMode) else {
            throw ValidationError("--fail-mode must be exit, throw, kill, _exit or exit0, got \(failMode)")
        }
        let communicator = try Communicators.detect()
        if let chunkElements, let mpi = communicator as? MPICommunicator { mpi.maxElementsPerCall = chunkElements }
        communicator.collectiveTimeout = collectiveTimeout
        let report = communicator.abortingOnError { try check(communicator) }
        if communicator.rank == 0 { print(report) }
        if !report.contains(#""ok":true"#) { throw ExitCode.failure }
    }

    /// Rank `owner`'s value at index `i`: small integers, so every sum is exact in Float.
    static func value(_ owner: Int, _ i: Int) -> Float { Float((i % 1000 + 1) * (owner + 1)) }

    func check(_ comm: any Communicator) throws -> String {
        let (rank, size) = (comm.rank, comm.size)
        var fields = ["count": String(count), "world_size": String(size), "iterations": String(iterations)]
        if rank == mismatchRank { fields["count"] = String(count + 1) }
        try comm.consistencyCheck(fields)

        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        defer { buffer.deallocate() }
        let rankSum = Float(size * (size + 1) / 2)
        var failures: [String] = []
        func expect(_ name: String, _ range: Range<Int>, _ expected: (Int) -> Float) {
            if let bad = range.first(where: { buffer[$0] != expected($0) }) {
                failures.append("\(name): rank \(rank) element \(bad) is \(buffer[bad]), expected \(expected(bad))")
            }
        }
        let counts = Communicators.evenCounts(total: count, size: size)
        let offsets = Communicators.offsets(counts)
        let mine = offsets[rank]..<(offsets[rank] + counts[rank])

        for i in 0..<count { buffer[i] = Self.value(rank, i) }
        try comm.allReduceSum(buffer, count: count)
        expect("allreduce", 0..<count) { Self.value(0, $0) * rankSum }

        for i in 0..<count { buffer[i] = Self.value(rank, i) }
        try comm.reduceScatterSum(buffer, counts: counts)
        expect("reduce_scatter", mine) { Self.value(0, $0) * rankSum }

        for i in 0..<count { buffer[i] = mine.contains(i) ? Self.value(rank, i) : -1 }
        try comm.allGather(buffer, counts: counts)
        for owner in 0..<size {
            expect("allgather", offsets[owner]..<(offsets[owner] + counts[owner])) { Self.value(owner, $0) }
        }

        let root = size - 1
        for i in 0..<count { buffer[i] = rank == root ? Self.value(root, i) : 0 }
        try comm.broadcast(buffer, count: count, root: root)
        expect("broadcast", 0..<count) { Self.value(root, $0) }

        for dataRoot in (root == 0 ? [0] : [0, root]) {  // the same order on every rank (a Set's order is per process)
            let payload = Data("rank \(dataRoot) says hello ".utf8) + Data((0..<(count % 5000)).map { UInt8(truncatingIfNeeded: $0) })
            let received = try comm.broadcast(rank == dataRoot ? payload : Data("ignored".utf8), root: dataRoot)
            if received != payload { failures.append("broadcast(Data) from \(dataRoot): rank \(rank) received \(received.count) bytes") }
        }

        let sums = try comm.allReduceSum([Double(rank), 1, 0.25])
        let expectedSums = [Double(size * (size - 1) / 2), Double(size), 0.25 * Double(size)]
        if sums != expectedSums { failures.append("allreduce(Double): rank \(rank) got \(sums), expected \(expectedSums)") }
        try comm.barrier()

        // Errors are returned, not fatal: a deliberately invalid call must come back as a Swift error.
        var errorReporting = "n/a"
        if let mpi = comm as? MPICommunicator {
            if let error = mpi.probeErrorReporting() { errorReporting = "\(error)" }
            else { failures.append("an invalid MPI_Bcast on rank \(rank) did not report an error") }
        }

        let failed = try comm.allReduceSum([Double(failures.count)])[0]
        for failure in failures { FileHandle.standardError.write(Data("comm-check: \(failure)\n".utf8)) }

        // Timing. The fault, if asked for, strikes here: the other ranks are waiting in an all-reduce.
        func time(_ operation: () throws -> Void) throws -> (median: Double, min: Double) {
            var seconds: [Double] = []
            for iteration in 0..<(warmup + iterations) {
                try comm.barrier()
                let start = DispatchTime.now().uptimeNanoseconds
                try operation()
                if iteration >= warmup { seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
            }
            return (seconds.sorted()[seconds.count / 2], seconds.min()!)
        }
        if rank == failRank { try injectFault(rank: rank) }
        for i in 0..<count { buffer[i] = Self.value(rank, i) }
        let allReduce = try time { try comm.allReduceSum(buffer, count: count) }
        let reduceScatter = try time { try comm.reduceScatterSum(buffer, counts: counts) }
        let allGather = try time { try comm.allGather(buffer, counts: counts) }

        let bytes = Double(count * MemoryLayout<Float>.stride)
        let n = Double(size)
        func entry(_ seconds: (median: Double, min: Double), _ busFactor: Double) -> [String: Any] {
            let algbw = seconds.median > 0 ? bytes / seconds.median / 1e9 : 0
            return ["ms": seconds.median * 1000, "min_ms": seconds.min * 1000, "algbw_gbps": algbw, "busbw_gbps": algbw * busFactor]
        }
        let report: [String: Any] = [
            "world_size": size, "ok": failed == 0, "communicator": comm is MPICommunicator ? "mpi" : "single",
            "count": count, "bytes": count * MemoryLayout<Float>.stride, "iterations": iterations,
            "allreduce": entry(allReduce, size > 1 ? 2 * (n - 1) / n : 1),
            "reduce_scatter": entry(reduceScatter, size > 1 ? (n - 1) / n : 1),
            "allgather": entry(allGather, size > 1 ? (n - 1) / n : 1),
            "failed_checks": Int(failed), "error_reporting": errorReporting,
            "mpi_thread_level": (comm as? MPICommunicator).map { Int($0.threadLevel) } ?? -1,
        ]
        let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
        return String(decoding: json, as: UTF8.self)
    }

    func injectFault(rank: Int) throws {
        let now = String(format: "%.3f", Date().timeIntervalSince1970)
        FileHandle.standardError.write(Data("comm-check: rank \(rank): injecting fault: \(failMode) at unix time \(now)\n".utf8))
        switch failMode {
        case "exit": Foundation.exit(3)
        case "_exit": _exit(3)
        case "exit0": Foundation.exit(0)
        case "kill":
            kill(getpid(), SIGKILL)
            while true { pause() }
        default: throw CheckFailure(description: "injected fault on rank \(rank)")
        }
    }
}
