import ArgumentParser
import BERTKernels

/// `bert`: one program for the whole life of a BERT model.
@main
struct BertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bert",
        abstract: "BERT pre-training, fine-tuning and inference.",
        subcommands: [
            BenchCommand.self,
            TokenizeCommand.self,
            VocabCommand.self,
            PrepareCommand.self,
            PretrainCommand.self,
            EvalMLMCommand.self,
            FillMaskCommand.self,
            PlotCommand.self,
            EvaluateCommand.self,
            CommCheckCommand.self,
            ConvertCommand.self,
            FinetuneCommand.self,
            PredictCommand.self,
        ]
    )

    static func main() {
        BLASCore.restartWithFastKernelsIfNeeded()
        main(nil)
    }
}
