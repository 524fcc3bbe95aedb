import CBLAS
import CThreadPool
import Dispatch
import Foundation

/// How the kernels use the cores: one fork-join pool for everything, BLAS included — BLAS itself always runs
/// single-threaded inside our chunks (see `GEMM`). Two pools on the same cores oversubscribe them (≈ 20 % lost,
/// measured on 2 cores).
///
/// The pool is ours (`thread_pool.c`): its workers spin for 0.1 ms after a job before they sleep, so the next kernel's
/// fork-join finds them awake. Dispatch's workers slept between kernels, and waking one cost tens of microseconds on a
/// virtual machine, dozens of times a forward. A job submitted while another is in flight (a second thread running
/// a model, or a nested call) runs on Dispatch's pool as before.
public enum Parallel {
    nonisolated(unsafe) private static var threads: Int = {
        openblas_set_num_threads(1)
        return defaultThreadCount()
    }()

    /// The number of threads kernels split work over (and BLAS uses). Defaults to `defaultThreadCount()`.
    public static var threadCount: Int { threads }

    /// The active cores, shared among the ranks of an MPI job that run on this machine (Open MPI's
    /// `OMPI_COMM_WORLD_LOCAL_SIZE`, MPICH's `MPI_LOCALNRANKS`): `mpirun -np 8` on one 8-core machine gives each rank
    /// one thread, not eight — eight pools spinning against each other on the same cores would each wait for the rest.
    static func defaultThreadCount(environment: [String: String] = ProcessInfo.processInfo.environment,
                                   cores: Int = ProcessInfo.processInfo.activeProcessorCount) -> Int {
        let ranksHere = ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"].lazy
            .compactMap { environment[$0].flatMap { Int($0) } }.first { $0 > 0 } ?? 1
        return max(1, cores / ranksHere)
    }

    /// Sets the thread count for the kernels. Call it before any kernel runs or workspace is planned (it is not
    /// synchronised with kernels in flight, and per-thread scratch is sized by it).
    public static func setThreadCount(_ count: Int) {
        openblas_set_num_threads(1)
        threads = max(1, count)
    }

    /// Splits `0..<count` into at most `threadCount` contiguous chunks (each at least `minimumChunk` items, except
    /// when there is less work than that) and runs `body(chunkIndex, range)` on them concurrently. Chunk indices are
    /// dense from 0, so a body may use them to pick per-thread scratch space.
    public static func forChunks(_ count: Int, minimumChunk: Int = 1, _ body: (Int, Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = max(1, min(threads, count / max(1, minimumChunk)))
        if chunks == 1 { body(0, 0..<count); return }
        withoutActuallyEscaping(body) { body in
            var run: (Int) -> Void = { chunk in body(chunk, (count * chunk / chunks)..<(count * (chunk + 1) / chunks)) }
            let pooled = withUnsafeMutablePointer(to: &run) { run in
                tp_run(chunks, Int32(threads), { context, chunk in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(chunk)
                }, run) != 0
            }
            guard !pooled else { return }
            nonisolated(unsafe) let work = run
            DispatchQueue.concurrentPerform(iterations: chunks) { work($0) }
        }
    }
}
