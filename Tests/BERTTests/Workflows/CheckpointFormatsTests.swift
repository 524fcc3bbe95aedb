import Foundation
import Testing
@testable import BERT

/// Google TF and PyTorch checkpoints written by TensorFlow and `torch.save` themselves
/// (`scripts/reference/make_checkpoint_fixtures.py`) read back tensor for tensor, bit for bit, as the values the script
/// drew (`expected.safetensors`, HF names and PyTorch shapes); what the writers produce reads back the same.
@Suite struct CheckpointFormatsTests {
    let root = fixture("checkpoints")
    var config: BertConfig { get throws { try BertConfig.load(contentsOf: root + "/tf/bert_config.json") } }

    /// Every expected tensor equals the one `source` holds under its HF name, bit for bit; nothing else is there but
    /// the tied decoder (checked against the word embeddings) and ignored buffers.
    func expectMatchesReference(_ source: TensorMap) throws {
        let expected = try Safetensors.File(path: root + "/expected.safetensors")
        #expect(expected.entries.count == 46)
        for name in expected.entries.keys.sorted() {
            let want = try expected.floats(name)
            #expect(source.shape(of: name) == expected.entries[name]?.shape, "\(name)")
            #expect(source.values(name)?.map(\.bitPattern) == want.map(\.bitPattern), "\(name)")
        }
        let extra = Set(source.tensorNames).subtracting(expected.entries.keys)
        #expect(extra.isSubset(of: ["cls.predictions.decoder.weight", "cls.predictions.decoder.bias", "bert.embeddings.position_ids"]), "\(extra)")
        if extra.contains("cls.predictions.decoder.weight") {
            #expect(source.values("cls.predictions.decoder.weight") == (try expected.floats("bert.embeddings.word_embeddings.weight")))
        }
    }

    @Test func googleCheckpointWrittenByTensorFlowReadsAsTheReference() throws {
        let bundle = try TensorBundle(prefix: root + "/tf/bert_model.ckpt")
        #expect(bundle.entries.count == 46 * 3 + 1)   // each variable with its Adam slots, and global_step
        #expect(bundle.entries["bert/encoder/layer_1/intermediate/dense/kernel"]?.shape == [16, 32])   // [in, out]
        let (tensors, skipped) = try CheckpointConversion.googleTensors(prefix: root + "/tf/bert_model.ckpt", layout: .pretraining(try config))
        #expect(skipped == 46 * 2 + 1)
        try expectMatchesReference(tensors)
    }

    @Test(arguments: ["hf/pytorch_model.bin", "nvidia/ckpt_8.pt"])
    func torchSaveFilesReadAsTheReference(file: String) throws {
        let (tensors, skipped) = try CheckpointConversion.torchTensors(file: root + "/" + file, config: try config)
        // NVIDIA's trainer state beside the model: optimizer, master params, files, epoch.
        #expect(skipped == (file.hasPrefix("nvidia") ? 4 : 0))
        try expectMatchesReference(tensors)
    }

    @Test func writtenBundleAndStateDictReadBackBitForBit() throws {
        let dir = try temporaryDirectory("bert-formats")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let expected = try Safetensors.File(path: root + "/expected.safetensors")
        let tensors = try expected.entries.keys.sorted().map { (name: $0, shape: expected.entries[$0]!.shape, values: try expected.floats($0)) }
        try TensorBundle.write(tensors, prefix: dir + "/b")
        try TorchCheckpoint.write(tensors, to: dir + "/p.bin")
        let bundle = try TensorBundle(prefix: dir + "/b"), torch = try TorchCheckpoint(path: dir + "/p.bin")
        #expect(torch.names == tensors.map(\.name))
        for t in tensors {
            #expect(bundle.entries[t.name]?.shape == t.shape && torch.shape(t.name) == t.shape, "\(t.name)")
            #expect(try bundle.floats(t.name).map(\.bitPattern) == t.values.map(\.bitPattern), "\(t.name)")
            #expect(try torch.floats(t.name).map(\.bitPattern) == t.values.map(\.bitPattern), "\(t.name)")
        }
    }

