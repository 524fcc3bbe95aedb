import ArgumentParser
import BERT

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a checkpoint between our/Hugging Face safetensors, Google's TensorFlow and PyTorch formats.",
        discussion: """
        --from hf reads a model directory of ours or Hugging Face's (model.safetensors + config.json); --from tf \
        Google's original checkpoint (bert_model.ckpt.index + .data-00000-of-00001, Adam slots and global_step \
        skipped, every tensor's CRC-32C checked); --from pytorch a torch.save file (HF's pytorch_model.bin, or NVIDIA's \
        ckpt_<step>.pt whose optimizer and master params are skipped, dense_act names and vocabulary padding undone), \
        read without Python: its pickle may only hold tensors, anything else is refused, never run. --from auto (the \
        default) tells them apart. tf and pytorch sources take their config from --config-file or from a \
        bert_config.json / config.json beside them. Every tensor is checked against the config: all missing, \
        unexpected and mis-shaped tensors are listed in one error. --to hf and --to ours write model.safetensors + \
        config.json, --to tf bert_model.ckpt.* + bert_config.json, --to pytorch pytorch_model.bin + config.json; the \
        directory appears only once complete.
        """)

    @Option(help: "auto, hf, tf or pytorch.") var from: String = "auto"
    @Option(help: "hf, ours (the same format), tf or pytorch.") var to: String
    @Option(help: "The checkpoint: a directory, a TensorFlow .index file or prefix, or a torch.save file.") var checkpoint: String
    @Option(help: "A new (or empty) directory to write.") var output: String
    @Option(help: "The model's config (bert_config.json / config.json) when the checkpoint has none beside it.") var configFile: String?

    func run() throws {
        guard let target = CheckpointFormat(rawValue: to == "ours" ? "hf" : to) else { throw ValidationError("--to must be hf, ours, tf or pytorch") }
        guard from == "auto" || CheckpointFormat(rawValue: from) != nil else { throw ValidationError("--from must be auto, hf, tf or pytorch") }
        let summary = try CheckpointConversion.convert(checkpoint: checkpoint, from: CheckpointFormat(rawValue: from), to: target,
                                                       output: output, configFile: configFile)
        let skipped = summary.skipped > 0 ? "; \(summary.skipped) optimizer/trainer entries skipped" : ""
        print("wrote \(output) (\(summary.architecture), \(summary.tensors) tensors\(skipped))")
    }
}
