import Foundation

/// `bert convert`: a checkpoint directory of ours (a pre-training `ckpt_<step>/` included) or of Hugging Face's, to a
/// clean model directory — `model.safetensors` with HF names and checkpoint shapes, `config.json` naming the HF class —
/// that both `transformers`' `from_pretrained` and every `bert` command load. Our format is HF's, so the two directions
/// write the same files: converting validates the weights against the config (every tensor present, none unknown, the
/// right shapes) and drops what a model directory does not need (optimizer moments, trainer state).
public enum CheckpointConversion {
    /// The model classes a directory can hold (`config.json`'s `architectures`; BertForPreTraining when it names none).
    public static let architectures = ["BertForPreTraining", "BertForQuestionAnswering", "BertForSequenceClassification"]

    /// The class `directory`'s `config.json` names.
    /// - Throws: for a headless `BertModel` (nothing to convert it into) or a class we do not implement.
    public static func architecture(of directory: String) throws -> String {
        let path = (directory as NSString).appendingPathComponent(Checkpoint.configFile)
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw BertError.invalidCheckpoint("\(path) is missing or not a JSON object")
        }
        let declared = (object["architectures"] as? [String])?.first ?? "BertForPreTraining"
        if declared == "BertModel" {
            throw BertError.invalidCheckpoint("\(directory) holds a BertModel (no heads): use it as --init-checkpoint of a task instead")
        }
        guard architectures.contains(declared) else {
            throw BertError.invalidCheckpoint("\(path): architecture \(declared) is not one of \(architectures.joined(separator: ", "))")
        }
        return declared
    }

    /// Loads `checkpoint` whole (a missing head is an error here, unlike `--init-checkpoint`) and writes it to `output`,
    /// which must not exist or be empty. The vocabulary file, if the checkpoint has one, is copied along.
    /// - Returns: the architecture written.
    @discardableResult
    public static func convert(checkpoint: String, to output: String) throws -> String {
        let fm = FileManager.default
        if let entries = try? fm.contentsOfDirectory(atPath: output), !entries.isEmpty {
            throw BertError.invalidInput("--output \(output) is not empty; choose a new directory")
        }
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
        try model.save(directory: output)
        let vocab = (checkpoint as NSString).appendingPathComponent("vocab.txt")
        if fm.fileExists(atPath: vocab) { try fm.copyItem(atPath: vocab, toPath: (output as NSString).appendingPathComponent("vocab.txt")) }
        return architecture
    }
}
