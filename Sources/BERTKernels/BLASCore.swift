import CBLAS
import Foundation

/// Which of OpenBLAS's kernel families runs our GEMMs. OpenBLAS picks one once, as it loads, from the CPU's model
/// number; a CPU newer than the library is not recognised and gets its oldest x86-64 kernels. Debian bookworm's
/// 0.3.21 calls an Emerald Rapids Xeon (family 6, model 207) "Prescott": SSE3 kernels, 33 GFLOP/s on two cores where
/// the SkylakeX kernels reach 190 — every training step 4× slower. Only the environment variable
/// `OPENBLAS_CORETYPE`, read at that load, overrides the choice, so the fix is to set it and start the program again.
public enum BLASCore {
    /// The kernel family OpenBLAS chose in this process, e.g. "Haswell", "SkylakeX", "Prescott".
    public static var name: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// The widest vector ISA of this CPU: 2 for AVX-512, 1 for AVX2 with FMA, 0 for older (see `bert_cpu_vector_isa`).
    public static var cpuVectorISA: Int32 { bert_cpu_vector_isa() }

    /// The families that already use the CPU's widest vectors (the Zen ones are Haswell's kernels).
    static let modern: Set<String> = ["haswell", "zen", "skylakex", "cooperlake", "sapphirerapids"]

    /// The family to ask for instead of `loaded` on a CPU of `isa` (as `cpuVectorISA`), or nil to keep it.
    public static func better(than loaded: String, isa: Int32) -> String? {
        guard !modern.contains(loaded.lowercased()) else { return nil }
        switch isa {
        case 2: return "SkylakeX"
        case 1: return "Haswell"
        default: return nil
        }
    }

    /// Starts this program again with `OPENBLAS_CORETYPE` naming the fast kernels when OpenBLAS chose slow ones for
    /// this CPU. Call it first thing in `main`, before any thread or file exists. A user's own `OPENBLAS_CORETYPE` is
    /// left alone, and so the restarted program never restarts again. Returns (keeping the slow kernels) when the
    /// restart cannot be done.
    public static func restartWithFastKernelsIfNeeded() {
        guard getenv("OPENBLAS_CORETYPE") == nil, let core = better(than: name, isa: cpuVectorISA) else { return }
        // The program's own path, not /proc/self/exe, so that it keeps its name in `ps` and `top`.
        guard let path = realpath("/proc/self/exe", nil) else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        execv(path, CommandLine.unsafeArgv)
        free(path)
        unsetenv("OPENBLAS_CORETYPE")   // the restart failed: carry on as we are
    }

    /// Ends the worker threads OpenBLAS starts as it loads, before `main`: one per extra core, each spinning on
    /// `sched_yield` for about 2^28 cycles (≈ 0.1 s) before it sleeps, waiting for work that never comes, since
    /// BLAS runs single-threaded inside our own pool (`Parallel`). On 2 cores that spinner took 0.08 s of CPU from
    /// a 0.3 s `bert prepare` (`perf`: a fifth of the samples were `sched_yield`). OpenBLAS starts its workers
    /// again by itself if it is ever asked for more than one thread (what its fork handler relies on). The function
    /// is looked up at run time: a BLAS without it (another build of OpenBLAS) is left as it is.
    public static func stopIdleWorkers() {
        typealias Shutdown = @convention(c) () -> Int32
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "blas_thread_shutdown_") else { return }
        _ = unsafeBitCast(symbol, to: Shutdown.self)()
    }
}
