import Foundation
import Testing

/// `mpirun -np N bert comm-check` on this machine: the collectives under real Open MPI, and what happens to the
/// job when one rank fails. Skipped (with a note) when mpirun or the debug binary is absent.
@Suite(.serialized) struct MPIIntegrationTests {
    static let binary = packageRoot + "/.build/debug/bert"
    static let mpirun: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/mpirun" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()
    static let available: Bool = {
        if mpirun == nil { print("note: mpirun is not on PATH; MPI integration tests skipped (apt-get install openmpi-bin)") }
        else if !FileManager.default.isExecutableFile(atPath: binary) {
            print("note: \(binary) is absent (run `swift build --build-tests`); MPI integration tests skipped")
        }
        return mpirun != nil && FileManager.default.isExecutableFile(atPath: binary)
    }()

    struct Outcome {
        let status: Int32
        let seconds: Double
        /// When mpirun ended, in seconds since 1970.
        let endedAt: Double
        let stdout: String
        let stderr: String
        var output: String { stdout + stderr }
        /// The JSON object rank 0 printed.
        var report: [String: Any]? {
            guard let line = stdout.split(separator: "\n").last(where: { $0.hasPrefix("{") }) else { return nil }
            return try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        }
    }

    static func mpirunCommCheck(ranks: Int, _ arguments: [String], environment extra: [String: String] = [:],
                                limit: Double = 60) throws -> Outcome {
        try mpirunBert(ranks: ranks, ["comm-check"] + arguments, environment: extra, limit: limit)
    }

    /// Runs `mpirun -np ranks … bert arguments`, output to files (a pipe could be held open by an orphaned rank),
    /// killing it after `limit` seconds.
    static func mpirunBert(ranks: Int, _ arguments: [String], environment extra: [String: String] = [:],
                           limit: Double = 60) throws -> Outcome {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mpi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out"), err = dir.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: mpirun!)
        process.arguments = ["-np", "\(ranks)", "--bind-to", "none", "--allow-run-as-root", "--oversubscribe"]
            + extra.keys.sorted().flatMap { ["-x", $0] } + [binary] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        environment.merge(extra) { $1 }
        process.environment = environment
        let outHandle = try FileHandle(forWritingTo: out), errHandle = try FileHandle(forWritingTo: err)
        process.standardOutput = outHandle
        process.standardError = errHandle
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        let start = Date()
        try process.run()
        if finished.wait(timeout: .now() + limit) == .timedOut {
            process.terminate()
            _ = finished.wait(timeout: .now() + 10)
        }
        let seconds = Date().timeIntervalSince(start), endedAt = Date().timeIntervalSince1970
        try outHandle.close()
        try errHandle.close()
        return Outcome(status: process.isRunning ? -1 : process.terminationStatus, seconds: seconds, endedAt: endedAt,
                       stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                       stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }

    @Test(.enabled(if: available)) func twoRanksPassEveryCheck() throws {
        let run = try Self.mpirunCommCheck(ranks: 2, ["--count", "100003", "--iterations", "2"])
        #expect(run.status == 0, "\(run.output)")
        let report = try #require(run.report, "\(run.output)")
        #expect(report["ok"] as? Bool == true && report["world_size"] as? Int == 2 && report["communicator"] as? String == "mpi")
        #expect(report["failed_checks"] as? Int == 0)
        // MPI_ERRORS_RETURN: an invalid call came back as a Swift error naming the call and the rank.
        #expect(report["error_reporting"] as? String == "MPI_Bcast failed on rank 0 (MPI error 2): MPI_ERR_COUNT: invalid count argument")
        for operation in ["allreduce", "reduce_scatter", "allgather"] {
            #expect(((report[operation] as? [String: Any])?["ms"] as? Double ?? -1) > 0, "\(operation)")
        }
    }

    /// Three ranks (uneven slices) with at most 1000 elements per MPI call: the chunked paths, including the
    /// per-slice fallbacks of reduce-scatter and all-gather and the chunked broadcast of Data.
    @Test(.enabled(if: available)) func chunkedCallsAtThreeRanks() throws {
        let run = try Self.mpirunCommCheck(ranks: 3, ["--count", "20011", "--iterations", "1", "--warmup", "0",
                                                      "--chunk-elements", "1000"])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.report?["ok"] as? Bool == true && run.report?["world_size"] as? Int == 3, "\(run.output)")
    }

    @Test(.enabled(if: available)) func differingSettingsStopEveryRank() throws {
        let run = try Self.mpirunCommCheck(ranks: 2, ["--count", "1000", "--mismatch-rank", "1"])
        #expect(run.status != 0)
        let message = #"settings differ between ranks: "count" is "1000" on rank 0 but "1001" on rank 1"#
        #expect(run.stderr.contains("bert: rank 0 of 2: " + message) || run.stderr.contains("bert: rank 1 of 2: " + message),
                "\(run.output)")
    }

    /// A fault on rank 1 while rank 0 waits in an all-reduce: mpirun must exit non-zero within 30 s, and its
    /// output must name rank 1. `_exit` skips our exit handler (what Open MPI alone does on a non-zero exit);
    /// `exit0` is a rank that exits with status 0 while the other still waits (without the exit barrier's time
    /// limit, here 3 s, the job would hang in MPI_Finalize).
    @Test(.enabled(if: available), arguments: ["exit", "throw", "kill", "_exit", "exit0"])
    func aFailingRankEndsTheJob(mode: String) throws {
        let run = try Self.mpirunCommCheck(ranks: 2, ["--count", "100000", "--fail-rank", "1", "--fail-mode", mode],
                                           environment: ["BERT_MPI_EXIT_TIMEOUT": "3"], limit: 45)
        #expect(run.status != 0 && run.status != -1, "\(run.output)")
        #expect(run.seconds < 30, "mpirun took \(run.seconds) s")
        #expect(run.report == nil, "rank 0 must not report success: \(run.output)")
        // What names the rank: our abort line, or mpirun's own report of the dead process. (mpirun's "MPI_ABORT
        // was invoked on rank 1" banner is not reliable: Open MPI 4.1 sometimes loses it with "ORTE_ERROR_LOG: Data
        // unpack would read past end of buffer in file …/show_help.c", so the line we print first is what counts.)
        let naming: [String] = switch mode {
        case "throw": ["bert: rank 1 of 2: injected fault on rank 1"]
        case "exit": ["bert: rank 1 of 2: exiting with status 3; aborting the MPI job"]
        case "kill": ["mpirun noticed that process rank 1"]
        case "exit0": ["bert: rank 1 of 2: exited (status 0) but the other ranks did not finish within 3.0 s"]
        default: ["Process name: [[", ",1]\n  Exit code:    3"]
        }
        for text in naming { #expect(run.output.contains(text), "missing \"\(text)\" in:\n\(run.output)") }
        if let injected = run.stderr.range(of: "at unix time ") {
            let stamp = Double(run.stderr[injected.upperBound...].prefix { $0 != "\n" }) ?? 0
            print("comm-check fault \(mode): mpirun exited with status \(run.status) after \(String(format: "%.2f", run.seconds)) s, "
                  + "\(String(format: "%.2f", run.endedAt - stamp)) s after the fault")
        }
    }
}
