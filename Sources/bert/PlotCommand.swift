import ArgumentParser
import BERT
import Foundation

/// `bert plot`: training curves of one or more metrics logs (`--json-summary`) as one SVG.
struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Plot the training curves of metrics logs (--json-summary files) as an SVG.",
        discussion: """
            Two panels over a shared step axis: the loss (loss; mlm_loss and nsp_loss thinner; eval_loss as \
            dots), then the eval MLM and NSP accuracy (or the learning rate when no log has eval points). \
            Several logs are overlaid, one colour each, to compare runs. NaN/inf values are skipped and counted \
            in a footnote; series of more than 2000 points are thinned. The SVG is self-contained: open it in \
            any browser.
            """)

    @Argument(help: "Metrics logs: one JSON object per line (train, eval and summary records).")
    var files: [String]

    @Option(name: .shortAndLong, help: "Where to write the SVG.")
    var output: String

    @Option(help: "The plot's title (default: the file names).")
    var title: String?

    func validate() throws {
        if files.isEmpty { throw ValidationError("plot: give at least one metrics log") }
    }

    func run() throws {
        let directory = URL(fileURLWithPath: output).deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw BertError.io("\(output): the directory \(directory) does not exist")
        }
        let names = Self.legendNames(files)
        let runs = try zip(files, names).map { file, name in
            let records = try MetricsLog.read(path: file)
            guard records.contains(where: { $0.kind != .summary }) else {
                throw BertError.invalidInput("\(file): no train or eval records (an empty log?)")
            }
            return CurvePlot.Run(name: name, records: records)
        }
        let svg = try CurvePlot(runs: runs, title: title ?? names.joined(separator: " vs ")).svg()
        try writeAtomically(output) { try $0.write(contentsOf: Data(svg.utf8)) }
        print(output)
    }

    /// Each file's name in the legend: its last path component, or the path as given when two logs share a name.
    static func legendNames(_ files: [String]) -> [String] {
        let last = files.map { URL(fileURLWithPath: $0).lastPathComponent }
        return Set(last).count == last.count ? last : files
    }
}
