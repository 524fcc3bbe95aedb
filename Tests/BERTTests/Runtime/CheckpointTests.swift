import Foundation
import Testing
@testable import BERT

@Suite struct CheckpointTests {
    let source = fixture("core/tiny-gelu")

    func checkpoint(config: String? = nil, edit: ([(String, [Float], [Int])]) -> [(String, [Float], [Int])]) throws -> String {
        try editedCheckpoint(source, config: config, edit: edit)
    }

    func loadError(_ dir: String) -> String {
        do { _ = try BertForPreTraining.load(directory: dir); return "" } catch { return "\(error)" }
    }

    @Test func saveIsByteIdenticalAndReloadsExactly() throws {
        let dir = try temporaryDirectory("bert-ckpt")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (model, _) = try BertForPreTraining.load(directory: source)
        try model.save(directory: dir + "/a")
        let (again, report) = try BertForPreTraining.load(directory: dir + "/a")
        #expect(report.missing.isEmpty && report.skipped.isEmpty)
        #expect(again.parameters.array() == model.parameters.array())
        try again.save(directory: dir + "/b")
        #expect(FileManager.default.contents(atPath: dir + "/a/model.safetensors") == FileManager.default.contents(atPath: dir + "/b/model.safetensors"))
        // Same tensors, same bytes as the reference file written by PyTorch's safetensors (up to header layout).
        let theirs = try Safetensors.File(path: source + "/model.safetensors"), ours = try Safetensors.File(path: dir + "/a/model.safetensors")
        #expect(Set(theirs.entries.keys) == Set(ours.entries.keys))
        for name in theirs.entries.keys { #expect(try theirs.floats(name) == ours.floats(name)) }
    }

    @Test func missingTensorIsNamed() throws {
        let dir = try checkpoint { $0.filter { $0.0 != "bert.encoder.layer.1.output.dense.bias" } }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(loadError(dir).contains("missing tensors: bert.encoder.layer.1.output.dense.bias"))
    }

    @Test func wrongShapeIsNamed() throws {
        let dir = try checkpoint { $0.map { $0.0 == "bert.pooler.dense.weight" ? ($0.0, Array($0.1.prefix(64 * 32)), [64, 32]) : $0 } }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(loadError(dir).contains("bert.pooler.dense.weight is [64, 32], expected [64, 64]"))
    }

    @Test func configThatDoesNotMatchTheWeightsIsAnError() throws {
        let config = #"{"vocab_size": 1001, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128, "max_position_embeddings": 64, "type_vocab_size": 2}"#
        let dir = try checkpoint(config: config) { $0 }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let error = loadError(dir)
        #expect(error.contains("intermediate.dense.weight is [256, 64], expected [128, 64]") && error.contains("does config.json match"))
    }

    @Test func unexpectedTensorIsNamed() throws {
        let dir = try checkpoint { $0 + [("qa_outputs.weight", [Float](repeating: 0, count: 128), [2, 64])] }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(loadError(dir).contains("unexpected tensors: qa_outputs.weight"))
    }

    @Test func truncatedFileIsAnError() throws {
        let dir = try checkpoint { $0 }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/model.safetensors"
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: path))
        #expect(loadError(dir).contains("truncated"))
    }
}

/// Copies the checkpoint in `source`, with `edit` applied to its tensor list (name, values, shape) and `config`
/// replacing its config.json when given, into a new directory.
func editedCheckpoint(_ source: String, config: String? = nil,
                      edit: ([(String, [Float], [Int])]) -> [(String, [Float], [Int])]) throws -> String {
    let dir = try temporaryDirectory("bert-ckpt")
    let file = try Safetensors.File(path: source + "/model.safetensors")
    let tensors = try file.entries.keys.sorted().map { ($0, try file.floats($0), file.entries[$0]!.shape) }
    let edited = edit(tensors)
    let storage = edited.map { $0.1 }
    try storage.withUnsafeBufferPointers { buffers in
        try Safetensors.write(zip(edited, buffers).map { ($0.0.0, .float($0.1, shape: $0.0.2)) }, to: dir + "/model.safetensors")
    }
    try (config.map { Data($0.utf8) } ?? Data(contentsOf: URL(fileURLWithPath: source + "/config.json")))
        .write(to: URL(fileURLWithPath: dir + "/config.json"))
    return dir
}

extension Array where Element == [Float] {
    /// Calls `body` with a buffer pointer to every array at once.
    func withUnsafeBufferPointers<R>(_ body: ([UnsafeBufferPointer<Float>]) throws -> R) rethrows -> R {
        func go(_ i: Int, _ acc: [UnsafeBufferPointer<Float>]) throws -> R {
            if i == count { return try body(acc) }
            return try self[i].withUnsafeBufferPointer { try go(i + 1, acc + [$0]) }
        }
        return try go(0, [])
    }
}
