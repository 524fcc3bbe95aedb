import CBLAS
import Dispatch
import Foundation

/// How the kernels use the cores.
///
/// The rule measured on this kind of machine: either one thread calls BLAS with BLAS threads = cores, or several
/// threads each call BLAS single-threaded — never both (oversubscription costs ≈ 20 %). Large GEMMs are called
/// from one thread; kernels that split work over threads and call BLAS inside (attention's per-head products)
/// use `forChunksCallingBLAS`, which drops BLAS to one thread for the duration.
public enum Parallel {
    nonisolated(unsafe) private static var threads = ProcessInfo.processInfo.activeProcessorCount

    /// The number of threads kernels split work over (and BLAS uses). Defaults to the active cores.
    public static var threadCount: Int { threads }

    /// Sets the thread count for the kernels and for BLAS. Call it before any kernel runs (it is not
    /// synchronised with kernels in flight).
    public static func setThreadCount(_ count: Int) {
        threads = max(1, count)
        openblas_set_num_threads(Int32(threads))
    }

    /// Splits `0..<count` into at most `threadCount` contiguous chunks (each at least `minimumChunk` items, except
    /// when there is less work than that) and runs `body(chunkIndex, range)` on them concurrently. Chunk indices are
    /// dense from 0, so a body may use them to pick per-thread scratch space.
    public static func forChunks(_ count: Int, minimumChunk: Int = 1, _ body: (Int, Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = max(1, min(threads, count / max(1, minimumChunk)))
        if chunks == 1 { body(0, 0..<count); return }
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let work = body
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                work(chunk, (count * chunk / chunks)..<(count * (chunk + 1) / chunks))
            }
        }
    }

    /// `forChunks` for bodies that call BLAS themselves: BLAS runs single-threaded meanwhile.
    public static func forChunksCallingBLAS(_ count: Int, _ body: (Int, Range<Int>) -> Void) {
        guard threads > 1 else { body(0, 0..<count); return }
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(Int32(threads)) }
        forChunks(count, body)
    }
}
