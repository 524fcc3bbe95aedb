import Foundation
import Testing
@testable import BERT

/// `mpirun -np 2 bert pretrain` on this machine against one process with the same global batch: DDP, ZeRO-1 and
/// ZeRO-2 with LAMB and LANS end within 1e-6 of the single-process weights; a ZeRO run resumes at another world
/// size; a rank killed mid-training takes the job down within 30 s and leaves the last checkpoint intact.
@Suite(.serialized, .enabled(if: MPIIntegrationTests.available && BertProgram.present))
struct DistributedPretrainTests {
    /// The flags shared by every run: global batch 16 of micro-batches of 8, 1 thread per process (nil: the default).
    static func flags(_ output: String, optimizer: String, steps: Int, accumulation: Int, extra: [String] = [],
                      threads: Int? = 1) -> [String] {
        let w = PretrainCommandTests.workspace
        return ["pretrain", "--input-dir", w + "/shards", "--output-dir", output, "--config-file", w + "/bert_config.json",
                "--max-seq-length", "32", "--max-predictions-per-seq", "5", "--train-batch-size", "16",
                "--gradient-accumulation-steps", "\(accumulation)", "--learning-rate", "5e-2", "--warmup-proportion", "0.2",
                "--max-steps", "\(steps)", "--num-steps-per-checkpoint", "2", "--keep-checkpoints", "10",
                "--optimizer", optimizer] + (threads.map { ["--threads", "\($0)"] } ?? []) + extra
    }

    static func out(_ name: String) -> String { PretrainCommandTests.workspace + "/mpi-" + name }

    static func single(_ name: String, optimizer: String, steps: Int, extra: [String] = []) throws -> String {
        let dir = out(name)
        let r = try BertProgram.run(flags(dir, optimizer: optimizer, steps: steps, accumulation: 2, extra: extra))
        #expect(r.status == 0, "\(r.err)")
        return dir
    }

    static func twoRanks(_ name: String, optimizer: String, steps: Int, extra: [String]) throws -> String {
        let dir = out(name)
        let r = try MPIIntegrationTests.mpirunBert(ranks: 2, flags(dir, optimizer: optimizer, steps: steps, accumulation: 1, extra: extra),
                                                   limit: 120)
        #expect(r.status == 0, "\(r.output)")
        return dir
    }

    /// How far two checkpoints' weights are apart: per tensor, the L2 relative error ‖a − b‖ / ‖b‖ and the worst
    /// element relative to the tensor's largest |b|; the worst of each over the tensors. Different summation orders
    /// (ranks summed by the all-reduce, one process accumulating micro-batch after micro-batch) leave rounding-level
    /// differences, largest on single elements whose gradient nearly cancels. The attention key biases are left out:
    /// their gradient is exactly zero in exact arithmetic (softmax ignores a shift along a row), so what an Adam-style
    /// optimizer does with them is the sign of rounding noise, which any change of summation order changes.
    static func difference(_ a: String, _ b: String) throws -> (l2: Double, element: Double, name: String) {
        let x = try Safetensors.File(path: a + "/model.safetensors"), y = try Safetensors.File(path: b + "/model.safetensors")
        #expect(Set(x.entries.keys) == Set(y.entries.keys))
        var worst = (l2: 0.0, element: 0.0, name: "")
        for name in x.entries.keys where !name.hasSuffix("attention.self.key.bias") {
            let u = try x.floats(name), v = try y.floats(name)
            let diff = zip(u, v).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
            let norm = v.reduce(0.0) { $0 + Double($1) * Double($1) }
            let l2 = (diff / max(norm, 1e-30)).squareRoot()
            if l2 > worst.l2 { worst = (l2, worst.element, name) }
            worst.element = max(worst.element, relativeError(u, v).error)
        }
        return worst
    }

    static func expectEqual(_ a: String, _ b: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let d = try difference(a, b)
        print("\(what): worst per-tensor L2 relative difference \(d.l2) (\(d.name)), worst element \(d.element)")
        #expect(d.l2 <= 1e-6 && d.element <= 1e-5, "\(what): \(d)", sourceLocation: sourceLocation)
    }

    static let references = (lamb: try! single("single-lamb", optimizer: "lamb", steps: 5),
                             lans: try! single("single-lans", optimizer: "lans", steps: 5))

    @Test(arguments: [("lamb", 0), ("lamb", 1), ("lamb", 2), ("lans", 0), ("lans", 1), ("lans", 2)])
    func twoRanksEqualOneProcess(optimizer: String, zeroStage: Int) throws {
        let reference = optimizer == "lamb" ? Self.references.lamb : Self.references.lans
        let dir = try Self.twoRanks("\(optimizer)-zero\(zeroStage)", optimizer: optimizer, steps: 5, extra: ["--zero-stage", "\(zeroStage)"])
        try Self.expectEqual(reference + "/ckpt_5", dir + "/ckpt_5", "np 2, \(optimizer), ZeRO-\(zeroStage)")
    }

    @Test func zeroRunResumesAtAnotherWorldSize() throws {
        let uninterrupted = try Self.single("resize-reference", optimizer: "lamb", steps: 6)
        // 2 ranks (ZeRO-1) for 3 steps, then 1 process to the end …
        let down = try Self.twoRanks("resize-down", optimizer: "lamb", steps: 6, extra: ["--zero-stage", "1", "--steps-this-run", "3"])
        let finishDown = try BertProgram.run(Self.flags(down, optimizer: "lamb", steps: 6, accumulation: 2, extra: ["--resume"]))
        #expect(finishDown.status == 0 && finishDown.out.contains("steps 3…6"), "\(finishDown.out)\(finishDown.err)")
        try Self.expectEqual(uninterrupted + "/ckpt_6", down + "/ckpt_6", "2 ranks (ZeRO-1) then 1")
        // … and 1 process for 3 steps, then 2 ranks (ZeRO-1).
        let up = Self.out("resize-up")
        #expect(try BertProgram.run(Self.flags(up, optimizer: "lamb", steps: 6, accumulation: 2, extra: ["--steps-this-run", "3"])).status == 0)
        let finishUp = try MPIIntegrationTests.mpirunBert(ranks: 2, Self.flags(up, optimizer: "lamb", steps: 6, accumulation: 1,
                                                                               extra: ["--zero-stage", "1", "--resume"]), limit: 120)
        #expect(finishUp.status == 0, "\(finishUp.output)")
        try Self.expectEqual(uninterrupted + "/ckpt_6", up + "/ckpt_6", "1 rank then 2 (ZeRO-1)")
    }

    /// Also: without --threads, the two ranks share this machine's cores.
    @Test func aKilledRankStopsTheJobAndLeavesTheLastCheckpoint() throws {
        let dir = Self.out("killed")
        let r = try MPIIntegrationTests.mpirunBert(ranks: 2, Self.flags(dir, optimizer: "lamb", steps: 8, accumulation: 1,
                                                                        threads: nil),
                                                   environment: ["BERT_FAULT_INJECTION": "kill-at-step:4", "BERT_FAULT_RANK": "1"],
                                                   limit: 60)
        #expect(r.status != 0 && r.seconds < 30, "status \(r.status) after \(r.seconds) s")
        #expect(r.output.contains("rank 1"), "\(r.output)")
        let shared = max(1, ProcessInfo.processInfo.activeProcessorCount / 2)
        #expect(r.output.contains("\(shared) threads a process"), "\(r.output)")
        #expect(throws: Never.self) { _ = try PretrainingCheckpoint.validate(dir + "/ckpt_2") }
        #expect(!FileManager.default.fileExists(atPath: dir + "/ckpt_4"))
    }
}
