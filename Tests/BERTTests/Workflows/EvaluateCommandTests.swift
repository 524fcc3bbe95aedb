import Foundation
import Testing
@testable import BERT

/// `bert evaluate squad|mrpc` run as a user runs them (the debug binary `swift build` made).
@Suite struct EvaluateCommandTests {
    static var binaryPresent: Bool { BertProgram.present }
    static func run(_ arguments: [String]) throws -> BertProgram.Result {
        try BertProgram.run(arguments)
    }

    struct Printed: Decodable { let printed: String }

    @Test(.enabled(if: binaryPresent)) func squadPrintsTheOfficialJSON() throws {
        let expected = try JSONDecoder().decode(
            Printed.self, from: Data(contentsOf: URL(fileURLWithPath: fixture("squad/eval_cases.json")))).printed
        let result = try Self.run(["evaluate", "squad", "--dataset", fixture("squad/eval_dataset.json"),
                                   "--predictions", fixture("squad/eval_predictions.json")])
        #expect(result.status == 0, "\(result.err)")
        #expect(result.out == expected + "\n")
        #expect(result.err.contains("1 of 36 questions have no prediction") && result.err.contains("q-missing"), "\(result.err)")
    }

    @Test(.enabled(if: binaryPresent)) func squadBadInputFailsWithOneLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("evaluate-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("bad.json").path
        _ = FileManager.default.createFile(atPath: bad, contents: Data("{\"data\": [{\"paragraphs\": [".utf8))
        let noKey = dir.appendingPathComponent("nokey.json").path
        _ = FileManager.default.createFile(atPath: noKey, contents: Data("{\"version\": \"1.1\"}".utf8))
        let predictions = fixture("squad/eval_predictions.json")
        for (arguments, path) in [
            (["--dataset", bad, "--predictions", predictions], bad),
            (["--dataset", noKey, "--predictions", predictions], noKey),
            (["--dataset", fixture("squad/eval_dataset.json"), "--predictions", bad], bad),
            (["--dataset", "/nonexistent/dev.json", "--predictions", predictions], "/nonexistent/dev.json"),
        ] {
            let result = try Self.run(["evaluate", "squad"] + arguments)
            let lines = result.err.split(separator: "\n")
            #expect(result.status != 0 && result.out.isEmpty)
            #expect(lines.count == 1 && result.err.contains(path), "\(result.err)")
        }
    }

    @Test(.enabled(if: binaryPresent && GLUETests.mrpcPresent)) func mrpcAccuracyAndF1() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("evaluate-mrpc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let labels = try GLUE.readMRPC(contentsOf: GLUETests.mrpcDev, set: "dev").map { $0.label! }
        let perfect = dir.appendingPathComponent("perfect.tsv").path
        let submission = "index\tprediction\n" + labels.enumerated().map { "\($0.offset)\t\($0.element)\n" }.joined()
        _ = FileManager.default.createFile(atPath: perfect, contents: Data(submission.utf8))
        let ones = dir.appendingPathComponent("ones.tsv").path
        _ = FileManager.default.createFile(atPath: ones, contents: Data(String(repeating: "1\n", count: 408).utf8))
        let short = dir.appendingPathComponent("short.tsv").path
        _ = FileManager.default.createFile(atPath: short, contents: Data("1\n0\n".utf8))

        let a = try Self.run(["evaluate", "mrpc", "--dataset", GLUETests.mrpcDev, "--predictions", perfect])
        #expect(a.status == 0 && a.out == "{\"accuracy\": 1.0, \"f1\": 1.0, \"count\": 408}\n", "\(a.out) \(a.err)")
        let b = try Self.run(["evaluate", "mrpc", "--dataset", GLUETests.mrpcDev, "--predictions", ones])
        let accuracy = 279.0 / 408.0, f1 = 558.0 / 687.0
        #expect(b.status == 0 && b.out == "{\"accuracy\": \(accuracy), \"f1\": \(f1), \"count\": 408}\n", "\(b.out) \(b.err)")
        let c = try Self.run(["evaluate", "mrpc", "--dataset", GLUETests.mrpcDev, "--predictions", short])
        #expect(c.status != 0 && c.err.contains(short) && c.err.contains("2 predictions for 408"), "\(c.err)")
    }
}
