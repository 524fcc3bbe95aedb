import Foundation
import Testing
@testable import BERT

/// `--device` and `--precision` as a user meets them: a missing CUDA driver and bf16 on the CPU are one-line errors,
/// and the emulated device benchmarks to the CPU's loss.
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
        func loss(_ flags: [String]) throws -> Double {
            let r = try BertProgram.run(Self.bench + ["--mode", "train", "--optimizer", "lamb"] + flags)
            #expect(r.status == 0, "\(r.err)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
            return try #require(json["loss"] as? Double)
        }
        let cpu = try loss([]), gpu = try loss(["--device", "cuda"])
        #expect(abs(gpu - cpu) / cpu < 1e-4, "CPU loss \(cpu), GPU loss \(gpu)")
    }

    @Test func bf16OnTheCPUIsRefused() throws {
        let r = try BertProgram.run(Self.bench + ["--precision", "bf16"])
        #expect(r.status != 0)
        #expect(r.err.contains("--precision bf16 needs --device cuda"), "\(r.err)")
    }

    @Test func theEmulatedDeviceBenchmarksToTheCPUsLoss() throws {
        func loss(_ flags: [String]) throws -> Double {
            let r = try BertProgram.run(Self.bench + ["--mode", "train", "--optimizer", "lamb"] + flags)
            #expect(r.status == 0, "\(r.err)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
            return try #require(json["loss"] as? Double)
        }
        let cpu = try loss([]), emulated = try loss(["--device", "emulated"])
        let bf16 = try loss(["--device", "emulated", "--precision", "bf16"])
        #expect(cpu == emulated)
        #expect(abs(bf16 - cpu) / cpu < 0.02 && bf16 != cpu)
    }
}

/// Whether this machine has an NVIDIA driver (CI and our build machines do not).
enum CUDAProbe {
    static let driverPresent: Bool = dlopen("libcuda.so.1", RTLD_NOW) != nil
}
