import BERTKernels
import Foundation
import Testing
@testable import BERT

/// The package root, found from this file's path (tests read fixtures from the tree, not as resources).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().path

func fixture(_ relative: String) -> String { packageRoot + "/Tests/Fixtures/" + relative }

/// `../shared/datasets`, present in CI and on developer machines but not in a user's clone.
let sharedDatasets = packageRoot + "/../shared/datasets"
let sharedDatasetsPresent: Bool = {
    let present = FileManager.default.fileExists(atPath: sharedDatasets)
    if !present { print("note: \(sharedDatasets) is absent; tests that read the shared datasets are skipped") }
    return present
}()

/// Deterministic test data.
struct TestRandom {
    private let rng: CounterRNG
    private var next: UInt64 = 0
    init(_ seed: UInt64) { rng = CounterRNG(seed: seed, stream: 0xC0FFEE) }
    mutating func normal(_ n: Int, scale: Float = 1) -> [Float] {
        defer { next += UInt64(n) }
        return (0..<n).map { scale * rng.normal(next + UInt64($0)) }
    }
    mutating func ints(_ n: Int, below bound: Int) -> [Int32] {
        defer { next += UInt64(n) }
        return (0..<n).map { Int32(rng.block(next + UInt64($0))[0] % UInt32(bound)) }
    }
}

/// Max |a − e| / max |e| — the error relative to the tensor's scale, so near-zero elements do not dominate.
func relativeError(_ actual: [Float], _ expected: [Float]) -> (error: Double, worstIndex: Int) {
    precondition(actual.count == expected.count, "size \(actual.count) vs \(expected.count)")
    var worst = 0.0, index = 0, scale = 0.0
    for i in expected.indices {
        scale = max(scale, Double(abs(expected[i])))
        let d = Double(abs(actual[i] - expected[i]))
        if d > worst { worst = d; index = i }
    }
    return (worst / max(scale, 1e-30), index)
}

/// Expects `actual` to match `expected` to `tolerance` relative to the tensor's scale (or `absolute` outright).
func expectClose(_ name: String, _ actual: [Float], _ expected: [Float], tolerance: Double, absolute: Double = 0,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    let (error, i) = relativeError(actual, expected)
    let absError = Double(abs(actual[i] - expected[i]))
    #expect(error <= tolerance || absError <= absolute,
            "\(name): relative error \(error) at [\(i)] (got \(actual[i]), expected \(expected[i]))",
            sourceLocation: sourceLocation)
}

/// Expects every parameter gradient of `model` to match the same-named tensor of the safetensors file at `path` to
/// 1e-4 relative; those `isZero` names (zero in exact arithmetic, so the file holds rounding noise) to 1e-6 absolute.
/// - Returns: the worst relative error among the others, and its tensor.
@discardableResult
func expectGradientsMatch(_ model: BertModelBase, _ path: String, isZero: (String) -> Bool = { _ in false },
                          sourceLocation: SourceLocation = #_sourceLocation) throws -> (name: String, error: Double) {
    let grads = try Safetensors.File(path: path)
    #expect(Set(grads.entries.keys) == Set(model.layout.tensors.map(\.name)), sourceLocation: sourceLocation)
    var worst = (name: "", error: 0.0)
    for tensor in model.layout.tensors {
        let expected = try grads.floats(tensor.name)
        let actual = model.gradients.array(offset: tensor.offset, count: tensor.count)
        let zero = isZero(tensor.name)
        expectClose("grad \(tensor.name)", actual, expected, tolerance: 1e-4, absolute: zero ? 1e-6 : 0, sourceLocation: sourceLocation)
        let error = relativeError(actual, expected).error
        if !zero && error > worst.error { worst = (tensor.name, error) }
    }
    return worst
}

/// A new empty directory under the temporary directory.
func temporaryDirectory(_ prefix: String = "bert-test") throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID())").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// Checks an analytic gradient against central finite differences of a scalar loss computed in Double.
/// `loss` is evaluated with `x` perturbed at sampled indices; returns the relative error (max abs diff / max |grad|).
func finiteDifferenceError(_ x: [Float], analytic: [Float], eps: Float = 1e-2, samples: Int = 64,
                           loss: ([Float]) -> Double) -> Double {
    let indices = x.count <= samples ? Array(x.indices) : (0..<samples).map { $0 * x.count / samples }
    var worst = 0.0, scale = 1e-12
    for i in indices {
        var plus = x, minus = x
        plus[i] += eps
        minus[i] -= eps
        let numeric = (loss(plus) - loss(minus)) / Double(2 * eps)
        worst = max(worst, abs(numeric - Double(analytic[i])))
        scale = max(scale, abs(numeric))
    }
    for g in analytic { scale = max(scale, Double(abs(g))) }
    return worst / scale
}

