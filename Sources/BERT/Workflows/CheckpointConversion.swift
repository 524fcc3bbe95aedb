import Foundation

/// The checkpoint formats `bert convert` reads and writes.
public enum CheckpointFormat: String, CaseIterable, Sendable {
    /// A model directory of ours or Hugging Face's: `model.safetensors` + `config.json`.
    case hf
    /// Google's original TensorFlow checkpoint: `bert_model.ckpt.index` + `.data-00000-of-00001` + `bert_config.json`.
    case tf
    /// A `torch.save` file: HF's `pytorch_model.bin` or NVIDIA's `ckpt_<step>.pt`, with `config.json` /
    /// `bert_config.json` beside it.
    case pytorch

    /// The format of the checkpoint at `path` (a directory or a file), from the files it holds.
    /// - Throws: when none of the three is recognised, naming what was looked for.
    public static func detect(_ path: String) throws -> CheckpointFormat {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) || FileManager.default.fileExists(atPath: path + ".index") else {
            throw BertError.io("--checkpoint \(path): no such file or directory")
        }
        if isDirectory.boolValue {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            if files.contains(Checkpoint.weightsFile) { return .hf }
            if files.contains(where: { $0.hasSuffix(".index") }) { return .tf }
            if files.contains(where: { $0.hasSuffix(".bin") || $0.hasSuffix(".pt") }) { return .pytorch }
            if files.contains(Checkpoint.configFile) { return .hf }     // its loader names what the directory lacks
        } else if path.hasSuffix(".index") || FileManager.default.fileExists(atPath: path + ".index") {
            return .tf
        } else if let head = FileHandle(forReadingAtPath: path)?.readData(ofLength: 2), head == Data([0x50, 0x4B]) || head == Data([0x80, 0x02]) {
            return .pytorch
        }
        throw BertError.invalidCheckpoint("\(path): neither a model directory (model.safetensors), a TensorFlow checkpoint (*.index) nor a torch.save file; name the format with --from")
    }
}

/// `bert convert`: a checkpoint in one format to a clean model directory in another, through a model of the config's
/// shapes. Every tensor is checked by name and shape on the way in (all missing, unexpected and mis-shaped tensors
/// are listed in one error) and what a model does not need — optimizer moments and slots, trainer state — is left
/// behind. The output directory is written under a temporary name and renamed when complete.
///
/// | format | reads | writes |
/// | --- | --- | --- |
/// | `hf` | ours or HF's `model.safetensors` (pre-training, QA, classification) | `model.safetensors`, `config.json` |
/// | `tf` | Google's `*.ckpt.index` + data (pre-training) | `bert_model.ckpt.index` + `.data-00000-of-00001`, `bert_config.json` |
/// | `pytorch` | HF's `pytorch_model.bin`, NVIDIA's `ckpt_*.pt` (pre-training) | `pytorch_model.bin`, `config.json` |
public enum CheckpointConversion {
    /// The model classes a directory can hold (`config.json`'s `architectures`; BertForPreTraining when it names none).
    public static let architectures = ["BertForPreTraining", "BertForQuestionAnswering", "BertForSequenceClassification"]
    /// The prefix of the TensorFlow checkpoint written (Google's name).
    public static let tfPrefix = "bert_model.ckpt"
    public static let tfConfigFile = "bert_config.json"
    public static let torchFile = "pytorch_model.bin"

    /// What a conversion did.
    public struct Summary: Sendable {
        public var architecture: String
        public var tensors: Int
        /// Source entries not converted: optimizer state and trainer state.
        public var skipped: Int
    }

    /// The class `directory`'s `config.json` names.
    /// - Throws: for a headless `BertModel` (nothing to convert it into) or a class we do not implement.
    public static func architecture(of directory: String) throws -> String {
        try architecture(configFile: (directory as NSString).appendingPathComponent(Checkpoint.configFile))
    }