    @Test func googleCheckpointWithAForeignAndAMissingVariableNamesBoth() throws {
        let dir = try temporaryDirectory("bert-formats")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bundle = try TensorBundle(prefix: root + "/tf/bert_model.ckpt")
        var tensors = try bundle.entries.keys.sorted().filter { $0 != "bert/pooler/dense/bias" }
            .map { (name: $0, shape: bundle.entries[$0]!.shape, values: $0 == "global_step" ? [0] : try bundle.floats($0)) }
        tensors.append((name: "bert/encoder/layer_0/extra/kernel", shape: [2], values: [1, 2]))
        try TensorBundle.write(tensors, prefix: dir + "/b")   // global_step (int64 in the original) as a float scalar
        let (map, _) = try CheckpointConversion.googleTensors(prefix: dir + "/b", layout: .pretraining(try config))
        let model = try BertForPreTraining(config: try config)
        #expect { try model.parameters.withHostFloats { try Checkpoint.load(map, into: $0, layout: model.layout) } } throws: { error in
            "\(error)".contains("missing tensors: bert.pooler.dense.bias") && "\(error)".contains("unexpected tensors: bert/encoder/layer_0/extra/kernel")
        }
    }

    @Test func tableWithPrefixCompressedKeysReadsBack() throws {
        // 40 keys sharing prefixes: three restart groups; keys read back in order with their values.
        let entries = (0..<40).map { (key: Array("bert/encoder/layer_\($0 / 10)/k\($0 % 10)".utf8), value: [UInt8](repeating: UInt8($0), count: $0)) }
        let read = try SortedTable.read(SortedTable.write(entries), path: "t")
        #expect(read.map(\.key) == entries.map(\.key) && read.map { Array($0.value) } == entries.map(\.value))
    }

    @Test func crcOfKnownInputs() {
        // Check values of both polynomials on "123456789", and LevelDB's mask round trip.
        #expect(CRC32.ieee.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.castagnoli.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32.unmask(CRC32.mask(0xE306_9283)) == 0xE306_9283 && CRC32.mask(0xE306_9283) != 0xE306_9283)
    }

    @Test func pickleOutsideTheSubsetIsRefusedWithoutRunningIt() throws {
        let marker = "/tmp/bert-evil-pickle-ran"
        try? FileManager.default.removeItem(atPath: marker)
        #expect { try TorchCheckpoint(path: root + "/evil.pt") } throws: { error in
            "\(error)".contains("refused") && "\(error)".contains("posix.system")
        }
        #expect(!FileManager.default.fileExists(atPath: marker))
        let dir = try temporaryDirectory("bert-formats")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data([0x80, 0x02, 0x8A, 0x0A]).write(to: URL(fileURLWithPath: dir + "/old.bin"))
        #expect { try TorchCheckpoint(path: dir + "/old.bin") } throws: { "\($0)".contains("legacy torch.save file") }
    }
}

