import Foundation
import Testing
@testable import BERT

/// `bert convert` run as a user runs it: HF-written checkpoints (the reference fixtures) → ours → HF → ours is
/// byte-identical; a pre-training checkpoint loses its optimizer state; headless and half-written inputs are refused.
@Suite(.enabled(if: BertProgram.present)) struct ConvertCommandTests {
    func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bert-convert-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func convert(_ checkpoint: String, _ output: String, to: String) throws -> BertProgram.Result {
        try BertProgram.run(["convert", "--to", to, "--checkpoint", checkpoint, "--output", output])
    }

    @Test(arguments: ["core/tiny-gelu", "heads/qa", "heads/classification"])
    func roundTripIsByteIdentical(source: String) throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (from, to, kind) in [(fixture(source), dir + "/ours", "ours"), (dir + "/ours", dir + "/hf", "hf"), (dir + "/hf", dir + "/again", "ours")] {
            let r = try convert(from, to, to: kind)
            #expect(r.status == 0, "\(r.err)")
        }
        for file in ["model.safetensors", "config.json"] {
            #expect(FileManager.default.contents(atPath: dir + "/ours/" + file) == FileManager.default.contents(atPath: dir + "/again/" + file), "\(file)")
        }
        // The same tensors, bit for bit, as the HF-written original.
        let original = try Safetensors.File(path: fixture(source) + "/model.safetensors"), converted = try Safetensors.File(path: dir + "/hf/model.safetensors")
        #expect(Set(original.entries.keys) == Set(converted.entries.keys))
        for name in original.entries.keys { #expect(try original.floats(name) == converted.floats(name), "\(name)") }
    }

    @Test func refusesHeadlessModelsAndNonEmptyOutputs() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/encoder", withIntermediateDirectories: true)
        try #"{"architectures": ["BertModel"], "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16}"#
            .write(toFile: dir + "/encoder/config.json", atomically: true, encoding: .utf8)
        let headless = try convert(dir + "/encoder", dir + "/out", to: "hf")
        #expect(headless.status != 0 && headless.err.contains("BertModel") && headless.err.contains("--init-checkpoint"), "\(headless.err)")
        try FileManager.default.createDirectory(atPath: dir + "/full", withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: dir + "/full/keep.txt"))
        let occupied = try convert(fixture("core/tiny-gelu"), dir + "/full", to: "hf")
        #expect(occupied.status != 0 && occupied.err.contains("is not empty"), "\(occupied.err)")
        let bad = try BertProgram.run(["convert", "--to", "onnx", "--checkpoint", fixture("core/tiny-gelu"), "--output", dir + "/x"])
        #expect(bad.status != 0 && bad.err.contains("--to must be hf, ours, tf or pytorch"))
    }
}