    /// The class a config file names (BertForPreTraining when it names none).
    static func architecture(configFile path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw BertError.invalidCheckpoint("\(path) is missing or not a JSON object")
        }
        let declared = (object["architectures"] as? [String])?.first ?? "BertForPreTraining"
        if declared == "BertModel" {
            throw BertError.invalidCheckpoint("\(path) describes a BertModel (no heads): use it as --init-checkpoint of a task instead")
        }
        guard architectures.contains(declared) else {
            throw BertError.invalidCheckpoint("\(path): architecture \(declared) is not one of \(architectures.joined(separator: ", "))")
        }
        return declared
    }

    /// Reads `checkpoint` in format `from` (detected when nil), checks it whole against its config (`configFile`, or
    /// the one beside the checkpoint) and writes it in format `to` as the new directory `output`, which must not
    /// exist or be empty. A `vocab.txt` beside the checkpoint is copied along.
    @discardableResult
    public static func convert(checkpoint: String, from: CheckpointFormat? = nil, to: CheckpointFormat, output: String,
                               configFile: String? = nil) throws -> Summary {
        let fm = FileManager.default
        if let entries = try? fm.contentsOfDirectory(atPath: output), !entries.isEmpty {
            throw BertError.invalidInput("--output \(output) is not empty; choose a new directory")
        }
        if sourceDirectory(output) != output, fm.fileExists(atPath: output) {
            throw BertError.invalidInput("--output \(output) is a file; choose a new directory")
        }
        let (model, skipped) = try load(checkpoint, format: try from ?? CheckpointFormat.detect(checkpoint), configFile: configFile)
        let temporary = output + ".tmp-\(ProcessInfo.processInfo.processIdentifier)"
        try? fm.removeItem(atPath: temporary)
        do {
            try fm.createDirectory(atPath: temporary, withIntermediateDirectories: true)
            try write(model, format: to, directory: temporary)
            let vocab = (sourceDirectory(checkpoint) as NSString).appendingPathComponent("vocab.txt")
            if fm.fileExists(atPath: vocab) { try fm.copyItem(atPath: vocab, toPath: (temporary as NSString).appendingPathComponent("vocab.txt")) }
            try? fm.removeItem(atPath: output)     // empty, checked above
            guard rename(temporary, output) == 0 else { throw BertError.io("cannot rename \(temporary) to \(output)") }
        } catch {
            try? fm.removeItem(atPath: temporary)
            throw BertError.fromFoundation(error, path: output)
        }
        return Summary(architecture: model.architecture, tensors: model.layout.tensors.count, skipped: skipped)
    }

    /// The directory a checkpoint path lies in (itself for a directory).
    static func sourceDirectory(_ path: String) -> String {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
            ? path : (path as NSString).deletingLastPathComponent
    }

    /// The model `checkpoint` holds, loaded whole, and the number of source entries skipped.
    static func load(_ checkpoint: String, format: CheckpointFormat, configFile: String?) throws -> (BertModelBase, Int) {
        switch format {
        case .hf:
            let architecture = try architecture(of: checkpoint)
            let model: BertModelBase, report: LoadReport
            switch architecture {
            case "BertForQuestionAnswering": (model, report) = try BertForQuestionAnswering.load(directory: checkpoint)
            case "BertForSequenceClassification": (model, report) = try BertForSequenceClassification.load(directory: checkpoint)
            default: (model, report) = try BertForPreTraining.load(directory: checkpoint)
            }
            guard report.missing.isEmpty else {
                throw BertError.invalidCheckpoint("\(checkpoint) lacks tensors of its \(architecture): \(report.missing.joined(separator: ", "))")
            }
            return (model, report.skipped.count)
        case .tf, .pytorch:
            let configPath = try self.configFile(configFile, near: sourceDirectory(checkpoint))
            let architecture = try architecture(configFile: configPath)
            guard architecture == "BertForPreTraining" else {
                throw BertError.invalidCheckpoint("\(configPath) names \(architecture); \(format.rawValue) checkpoints convert as BertForPreTraining only")
            }
            // Every tensor comes from the checkpoint (a missing one is an error), so nothing is drawn first.
            let model = try BertForPreTraining(config: try BertConfig.load(contentsOf: configPath), initialized: false)
            let (tensors, skipped) = format == .tf
                ? try googleTensors(prefix: try tfPrefix(checkpoint), layout: model.layout)
                : try torchTensors(file: try torchFile(checkpoint), config: model.config)
            _ = try model.parameters.withHostFloats { try Checkpoint.load(tensors, into: $0, layout: model.layout) }
            return (model, skipped)
        }
    }

    /// `explicit`, else `bert_config.json` or `config.json` in `directory`.
    static func configFile(_ explicit: String?, near directory: String) throws -> String {
        if let explicit { return explicit }
        for name in [tfConfigFile, Checkpoint.configFile] {
            let path = (directory as NSString).appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        throw BertError.invalidConfig("no \(tfConfigFile) or \(Checkpoint.configFile) in \(directory): pass the model's config with --config-file")
    }

    /// The bundle prefix of a TensorFlow checkpoint given as a directory (holding one `*.index`), an index file or a prefix.
    static func tfPrefix(_ path: String) throws -> String {
        if path.hasSuffix(".index") { return String(path.dropLast(".index".count)) }
        if FileManager.default.fileExists(atPath: path + ".index") { return path }
        let indexes = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasSuffix(".index") }.sorted()
        guard indexes.count == 1 else {
            throw BertError.invalidCheckpoint("\(path): \(indexes.isEmpty ? "no TensorFlow *.index file" : "\(indexes.count) TensorFlow *.index files (\(indexes.joined(separator: ", ")))"); name one with --checkpoint DIR/NAME.index")
        }
        return (path as NSString).appendingPathComponent(String(indexes[0].dropLast(".index".count)))
    }

    /// The `torch.save` file of a checkpoint given as a file or a directory (holding `pytorch_model.bin` or one `*.pt`).
    static func torchFile(_ path: String) throws -> String {
        guard sourceDirectory(path) == path else { return path }
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasSuffix(".bin") || $0.hasSuffix(".pt") }.sorted()
        let chosen = files.contains(torchFile) ? [torchFile] : files
        guard chosen.count == 1 else {
            throw BertError.invalidCheckpoint("\(path): \(files.isEmpty ? "no torch.save file (*.bin, *.pt)" : "\(files.count) torch.save files (\(files.joined(separator: ", ")))"); name one with --checkpoint")
        }
        return (path as NSString).appendingPathComponent(chosen[0])
    }

    /// A Google checkpoint's tensors under HF names and PyTorch shapes (kernels transposed), each CRC-checked; Adam
    /// slots and `global_step` skipped. A name with no HF counterpart is kept as is (shape `[0]`, no data), so that
    /// `Checkpoint.load` lists it as unexpected.
    static func googleTensors(prefix: String, layout: ParameterLayout) throws -> (TensorMap, Int) {
        let bundle = try TensorBundle(prefix: prefix)
        let ours = Dictionary(uniqueKeysWithValues: layout.tensors.map { (CheckpointNames.google($0.name).name, $0.name) })
        var map = TensorMap(path: TensorBundle.indexPath(prefix)), skipped = 0
        for name in bundle.entries.keys.sorted() {
            if CheckpointNames.isGoogleTrainingState(name) { skipped += 1; continue }
            guard let hf = ours[name] else { _ = map.add(name, shape: [0], values: []); continue }
            var shape = bundle.entries[name]!.shape, values = try bundle.floats(name)
            if CheckpointNames.google(hf).transposed, shape.count == 2 {
                values = transposed(values, rows: shape[0], columns: shape[1])
                shape.reverse()
            }
            _ = map.add(hf, shape: shape, values: values)
        }
        return (map, skipped)
    }

    /// A `torch.save` file's state dict under HF names (NVIDIA's `dense_act` and `module.` undone) with a vocabulary
    /// padded to a multiple of 8 cut back to the config's; the file's other top-level entries are skipped.
    static func torchTensors(file: String, config: BertConfig) throws -> (TensorMap, Int) {
        let checkpoint = try TorchCheckpoint(path: file)
        var map = TensorMap(path: file), sources: [String: String] = [:]
        for name in checkpoint.names {
            let hf = CheckpointNames.fromNVIDIA(name)
            var shape = checkpoint.shape(name) ?? [], values = try checkpoint.floats(name)
            if CheckpointNames.vocabularyRows.contains(hf), shape.first == config.paddedVocabSize, config.paddedVocabSize != config.vocabSize {
                values.removeLast((config.paddedVocabSize - config.vocabSize) * values.count / config.paddedVocabSize)
                shape[0] = config.vocabSize
            }
            guard map.add(hf, shape: shape, values: values) else {
                throw BertError.invalidCheckpoint("\(file): \(sources[hf] ?? hf) and \(name) are the same tensor \(hf)")
            }
            sources[hf] = name
        }
        return (map, checkpoint.skipped.count)
    }

    /// Writes `model` into `directory` in `format`.
    static func write(_ model: BertModelBase, format: CheckpointFormat, directory: String) throws {
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        let tensors = model.parameters.withHostFloats(writeBack: false) { p in
            model.layout.tensors.map { (name: $0.name, shape: $0.shape, values: Array(UnsafeBufferPointer(start: p + $0.offset, count: $0.count))) }
        }
        switch format {
        case .hf: try model.save(directory: directory)
        case .pytorch:
            try TorchCheckpoint.write(tensors, to: path(torchFile))
            try model.config.write(to: path(Checkpoint.configFile), architectures: [model.architecture], extra: model.checkpointConfigExtras)
        case .tf:
            guard model is BertForPreTraining else {
                throw BertError.invalidInput("\(model.architecture) has no Google TensorFlow layout; convert a BertForPreTraining checkpoint to tf")
            }
            let google = tensors.map { t in
                let (name, isTransposed) = CheckpointNames.google(t.name)
                return isTransposed ? (name, [t.shape[1], t.shape[0]], transposed(t.values, rows: t.shape[0], columns: t.shape[1])) : (name, t.shape, t.values)
            }
            try TensorBundle.write(google, prefix: path(tfPrefix))
            try model.config.write(to: path(tfConfigFile), architectures: [model.architecture])
        }
    }
}
