import BERTKernels
import Foundation
import Testing
@testable import BERT

/// `--device` and `--precision` as a user meets them: a missing CUDA driver is a one-line error, bf16 on the CPU
/// trains near fp32's loss, and the emulated device benchmarks to the CPU's loss.
@Suite(.enabled(if: BertProgram.present)) struct DeviceFlagsTests {
    static let bench = ["bench", "--model", "bert-tiny", "--batch", "2", "--seq-len", "16", "--steps", "1", "--warmup", "0",
                        "--threads", "1"]

    @Test func cudaWithoutADriverIsOneClearLine() throws {
        guard !CUDAProbe.driverPresent else {
            print("note: this machine has a CUDA driver; the no-driver message is not checked here")
            return
        }
        let r = try BertProgram.run(Self.bench + ["--device", "cuda"])
        #expect(r.status != 0)
        let lines = r.err.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains("no CUDA driver"), "\(r.err)")
        #expect(r.out.isEmpty)
    }

    /// On a machine with an NVIDIA driver, every kernel on the real GPU against the CPU (`bert check-device`, fp32 and
    /// bf16) and a training step's loss; everywhere else it says that it skipped.
    @Test func theRealGPUMatchesTheCPU() throws {
        guard CUDAProbe.driverPresent else {
            print("note: skipping the real-GPU checks (no libcuda.so.1 on this machine): `bert check-device --device cuda` "
                  + "and a CUDA training step run only where an NVIDIA driver is installed")
            return
        }
        for precision in ["fp32", "bf16"] {
            let r = try BertProgram.run(["check-device", "--device", "cuda", "--precision", precision])
            #expect(r.status == 0, "check-device --precision \(precision): \(r.err)\n\(r.out)")
        }
        let cpu = try Self.loss([]), gpu = try Self.loss(["--device", "cuda"])
        #expect(abs(gpu - cpu) / cpu < 1e-4, "CPU loss \(cpu), GPU loss \(gpu)")
    }

    /// `--precision bf16` on the CPU trains (bf16 GEMM inputs) to within 2 % of fp32's loss, and infers.
    @Test func bf16OnTheCPUTrainsAndInfers() throws {
        let cpu = try Self.loss([]), bf16 = try Self.loss(["--precision", "bf16"])
        #expect(abs(bf16 - cpu) / cpu < 0.02 && bf16 != cpu, "fp32 \(cpu), bf16 \(bf16)")
        let r = try BertProgram.run(Self.bench + ["--mode", "infer", "--head", "classification", "--precision", "bf16"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("\"precision\":\"bf16\""), "\(r.out)")
        // Without AMX the same numbers come at fp32's speed, and the user is told (BERT_AMX=0 turns the tiles off).
        #expect(r.err.contains("AMX-BF16 is not in use") == !BF16GEMM.usesAMX, "\(r.err)")
        let portable = try Self.loss(["--precision", "bf16"], environment: ["BERT_AMX": "0"])
        #expect(abs(portable - bf16) / bf16 < 1e-5, "AMX \(bf16), portable \(portable)")
    }

    /// The loss of one LAMB training step of `bench` with `flags`.
    static func loss(_ flags: [String], environment: [String: String] = [:]) throws -> Double {
        let r = try BertProgram.run(bench + ["--mode", "train", "--optimizer", "lamb"] + flags, environment: environment)
        #expect(r.status == 0, "\(r.err)")
        if environment["BERT_AMX"] == "0" && flags.contains("bf16") { #expect(r.err.contains("AMX-BF16 is not in use"), "\(r.err)") }
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        return try #require(json["loss"] as? Double)
    }

    @Test func theEmulatedDeviceBenchmarksToTheCPUsLoss() throws {
        let cpu = try Self.loss([]), emulated = try Self.loss(["--device", "emulated"])
        let bf16 = try Self.loss(["--device", "emulated", "--precision", "bf16"])
        #expect(cpu == emulated)
        #expect(abs(bf16 - cpu) / cpu < 0.02 && bf16 != cpu)
    }
}

/// Whether this machine has an NVIDIA driver (CI and our build machines do not).
enum CUDAProbe {
    static let driverPresent: Bool = dlopen("libcuda.so.1", RTLD_NOW) != nil
}
