import ArgumentParser
import BERT

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Write a checkpoint as a clean model directory that transformers and bert both load.",
        discussion: """
        Our checkpoints use Hugging Face's tensor names and config keys, so --to hf and --to ours write the same files: \
        model.safetensors and config.json (naming BertForPreTraining, BertForQuestionAnswering or \
        BertForSequenceClassification), checked tensor by tensor against the config, without the optimizer state a \
        pre-training checkpoint carries. HF directories must hold model.safetensors (not pytorch_model.bin).
        """)

    @Option(help: "hf or ours (the same format; both validate and clean the directory).") var to: String
    @Option(help: "The checkpoint directory to convert.") var checkpoint: String
    @Option(help: "A new (or empty) directory to write.") var output: String

    func run() throws {
        guard to == "hf" || to == "ours" else { throw ValidationError("--to must be hf or ours") }
        let architecture = try CheckpointConversion.convert(checkpoint: checkpoint, to: output)
        print("wrote \(output) (\(architecture))")
    }
}