/// Runs `loss` (a forward) and the backward from zeroed gradients, then expects the gradient of each named tensor of
/// `model` to match central differences of `loss` (with dropout on, each `loss` call must redraw the same masks).
func expectFiniteDifferences(_ model: BertModelBase, _ names: [String], loss: () throws -> Float,
                             sourceLocation: SourceLocation = #_sourceLocation) throws {
    _ = try loss()
    model.zeroGradients()
    model.backward()
    for name in names {
        let t = model.layout[name]
        let x = model.parameters.array(offset: t.offset, count: t.count)
        let analytic = model.gradients.array(offset: t.offset, count: t.count)
        let error = finiteDifferenceError(x, analytic: analytic, eps: 1e-2, samples: 24) { values in
            model.parameters.upload(values, offset: t.offset)
            defer { model.parameters.upload(x, offset: t.offset) }
            return Double(try! loss())
        }
        #expect(error < 2e-2, "\(name): finite-difference error \(error)", sourceLocation: sourceLocation)
    }
}

/// Σ w·y in Double: the scalar loss whose gradient with respect to y is w.
func weightedSum(_ y: [Float], _ w: [Float]) -> Double { zip(y, w).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }

/// The `bert` program as a user runs it: the debug binary `swift build --build-tests` makes.
enum BertProgram {
    static let path = packageRoot + "/.build/debug/bert"
    static let present: Bool = {
        let present = FileManager.default.isExecutableFile(atPath: path)
        if !present { print("note: \(path) is absent (run `swift build --build-tests`); command tests skipped") }
        return present
    }()

    struct Result {
        var status: Int32
        /// True when the process was killed by a signal (then `status` is the signal number).
        var signaled: Bool
        var out: String
        var err: String
    }

    /// Runs `bert arguments…` with `input` on stdin; output goes through files, so no pipe can fill up and block it.
    /// With a `limit`, a run still going after that many seconds is killed (SIGKILL: `signaled`, status 9).
    static func run(_ arguments: [String], input: String = "", environment: [String: String] = [:], limit: Double? = nil) throws -> Result {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bert-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let outURL = dir.appendingPathComponent("out"), errURL = dir.appendingPathComponent("err")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let stdin = Pipe()
        process.standardInput = stdin
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        if let limit {
            let deadline = Date(timeIntervalSinceNow: limit)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        return Result(status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal,
                      out: try String(contentsOf: outURL, encoding: .utf8), err: try String(contentsOf: errURL, encoding: .utf8))
    }
}

/// Whether trimmed and packed batches promise the padded batch's bits here: only where the fp32 GEMM keeps a row's
/// bits whatever the row count (`GEMM.Engine.keepsRowBits`, oneDNN on AVX-512). Elsewhere they promise agreement to
/// rounding, and the tests that hold them to it say so once.
let rowBitsKept: Bool = {
    let kept = GEMM.Engine.selected.keepsRowBits
    if !kept {
        print("note: the \(GEMM.Engine.selected.rawValue) GEMM on this CPU does not keep a row's bits across row counts; "
              + "trimmed and packed batches are checked against the padded ones to rounding, not bit for bit")
    }
    return kept
}()

/// Expects a trimmed (or packed) run's `actual` to be the padded run's `expected`: the same bits where `rowBitsKept`,
/// else equal to `tolerance` relative to the tensor's scale.
func expectPaddedRunsValues(_ name: String, _ actual: [Float], _ expected: [Float], tolerance: Double = 1e-5,
                            sourceLocation: SourceLocation = #_sourceLocation) {
    if rowBitsKept {
        let differing = zip(actual, expected).filter { $0 != $1 }.count
        #expect(actual.count == expected.count && differing == 0,
                "\(name): \(differing) of \(expected.count) elements differ from the padded run's bits",
                sourceLocation: sourceLocation)
    } else {
        expectClose(name, actual, expected, tolerance: tolerance, sourceLocation: sourceLocation)
    }
}
