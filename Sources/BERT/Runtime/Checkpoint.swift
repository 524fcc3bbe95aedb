import Foundation

/// What loading a checkpoint did: the tensors it set, the model tensors it did not find (left as initialised), and
/// the file's tensors it skipped (tied duplicates, buffers, or another model's heads when loading a task model).
public struct LoadReport: Sendable, Equatable {
    public var loaded: [String] = []
    public var missing: [String] = []
    public var skipped: [String] = []
}

/// Model checkpoints: a directory with `model.safetensors` (HF tensor names) and `config.json` (HF keys). Hugging Face
/// model directories load too, `BertModel` ones (no `bert.` prefix, no heads) included.
public enum Checkpoint {
    public static let weightsFile = "model.safetensors"
    public static let configFile = "config.json"

    /// Reads the `config.json` of a checkpoint directory.
    public static func config(in directory: String) throws -> BertConfig {
        let path = (directory as NSString).appendingPathComponent(configFile)
        guard FileManager.default.fileExists(atPath: path) else {
            throw BertError.invalidCheckpoint("\(directory) has no \(configFile): is it a checkpoint directory?")
        }
        return try BertConfig.load(contentsOf: path)
    }

    /// Copies the tensors of `file` into `buffer` (host memory laid out by `layout`) by name.
    /// - Parameters:
    ///   - allowMissing: model tensors that may be absent (heads initialised fresh); any other absent tensor is an error.
    ///   - allowUnexpected: file tensors the model does not have that are skipped (reported in `skipped`), by the
    ///     model's name for them (`bert.`-prefixed); any other such tensor is an error.
    /// - Throws: `BertError.invalidCheckpoint` listing every missing, unexpected and mis-shaped tensor by name, in one
    ///   message.
    public static func load(_ file: some TensorSource, into buffer: UnsafeMutablePointer<Float>, layout: ParameterLayout,
                            allowMissing: (String) -> Bool = { _ in false },
                            allowUnexpected: (String) -> Bool = { _ in false }) throws -> LoadReport {
        var report = LoadReport(), unexpected: [String] = [], misshapen: [String] = []
        var sources: [String: String] = [:]   // model name → file name
        let names = Set(file.tensorNames)
        for name in names.sorted() {
            // A `BertModel` checkpoint names the encoder's modules without the `bert.` prefix.
            let canonical = ["embeddings.", "encoder.", "pooler."].contains(where: name.hasPrefix) ? "bert." + name : name
            if ParameterLayout.ignoredBuffers.contains(canonical) { report.skipped.append(name); continue }
            if let target = ParameterLayout.aliases[canonical] {
                // A tied duplicate: use it only if the tensor it duplicates is absent.
                if names.contains(target) || names.contains(target.replacingOccurrences(of: "bert.", with: "")) {
                    report.skipped.append(name)
                } else {
                    sources[target] = name
                }
                continue
            }
            guard layout.contains(canonical) else {
                if allowUnexpected(canonical) { report.skipped.append(name) } else { unexpected.append(name) }
                continue
            }
            sources[canonical] = name
        }
        for tensor in layout.tensors {
            guard let source = sources[tensor.name] else { report.missing.append(tensor.name); continue }
            let shape = file.shape(of: source) ?? []
            guard shape == tensor.shape else {
                misshapen.append("\(source) is \(shape), expected \(tensor.shape)")
                continue
            }
            try file.copyFloats(source, into: buffer + tensor.offset)
            report.loaded.append(tensor.name)
        }
        let notAllowed = report.missing.filter { !allowMissing($0) }
        var problems: [String] = []
        if !misshapen.isEmpty { problems.append("shape mismatch: \(misshapen.joined(separator: "; ")) — does config.json match these weights?") }
        if !notAllowed.isEmpty { problems.append("missing tensors: \(notAllowed.joined(separator: ", "))") }
        if !unexpected.isEmpty { problems.append("unexpected tensors: \(unexpected.joined(separator: ", ")) — a checkpoint of another model type?") }
        if !problems.isEmpty { throw BertError.invalidCheckpoint("\(file.path): \(problems.joined(separator: "; "))") }
        return report
    }

    /// Writes `buffer` under HF names (checkpoint shapes: vocabulary padding dropped) to `path`, atomically.
    public static func writeWeights(_ buffer: UnsafePointer<Float>, layout: ParameterLayout, to path: String,
                                    metadata: [String: String] = ["format": "pt"]) throws {
        let tensors = layout.tensors.map { t in
            (t.name, Safetensors.Tensor.float(UnsafeBufferPointer(start: buffer + t.offset, count: t.count), shape: t.shape))
        }
        try Safetensors.write(tensors, metadata: metadata, to: path)
    }
}

extension BertForPreTraining {
    /// Loads a checkpoint directory (ours or Hugging Face's). Heads absent from the file — a `BertModel` checkpoint has
    /// none, a `BertForMaskedLM` one neither the NSP head nor the pooler that feeds it — keep their fresh
    /// initialisation only when `allowMissingHeads`; the report says which.
    public static func load(directory: String, allowMissingHeads: Bool = false,
                            backend: any Backend = CPUBackend.shared) throws -> (BertForPreTraining, LoadReport) {
        let model = try BertForPreTraining(config: try Checkpoint.config(in: directory), backend: backend,
                                           initialized: false)
        let report = try model.loadWeights(directory: directory, allowMissing: {
            allowMissingHeads && (!$0.hasPrefix("bert.") || $0.hasPrefix("bert.pooler."))
        })
        return (model, report)
    }
}
