import ArgumentParser
import BERT
import Foundation

/// `bert check-device`: every backend operation on the chosen device against the CPU's, one JSON line each.
struct CheckDeviceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-device",
        abstract: "Run every kernel on --device and on the CPU with the same inputs and compare (one JSON line per kernel).",
        discussion: """
        Errors are relative to each output's largest CPU magnitude. Tolerances: fp32 1e-5 (5e-5 where a GEMM or a long \
        reduction is inside), bf16 2e-2. Exits non-zero when any kernel is outside its tolerance.
        """)

    @OptionGroup var device: DeviceFlags

    func run() throws {
        let results = BackendParity.run(candidate: try device.backend(), precision: device.precision)
        for r in results {
            let line: [String: Any] = ["operation": r.operation, "max_relative_error": r.maxRelativeError,
                                       "tolerance": r.tolerance, "passed": r.passed]
            print(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
        }
        let failed = results.filter { !$0.passed }.map(\.operation)
        guard failed.isEmpty else {
            throw ValidationError("\(failed.count) of \(results.count) kernels outside tolerance on --device \(device.device.rawValue): \(failed.joined(separator: ", "))")
        }
    }
}
