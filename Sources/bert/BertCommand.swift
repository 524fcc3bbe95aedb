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
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: oneLine(error))
        }
        // What a command printed may sit in stdio's buffer until now, and a write that failed on the way (a full
        // disk) keeps failing here: the run must not end as a success with its output missing.
        if fflush(nil) != 0 {
            FileHandle.standardError.write(Data("bert: cannot write to standard output: \(String(cString: strerror(errno)))\n".utf8))
            Foundation.exit(1)
        }
    }

    /// Foundation's file errors as one line naming the operation, the file and the cause; their own text is a dump
    /// of codes and dictionaries ("Error Domain=NSCocoaErrorDomain Code=512 … NSPOSIXErrorDomain Code=20").
    static func oneLine(_ error: Error) -> Error {
        guard !(error is BertError) else { return error }
        let ns = error as NSError
        guard ns.domain == NSCocoaErrorDomain else { return error }
        let path = ns.userInfo[NSFilePathErrorKey] as? String ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path ?? "a file"
        let operation = (256..<512).contains(ns.code) ? "cannot read" : (512..<1024).contains(ns.code) ? "cannot write" : "cannot use"
        let cause: String
        if let underlying = ns.userInfo[NSUnderlyingErrorKey].map({ $0 as AnyObject as? Error }) ?? nil,
           (underlying as NSError).domain == NSPOSIXErrorDomain {
            cause = String(cString: strerror(Int32((underlying as NSError).code)))
        } else {
            switch ns.code {
            case 4, 260: cause = "No such file or directory"
            case 257, 513: cause = "Permission denied"
            case 516: cause = "it already exists"
            case 640: cause = "No space left on device"
            case 642: cause = "Read-only file system"
            default: cause = ns.localizedDescription.split(separator: "\n").first.map(String.init) ?? "error \(ns.code)"
            }
        }
        return BertError.io("\(operation) \(path): \(cause)")
    }
}