/// `bert convert` between Google TF, PyTorch and our format, run as a user runs it: round trips are bit-identical on
/// every tensor, and a corrupt or foreign checkpoint is one clear error with no output directory left behind.
@Suite(.enabled(if: BertProgram.present)) struct ConvertFormatsCommandTests {
    let root = fixture("checkpoints")

    func convert(_ arguments: [String]) throws -> BertProgram.Result { try BertProgram.run(["convert"] + arguments) }

    @Test func tfToOursToTFAndPytorchToOursToPytorchAreBitIdentical() throws {
        let dir = try temporaryDirectory("bert-convert-formats")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (from, to, kind) in [(root + "/tf", dir + "/from-tf", "ours"), (dir + "/from-tf", dir + "/tf", "tf"),
                                 (root + "/hf/pytorch_model.bin", dir + "/from-pt", "ours"), (dir + "/from-pt", dir + "/pt", "pytorch"),
                                 (root + "/nvidia", dir + "/from-nvidia", "hf")] {
            let r = try convert(["--to", kind, "--checkpoint", from, "--output", to])
            #expect(r.status == 0 && r.out.contains("wrote"), "\(from) → \(kind): \(r.err)")
        }
        let original = try TensorBundle(prefix: root + "/tf/bert_model.ckpt"), again = try TensorBundle(prefix: dir + "/tf/bert_model.ckpt")
        let weights = original.entries.keys.filter { !CheckpointNames.isGoogleTrainingState($0) }
        #expect(Set(again.entries.keys) == Set(weights))
        for name in weights { #expect(try original.floats(name).map(\.bitPattern) == again.floats(name).map(\.bitPattern), "\(name)") }
        let theirs = try TorchCheckpoint(path: root + "/hf/pytorch_model.bin"), ours = try TorchCheckpoint(path: dir + "/pt/pytorch_model.bin")
        for name in ours.names { #expect(try theirs.floats(name).map(\.bitPattern) == ours.floats(name).map(\.bitPattern), "\(name)") }
        #expect(Set(theirs.names).subtracting(ours.names).isSubset(of: ["cls.predictions.decoder.weight", "cls.predictions.decoder.bias"]))
        // The three sources hold the same weights, so their safetensors are the same file.
        let files = ["from-tf", "from-pt", "from-nvidia"].map { FileManager.default.contents(atPath: dir + "/\($0)/model.safetensors") }
        #expect(files[0] != nil && files[0] == files[1] && files[1] == files[2])
    }

    @Test func corruptTensorOrIndexFailsItsCRC() throws {
        let dir = try temporaryDirectory("bert-convert-formats")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = "bert_model.ckpt.data-00000-of-00001", index = "bert_model.ckpt.index"
        for (damaged, expected) in [(data, "tensor bert/embeddings/LayerNorm/beta fails its CRC-32C check"), (index, "fails its CRC-32C check")] {
            let copy = dir + "/" + (damaged == data ? "damaged-data" : "damaged-index")
            try FileManager.default.copyItem(atPath: root + "/tf", toPath: copy)
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: copy + "/" + damaged)))
            // The data file starts with the first tensor in name order (bert/embeddings/LayerNorm/beta); the index with
            // its only data block.
            bytes[10] ^= 0x01
            try Data(bytes).write(to: URL(fileURLWithPath: copy + "/" + damaged))
            let r = try convert(["--to", "hf", "--checkpoint", copy, "--output", dir + "/out"])
            #expect(r.status != 0 && r.err.contains(expected) && !r.err.contains("\n\n"), "\(r.err)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/out"))
        }
    }

    @Test func foreignPickleIsRefusedAndNothingRuns() throws {
        let dir = try temporaryDirectory("bert-convert-formats")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let marker = "/tmp/bert-evil-pickle-ran"
        try? FileManager.default.removeItem(atPath: marker)
        let r = try convert(["--from", "auto", "--to", "hf", "--checkpoint", root + "/evil.pt", "--config-file", root + "/tf/bert_config.json", "--output", dir + "/out"])
        #expect(r.status != 0 && r.err.contains("refused: the pickle calls posix.system"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: marker) && !FileManager.default.fileExists(atPath: dir + "/out"))
    }

    @Test func outputThatIsAFileIsRefusedAndKept() throws {
        let dir = try temporaryDirectory("bert-convert-formats")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("keep".utf8).write(to: URL(fileURLWithPath: dir + "/notes.txt"))
        let r = try convert(["--to", "tf", "--checkpoint", root + "/hf", "--output", dir + "/notes.txt"])
        #expect(r.status != 0 && r.err.contains("is a file; choose a new directory"), "\(r.err)")
        #expect(FileManager.default.contents(atPath: dir + "/notes.txt") == Data("keep".utf8))
    }

    @Test func checkpointThatDoesNotFitTheConfigListsEveryTensor() throws {
        let dir = try temporaryDirectory("bert-convert-formats")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Three layers instead of two, an intermediate size of 48 instead of 32.
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/nvidia/bert_config.json"))) as! [String: Any]
        config["num_hidden_layers"] = 3
        config["intermediate_size"] = 48
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: dir + "/config.json"))
        let r = try convert(["--from", "pytorch", "--to", "tf", "--checkpoint", root + "/nvidia/ckpt_8.pt", "--config-file", dir + "/config.json", "--output", dir + "/out"])
        #expect(r.status != 0, "\(r.out)")
        for layer in 0..<2 {
            #expect(r.err.contains("bert.encoder.layer.\(layer).intermediate.dense.weight is [32, 16], expected [48, 16]"), "\(r.err)")
            #expect(r.err.contains("bert.encoder.layer.\(layer).output.dense.weight is [16, 32], expected [16, 48]"))
        }
        #expect(r.err.contains("missing tensors: bert.encoder.layer.2.attention.self.query.weight"))
        #expect(r.err.contains("bert.encoder.layer.2.output.LayerNorm.bias"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/out"))
    }
}
