import ArgumentParser
import BERT
import BERTKernels
import Foundation

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
            PackCommand.self,
            WikiextractCommand.self,
            PretrainCommand.self,
            EvalMLMCommand.self,
            FillMaskCommand.self,
            PlotCommand.self,
            EvaluateCommand.self,
            CommCheckCommand.self,
            CheckDeviceCommand.self,
            ConvertCommand.self,
            FinetuneCommand.self,
            PredictCommand.self,
        ]
    )

    /// Commands that multiply no matrices: they keep the kernels OpenBLAS chose rather than pay for starting twice
    /// (a fifth of a small `bert prepare`). The others restart only when OpenBLAS runs their GEMMs (`BERT_GEMM`).
    static let withoutGEMMs: [ParsableCommand.Type] = [TokenizeCommand.self, VocabCommand.self, PrepareCommand.self,
                                                        PackCommand.self, WikiextractCommand.self, PlotCommand.self,
                                                        EvaluateCommand.self]

    static func main() {
        let subcommand = CommandLine.arguments.dropFirst().first
        if let engine = ProcessInfo.processInfo.environment["BERT_GEMM"], GEMM.Engine(rawValue: engine) == nil {
            FileHandle.standardError.write(Data("bert: BERT_GEMM=\(engine) names no GEMM library; use onednn or openblas\n".utf8))
            Foundation.exit(2)
        }
        if GEMM.Engine.selected == .openblas, !withoutGEMMs.contains(where: { $0.configuration.commandName == subcommand }) {
            BLASCore.restartWithFastKernelsIfNeeded()
        }
        BLASCore.stopIdleWorkers()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: BertError.fromFoundation(error))
        }
        // What a command printed may sit in stdio's buffer until now, and a write that failed on the way (a full
        // disk) keeps failing here: the run must not end as a success with its output missing.
        if fflush(nil) != 0 {
            FileHandle.standardError.write(Data("bert: cannot write to standard output: \(String(cString: strerror(errno)))\n".utf8))
            Foundation.exit(1)
        }
    }
}
