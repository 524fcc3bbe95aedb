import ArgumentParser
import BERT
import Foundation

/// `bert evaluate`: score predictions against a task's gold answers.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Score predictions against gold answers (SQuAD v1.1 EM/F1, MRPC accuracy/F1).",
        subcommands: [EvaluateSQuADCommand.self, EvaluateMRPCCommand.self])
}

/// `bert evaluate squad`: the official SQuAD v1.1 evaluation.
struct EvaluateSQuADCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "squad",
        abstract: "Exact match and F1 of predictions.json against a SQuAD v1.1 file.",
        discussion: """
            Prints {"exact_match": …, "f1": …} as the official evaluate-v1.1.py does: answers are \
            lower-cased, stripped of ASCII punctuation, of the words a/an/the and of extra whitespace; \
            each prediction is scored against every gold answer and the best kept; questions without a \
            prediction count as 0 (and are reported on standard error).
            """)

    @Option(help: "The SQuAD v1.1 JSON file (e.g. dev-v1.1.json).")
    var dataset: String

    @Option(help: "The predictions: a JSON object of question id to answer text (predictions.json).")
    var predictions: String

    func run() throws {
        let data = try SQuADDataset(contentsOf: dataset)
        if data.version != "1.1" {
            warn("evaluation expects SQuAD v1.1; \(dataset) has version \(data.version ?? "none")")
        }
        let answers = try SQuADEvaluation.readPredictions(contentsOf: predictions)
        let score = SQuADEvaluation.evaluate(dataset: data, predictions: answers)
        if !score.unanswered.isEmpty {
            let shown = score.unanswered.prefix(5).joined(separator: ", ")
            let more = score.unanswered.count > 5 ? ", …" : ""
            warn("\(score.unanswered.count) of \(score.questionCount) questions have no prediction and score 0 (\(shown)\(more))")
        }
        print(score.json)
    }
}

/// `bert evaluate mrpc`: accuracy and F1 of paraphrase predictions.
struct EvaluateMRPCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mrpc",
        abstract: "Accuracy and F1 (positive class 1) of MRPC predictions against a GLUE dev TSV.",
        discussion: """
            The predictions file holds one label (0 or 1) per example in dataset order, either alone on \
            each line or in the last column of GLUE's submission format ("index<TAB>prediction", header \
            line allowed). Prints {"accuracy": …, "f1": …, "count": …}.
            """)

    @Option(help: "The GLUE MRPC file with labels (dev.tsv).")
    var dataset: String

    @Option(help: "The predictions TSV.")
    var predictions: String

    func run() throws {
        let examples = try GLUE.readMRPC(contentsOf: dataset, set: "dev")
        var rows = try GLUE.readTSV(contentsOf: predictions).filter { !($0.count == 1 && $0[0].isEmpty) }
        if let first = rows.first, let last = first.last, !GLUE.mrpcLabels.contains(last) { rows.removeFirst() }
        guard rows.count == examples.count else {
            throw ValidationError(
                "predictions \(predictions): \(rows.count) predictions for \(examples.count) examples in \(dataset)")
        }
        var predicted: [Int] = []
        for (i, row) in rows.enumerated() {
            guard let value = row.last, let label = GLUE.mrpcLabels.firstIndex(of: value) else {
                throw ValidationError("predictions \(predictions): prediction \(i + 1) is \"\(row.last ?? "")\", not 0 or 1")
            }
            predicted.append(label)
        }
        let gold = try examples.map { example -> Int in
            guard let label = example.label, let index = GLUE.mrpcLabels.firstIndex(of: label) else {
                throw ValidationError("\(dataset): example \(example.guid) has label \"\(example.label ?? "")\", not 0 or 1")
            }
            return index
        }
        print(ClassificationMetrics(predictions: predicted, labels: gold, positive: 1).json)
    }
}

private func warn(_ message: String) {
    FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
}
