import Foundation
import Testing
@testable import BERT

/// Numeric flags out of range are refused before any work, with one line naming the flag and the value; negative
/// numbers are read as values (`--max-steps -1`), not as missing ones.
@Suite struct FlagValidationTests {
    @Test(.enabled(if: BertProgram.present)) func pretrainAndEvalRefuseOutOfRangeFlags() throws {
        let dir = try temporaryDirectory("flags")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pretrain = ["pretrain", "--input-dir", dir, "--output-dir", dir + "/run", "--model", "bert-tiny"]
        let cases: [([String], String)] = [
            (pretrain + ["--max-steps", "-1"], "--max-steps -1"),
            (pretrain + ["--max-steps", "0"], "--max-steps 0"),
            (pretrain + ["--learning-rate", "-1"], "--learning-rate -1.0"),
            (pretrain + ["--learning-rate", "nan"], "--learning-rate nan"),
            (pretrain + ["--poly-power", "-1"], "--poly-power -1.0"),
            (pretrain + ["--warmup-proportion", "-0.5"], "--warmup-proportion -0.5"),
            (pretrain + ["--warmup-proportion", "1.5"], "--warmup-proportion 1.5"),
            (pretrain + ["--weight-decay", "-1"], "--weight-decay -1.0"),
            (pretrain + ["--max-grad-norm", "inf"], "--max-grad-norm inf"),
            (pretrain + ["--keep-checkpoints", "-1"], "--keep-checkpoints -1"),
            (pretrain + ["--keep-checkpoints", "0"], "--keep-checkpoints 0"),
            (pretrain + ["--threads", "0"], "--threads 0"),
            (pretrain + ["--threads", "-1"], "--threads -1"),
            (pretrain + ["--train-batch-size", "0"], "--train-batch-size 0"),
            (pretrain + ["--gradient-accumulation-steps", "-2"], "--gradient-accumulation-steps -2"),
            (pretrain + ["--eval-batch-size", "0"], "--eval-batch-size 0"),
            (pretrain + ["--eval-every", "-5"], "--eval-every -5"),
            (pretrain + ["--log-freq", "0"], "--log-freq 0"),
            (pretrain + ["--num-steps-per-checkpoint", "0"], "--num-steps-per-checkpoint 0"),
            (pretrain + ["--target-mlm-accuracy", "0"], "--target-mlm-accuracy 0.0"),
            (pretrain + ["--collective-timeout", "-1"], "--collective-timeout -1.0"),
            (pretrain + ["--collective-timeout", "nan"], "--collective-timeout nan"),
            (["eval-mlm", "--checkpoint", dir, "--input-dir", dir, "--batch-size", "0"], "--batch-size 0"),
            (["eval-mlm", "--checkpoint", dir, "--input-dir", dir, "--batch-size", "-3"], "--batch-size -3"),
        ]
        for (arguments, message) in cases {
            let r = try BertProgram.run(arguments)
            #expect(r.status != 0 && !r.signaled, "\(arguments): exit \(r.status)")
            #expect(r.err.hasPrefix("Error: \(message) is out of range"), "\(arguments): \(r.err)")
            #expect(r.out.isEmpty)
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/run"), "a refused run must leave no output directory")
    }
}
