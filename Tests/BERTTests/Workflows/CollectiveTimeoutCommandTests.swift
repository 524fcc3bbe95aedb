import Foundation
import Testing
@testable import BERT

/// `bert pretrain --collective-timeout` on the real program: a rank that hangs without dying under `mpirun -np 2`, and
/// a data loader that hangs in one process, both stop the job within a bound with one line naming the stalled rank
/// (or the loader) and the step, a non-zero exit, and the last checkpoint intact and loadable.
@Suite(.serialized, .enabled(if: BertProgram.present))
struct CollectiveTimeoutCommandTests {
    /// 6 steps of the distributed tests' tiny run, a checkpoint every 2, with a collective timeout.
    static func flags(_ dir: String, accumulation: Int, timeout: String, extra: [String] = []) -> [String] {
        DistributedPretrainTests.flags(dir, optimizer: "lamb", steps: 6, accumulation: accumulation,
                                       extra: ["--collective-timeout", timeout] + extra)
    }

    /// ckpt_2 (written before the hang at step 3) passes the checkpoint checks and evaluates; nothing newer exists.
    static func expectLastCheckpointIntact(_ dir: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(throws: Never.self, sourceLocation: sourceLocation) { _ = try PretrainingCheckpoint.validate(dir + "/ckpt_2") }
        #expect(PretrainingCheckpoint.list(dir).map(\.step) == [2], sourceLocation: sourceLocation)
        let eval = try BertProgram.run(["eval-mlm", "--checkpoint", dir + "/ckpt_2", "--input-dir", PretrainCommandTests.workspace + "/eval",
                                        "--threads", "1"], limit: 120)
        #expect(eval.status == 0 && eval.out.contains("mlm_accuracy"), "\(eval.err)", sourceLocation: sourceLocation)
    }

    @Test(.enabled(if: MPIIntegrationTests.available), arguments: [(0, "allReduceSum"), (1, "reduceScatterSum")])
    func aSleepingRankIsNamedAndTheJobStops(zeroStage: Int, firstCollective: String) throws {
        let dir = PretrainCommandTests.out("sleeping-rank-zero\(zeroStage)")
        let r = try MPIIntegrationTests.mpirunBert(ranks: 2, Self.flags(dir, accumulation: 1, timeout: "3", extra: ["--zero-stage", "\(zeroStage)"]),
                                                   environment: ["BERT_FAULT_INJECTION": "sleep-at-step:3", "BERT_FAULT_RANK": "1"],
                                                   limit: 60)
        print("ZeRO-\(zeroStage), rank 1 asleep at step 3, --collective-timeout 3: mpirun exited with status \(r.status) after "
              + String(format: "%.2f", r.seconds) + " s")
        #expect(r.status != 0 && r.seconds < 30, "status \(r.status) after \(r.seconds) s: \(r.output)")
        let line = "bert: rank 0 of 2: step 3: rank 1 did not reach \(firstCollective) within 3 s; stopping the job "
            + "(the last checkpoint, \(dir)/ckpt_2, is intact)"
        #expect(r.stderr.contains(line), "\(r.output)")
        try Self.expectLastCheckpointIntact(dir)
    }

    @Test func aStalledLoaderStopsTheRun() throws {
        let dir = PretrainCommandTests.out("stalled-loader")
        let start = Date()
        let r = try BertProgram.run(Self.flags(dir, accumulation: 2, timeout: "2"),
                                    environment: ["BERT_FAULT_INJECTION": "stall-loader-at-step:3"], limit: 60)
        let seconds = Date().timeIntervalSince(start)
        print("loader asleep at step 3, --collective-timeout 2: exited with status \(r.status) after " + String(format: "%.2f", seconds) + " s")
        #expect(r.status == 1 && !r.signaled && seconds < 30, "status \(r.status) after \(seconds) s: \(r.err)")
        #expect(r.err.contains("bert: rank 0 of 1: step 3: the data loader did not deliver this rank's batches within 2 s; "
                               + "stopping the job (the last checkpoint, \(dir)/ckpt_2, is intact)"), "\(r.err)")
        try Self.expectLastCheckpointIntact(dir)
    }
}
