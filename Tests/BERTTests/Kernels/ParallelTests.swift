@testable import BERTKernels
import CThreadPool
import Foundation
import Testing

/// The kernels' fork-join pool (`thread_pool.c`): every chunk of a job runs exactly once and on no more threads than
/// asked, jobs in quick succession never mix (a worker late for one job must not run the next one's chunks with the
/// old body), and a job submitted while another is in flight — nested in a chunk, or from a second thread — is
/// refused by the pool and still runs through `Parallel.forChunks`.
@Suite(.timeLimit(.minutes(2))) struct ParallelTests {
    /// What a pooled job's chunks record, under a lock.
    final class Record: @unchecked Sendable {
        let lock = NSLock()
        var runs: [Int]
        var threads = Set<UInt>()
        let body: (Int) -> Void

        init(chunks: Int, body: @escaping (Int) -> Void = { _ in }) {
            (runs, self.body) = ([Int](repeating: 0, count: chunks), body)
        }

        func ran(_ chunk: Int) {
            body(chunk)
            lock.withLock {
                runs[chunk] += 1
                threads.insert(UInt(pthread_self()))
            }
        }
    }

    /// Runs a job on the pool itself, waiting while another test's job holds it.
    static func pooled(_ record: Record, threads: Int) {
        let context = Unmanaged.passUnretained(record).toOpaque()
        while tp_run(record.runs.count, Int32(threads), { context, chunk in
            Unmanaged<Record>.fromOpaque(context!).takeUnretainedValue().ran(chunk)
        }, context) == 0 {
            usleep(100)
        }
    }

    @Test(arguments: [4, 2, 3, 1])
    func everyChunkRunsOnceOnAtMostTheThreadsAsked(threads: Int) {
        // Enough work per chunk that every worker asked has time to take some.
        let record = Record(chunks: 400) { _ in
            var x: Float = 1
            for i in 0..<2_000 { x = x * 0.999 + Float(i) }
            precondition(x.isFinite)
        }
        Self.pooled(record, threads: threads)
        #expect(record.runs == [Int](repeating: 1, count: 400))
        #expect(record.threads.count <= threads)
    }

    @Test func jobsInQuickSuccessionNeverMix() {
        for job in 0..<20_000 {
            let chunks = 1 + job % 5
            let record = Record(chunks: chunks)
            Self.pooled(record, threads: 2 + job % 2)
            guard record.runs == [Int](repeating: 1, count: chunks) else {
                Issue.record("job \(job): chunks ran \(record.runs) times")
                return
            }
        }
    }

    @Test func aNestedJobIsRefusedByThePoolAndRunsAnyway() {
        let inner = Record(chunks: 8), accepted = Record(chunks: 3)
        let outer = Record(chunks: 3) { chunk in
            if tp_run(4, 2, { _, _ in }, nil) != 0 { accepted.ran(chunk) }
            Parallel.forChunks(8, minimumChunk: 1) { _, range in range.forEach(inner.ran) }
        }
        Self.pooled(outer, threads: 2)
        #expect(accepted.runs == [0, 0, 0])
        #expect(outer.runs == [1, 1, 1])
        #expect(inner.runs.allSatisfy { $0 == 3 })
    }

    /// Ranks of one MPI job on one machine share its cores instead of each taking all of them.
    @Test func ranksOnOneMachineShareItsCores() {
        #expect(Parallel.defaultThreadCount(environment: [:], cores: 8) == 8)
        #expect(Parallel.defaultThreadCount(environment: ["OMPI_COMM_WORLD_LOCAL_SIZE": "2"], cores: 8) == 4)
        #expect(Parallel.defaultThreadCount(environment: ["OMPI_COMM_WORLD_LOCAL_SIZE": "3"], cores: 8) == 2)
        #expect(Parallel.defaultThreadCount(environment: ["MPI_LOCALNRANKS": "16"], cores: 8) == 1)
        #expect(Parallel.defaultThreadCount(environment: ["OMPI_COMM_WORLD_LOCAL_SIZE": "x"], cores: 8) == 8)
        #expect(Parallel.defaultThreadCount(environment: ["OMPI_COMM_WORLD_LOCAL_SIZE": "0"], cores: 8) == 8)
    }

    @Test func concurrentSubmittersEachGetEveryChunk() {
        let submitters = 4, jobs = 300
        let failures = Record(chunks: submitters)
        DispatchQueue.concurrentPerform(iterations: submitters) { submitter in
            for _ in 0..<jobs {
                let record = Record(chunks: 16)
                Parallel.forChunks(16) { _, range in range.forEach(record.ran) }
                if record.runs != [Int](repeating: 1, count: 16) { failures.ran(submitter) }
            }
        }
        #expect(failures.runs == [Int](repeating: 0, count: submitters))
    }
}
