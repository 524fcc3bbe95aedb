import BERTKernels
import Foundation
import Testing

@Suite struct BLASCoreTests {
    @Test func anOldFamilyOnANewCPUIsReplaced() {
        #expect(BLASCore.better(than: "Prescott", isa: 2) == "SkylakeX")   // Emerald Rapids under OpenBLAS 0.3.21
        #expect(BLASCore.better(than: "Sandybridge", isa: 1) == "Haswell")
        #expect(BLASCore.better(than: "Prescott", isa: 0) == nil)           // an SSE-only CPU: nothing better to ask for
    }

    @Test func aModernFamilyIsKept() {
        for core in ["Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"] {
            #expect(BLASCore.better(than: core, isa: 2) == nil, "\(core)")
        }
    }

    /// `bert` ends OpenBLAS's spinning workers first thing; OpenBLAS must still multiply right afterwards (on the
    /// calling thread, as our GEMMs call it), and a second stop must be harmless.
    @Test func openBLASStillMultipliesAfterItsWorkersStop() {
        BLASCore.stopIdleWorkers()
        BLASCore.stopIdleWorkers()
        let M = 37, N = 29, K = 41
        let a = (0..<(M * K)).map { Float(($0 * 7) % 13) - 6 }, b = (0..<(K * N)).map { Float(($0 * 5) % 11) - 5 }
        var c = [Float](repeating: 0, count: M * N)
        GEMM.multiply(transposeA: false, transposeB: false, M: M, N: N, K: K, A: a, lda: K, B: b, ldb: N, beta: 0,
                      C: &c, ldc: N, engine: .openblas)
        for i in 0..<M {
            for j in 0..<N {
                let exact = (0..<K).reduce(Float(0)) { $0 + a[i * K + $1] * b[$1 * N + j] }   // small integers: exact
                #expect(c[i * N + j] == exact, "C[\(i), \(j)]")
            }
        }
    }

    /// With OpenBLAS running the GEMMs the program restarts itself onto its fast kernels, and leaves a user's own
    /// choice alone; the default library (oneDNN on AVX-512 CPUs) reports itself. A `BERT_GEMM` or
    /// `OPENBLAS_CORETYPE` the suite itself runs under (`scripts/avx2-suite.sh`) is such a choice.
    @Test(.enabled(if: BertProgram.present)) func theProgramRunsOnTheFastKernels() throws {
        let args = ["bench", "--model", "bert-tiny", "--seq-len", "16", "--batch", "2", "--mode", "infer", "--steps", "1", "--warmup", "0"]
        let byDefault = try BertProgram.run(args)
        let library = GEMM.Engine.selected.rawValue
        #expect(library == ProcessInfo.processInfo.environment["BERT_GEMM"] ?? (BLASCore.cpuVectorISA == 2 ? "onednn" : "openblas"))
        #expect(byDefault.out.contains("\"gemm\":\"\(library)\""), "\(byDefault.out) \(byDefault.err)")
        let fast = try BertProgram.run(args, environment: ["BERT_GEMM": "openblas"])
        #expect(fast.status == 0, "\(fast.err)")
        let report = try JSONSerialization.jsonObject(with: Data(fast.out.utf8)) as? [String: Any]
        let core = try #require(report?["blas_core"] as? String)
        switch (ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"], BLASCore.cpuVectorISA) {
        case (let chosen?, _): #expect(core.lowercased() == chosen.lowercased(), "\(core) against \(chosen)")
        case (nil, 2): #expect(["SkylakeX", "Cooperlake", "SapphireRapids"].contains(core), "\(core)")
        case (nil, 1): #expect(BLASCore.better(than: core, isa: 1) == nil, "\(core)")
        default: break
        }
        let chosen = try BertProgram.run(args, environment: ["BERT_GEMM": "openblas", "OPENBLAS_CORETYPE": "Prescott"])
        #expect(chosen.out.contains("\"blas_core\":\"Prescott\""), "\(chosen.out)")
        let misspelt = try BertProgram.run(args, environment: ["BERT_GEMM": "mkl"])
        #expect(misspelt.status == 2 && misspelt.err == "bert: BERT_GEMM=mkl names no GEMM library; use onednn or openblas\n",
                "\(misspelt.status) \(misspelt.err)")
    }
}
