import Foundation
import Testing
@testable import BERT

/// Checkpoints of the task models: from a pre-training or `BertModel` checkpoint (fresh head, reported), saved and
/// reloaded byte for byte, and — when the reference Python is present — loaded by transformers.
@Suite struct HeadsCheckpointTests {
    let pretraining = fixture("core/tiny-gelu")

    @Test func pretrainingCheckpointInitialisesTheQuestionAnsweringEncoder() throws {
        let (model, report) = try BertForQuestionAnswering.load(directory: pretraining)
        #expect(report.missing == ["qa_outputs.weight", "qa_outputs.bias"])
        #expect(Set(report.skipped) == ["bert.pooler.dense.weight", "bert.pooler.dense.bias", "cls.predictions.bias",
                                        "cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
                                        "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias",
                                        "cls.seq_relationship.weight", "cls.seq_relationship.bias"])
        try expectCoreSequenceOutput(model)
    }

    @Test func pretrainingCheckpointInitialisesTheClassificationEncoder() throws {
        let (model, report) = try BertForSequenceClassification.load(directory: pretraining, labels: 4)
        #expect(report.missing == ["classifier.weight", "classifier.bias"])
        #expect(report.skipped.allSatisfy { $0.hasPrefix("cls.") } && report.skipped.count == 7)
        #expect(model.labelCount == 4)
        try expectCoreSequenceOutput(model)
        let io = try Safetensors.File(path: pretraining + "/io.safetensors"), t = try HeadsReferenceTests.tokens(io)
        _ = try model.forward(ClassificationBatch(batchSize: t.B, seqLength: t.S, inputIds: t.ids, segmentIds: t.segments, inputMask: t.mask))
        expectClose("pooled_output", model.pooledOutput(), try io.floats("pooled_output"), tolerance: 1e-5)
        // Without `labels` the config decides, and a pre-training config names none: HF's default, 2.
        #expect(try BertForSequenceClassification.load(directory: pretraining).0.labelCount == 2)
    }

    /// A loaded model draws BERT's initialisation only for what the checkpoint lacks, and draws the values a model
    /// initialised whole has there (each tensor has its own stream); the vocabulary padding stays zero.
    @Test func freshHeadsOfALoadedModelAreTheWholeInitialisations() throws {
        let (loaded, _) = try BertForSequenceClassification.load(directory: pretraining, labels: 3)
        let whole = try BertForSequenceClassification(config: loaded.config, labels: 3)
        let (w, f) = (loaded.parameters.array(), whole.parameters.array())
        for name in ["classifier.weight", "classifier.bias"] {
            let t = loaded.layout[name]
            #expect(Array(w[t.offset..<(t.offset + t.count)]) == Array(f[t.offset..<(t.offset + t.count)]), "\(name)")
        }
        #expect(w[loaded.layout.offset("classifier.weight")] != 0)
        let word = loaded.layout["bert.embeddings.word_embeddings.weight"]
        #expect(word.storedCount > word.count && w[(word.offset + word.count)..<(word.offset + word.storedCount)].allSatisfy { $0 == 0 })
        let (qa, _) = try BertForQuestionAnswering.load(directory: pretraining)
        let qaWhole = try BertForQuestionAnswering(config: qa.config)
        let head = qa.layout["qa_outputs.weight"]
        #expect(Array(qa.parameters.array()[head.offset..<(head.offset + head.count)])
                == Array(qaWhole.parameters.array()[head.offset..<(head.offset + head.count)]))
    }

    /// A `BertModel` checkpoint (encoder names without `bert.`, no heads) initialises the encoder too.
    @Test func bareEncoderCheckpointLoads() throws {
        let dir = try editedCheckpoint(pretraining) { tensors in
            tensors.filter { $0.0.hasPrefix("bert.") }.map { (String($0.0.dropFirst(5)), $0.1, $0.2) }
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (qa, qaReport) = try BertForQuestionAnswering.load(directory: dir)
        #expect(qaReport.missing == ["qa_outputs.weight", "qa_outputs.bias"])
        #expect(Set(qaReport.skipped) == ["pooler.dense.weight", "pooler.dense.bias"])
        try expectCoreSequenceOutput(qa)
        let (_, classificationReport) = try BertForSequenceClassification.load(directory: dir, labels: 2)
        #expect(classificationReport.missing == ["classifier.weight", "classifier.bias"] && classificationReport.skipped.isEmpty)
    }

    /// The encoder loaded from the core fixture gives the core fixture's sequence output.
    func expectCoreSequenceOutput(_ model: BertModelBase, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let io = try Safetensors.File(path: pretraining + "/io.safetensors")
        let shape = try io.entry("input_ids").shape
        let output = try model.encode(inputIds: try io.ints("input_ids"), segmentIds: try io.ints("segment_ids"),
                                      inputMask: try io.ints("input_mask"), batchSize: shape[0], seqLength: shape[1])
        expectClose("sequence_output", output, try io.floats("sequence_output"), tolerance: 1e-5, sourceLocation: sourceLocation)
    }

    @Test(arguments: ["qa", "classification"])
    func saveLoadSaveIsByteIdentical(task: String) throws {
        let dir = try temporaryDirectory("bert-heads")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = fixture("heads/\(task)")
        let load: (String) throws -> (BertModelBase, LoadReport) = task == "qa"
            ? { try BertForQuestionAnswering.load(directory: $0) } : { try BertForSequenceClassification.load(directory: $0) }
        let (model, _) = try load(source)
        try model.save(directory: dir + "/a")
        let (again, report) = try load(dir + "/a")
        #expect(report.missing.isEmpty && report.skipped.isEmpty)
        #expect(again.parameters.array() == model.parameters.array())
        try again.save(directory: dir + "/b")
        for file in [Checkpoint.weightsFile, Checkpoint.configFile] {
            #expect(FileManager.default.contents(atPath: dir + "/a/" + file) == FileManager.default.contents(atPath: dir + "/b/" + file), "\(file)")
        }
        let theirs = try Safetensors.File(path: source + "/model.safetensors"), ours = try Safetensors.File(path: dir + "/a/model.safetensors")
        #expect(Set(theirs.entries.keys) == Set(ours.entries.keys))
        for name in theirs.entries.keys { #expect(try theirs.floats(name) == ours.floats(name)) }
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/a/config.json"))) as? [String: Any]
        #expect(config?["architectures"] as? [String] == [task == "qa" ? "BertForQuestionAnswering" : "BertForSequenceClassification"])
        if task == "classification" {
            #expect(config?["num_labels"] as? Int == 3 && (config?["id2label"] as? [String: String])?["2"] == "LABEL_2")
        }
    }

    @Test func classifierForOtherLabelsIsAShapeError() throws {
        #expect(throws: BertError.self) { try BertForSequenceClassification.load(directory: fixture("heads/classification"), labels: 2) }
        do { _ = try BertForSequenceClassification.load(directory: fixture("heads/classification"), labels: 2) } catch {
            #expect("\(error)".contains("classifier.weight is [3, 64], expected [2, 64]"))
        }
    }

    /// Our saved directories load in transformers' `from_pretrained` with no missing or unexpected keys and give the
    /// fixture's outputs (scripts/reference/heads.py --check), when a Python with torch and transformers is at hand:
    /// `BERT_REFERENCE_PYTHON`, else `.venv-ref/bin/python` in the package.
    @Test func savedCheckpointsLoadInTransformers() throws {
        let python = ProcessInfo.processInfo.environment["BERT_REFERENCE_PYTHON"] ?? packageRoot + "/.venv-ref/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            print("note: \(python) is absent (set BERT_REFERENCE_PYTHON); the transformers loading check is skipped")
            return
        }
        let dir = try temporaryDirectory("bert-heads-hf")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try BertForQuestionAnswering.load(directory: fixture("heads/qa")).0.save(directory: dir + "/qa")
        try BertForSequenceClassification.load(directory: fixture("heads/classification")).0.save(directory: dir + "/classification")
        try BertForQuestionAnswering.load(directory: pretraining).0.save(directory: dir + "/qa-fresh")
        try BertForSequenceClassification.load(directory: pretraining, labels: 5).0.save(directory: dir + "/classification-fresh")
        for (saved, io) in [("qa", "heads/qa"), ("classification", "heads/classification"), ("qa-fresh", nil), ("classification-fresh", nil)] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = [packageRoot + "/scripts/reference/heads.py", "--check", dir + "/" + saved]
                + (io.map { ["--io", fixture($0 + "/io.safetensors")] } ?? [])
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            print(text.trimmingCharacters(in: .whitespacesAndNewlines).components(separatedBy: "\n").last ?? "")
            #expect(process.terminationStatus == 0, "\(saved): \(text)")
        }
    }
}
