import ArgumentParser
import BERT
import BERTKernels
import Foundation

/// `bert fill-mask`: the masked-LM head's top guesses for each `[MASK]`, as transformers' fill-mask pipeline.
struct FillMaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fill-mask",
        abstract: "Print the most probable tokens for each [MASK] in a text, with their probabilities.",
        discussion: """
            Texts come as arguments, or one per line from --input (- for standard input; blank lines are skipped). \
            Each is encoded as [CLS] text [SEP]; the probabilities are the softmax over the whole vocabulary at \
            each masked position, as transformers' fill-mask pipeline computes them. With --json each text \
            becomes one JSON line: a list per [MASK] of {"score", "token", "token_str"}, most probable first.
            """)

    @Option(help: "A checkpoint with a masked-LM head (ours, or HF BertForPreTraining / BertForMaskedLM).") var checkpoint: String
    @Option(help: "The vocabulary (default: vocab.txt in the checkpoint directory).") var vocabFile: String?
    @Option(parsing: .unconditional, help: "Guesses per [MASK].") var topK = 5
    @Option(help: "A file of texts, one per line (- for standard input).") var input: String?
    @Flag(help: "Keep case and accents (a cased model; default: tokenizer_config.json's do_lower_case, else uncased).") var cased = false
    @Flag(help: "One JSON line per text instead of the readable listing.") var json = false
    @Option(parsing: .unconditional, help: "Threads (default: all cores).") var threads: Int?
    @Argument(help: "Texts containing [MASK].") var texts: [String] = []

    func validate() throws {
        guard topK >= 1 else { throw ValidationError("--top-k must be at least 1, not \(topK)") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, not \(threads)") }
        guard texts.isEmpty != (input == nil) else {
            throw ValidationError("give the texts either as arguments or with --input, one of the two")
        }
    }

    func run() throws {
        if let threads { Parallel.setThreadCount(threads) }
        let lines = try texts.isEmpty ? readLines(input!) : texts
        guard !lines.isEmpty else { throw ValidationError("\(input!): no text to fill") }
        let filler = try FillMask(checkpoint: checkpoint, vocabFile: vocabFile, lowercase: cased ? false : nil)
        let results = try filler.predict(lines, topK: topK)
        var out = ""
        for (text, masks) in zip(lines, results) {
            if json {
                let object = masks.map { $0.map { ["score": $0.score, "token": $0.tokenId, "token_str": $0.token] as [String: Any] } }
                out += String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self) + "\n"
            } else {
                out += text + "\n"
                for (k, candidates) in masks.enumerated() {
                    let guesses = candidates.map { $0.token + String(format: " %.4f", $0.score) }.joined(separator: " · ")
                    out += "  [MASK] \(k + 1): \(guesses)\n"
                }
            }
        }
        try TokenizeCommand.writeStandardOutput(Array(out.utf8))
    }

    /// The non-blank lines of `path` (`-`: standard input).
    private func readLines(_ path: String) throws -> [String] {
        let data: Data
        if path == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
                  let contents = FileManager.default.contents(atPath: path) else {
                throw ValidationError("--input \(path): not a readable file")
            }
            data = contents
        }
        return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
            .map { String($0.trimmingCharacters(in: .whitespacesAndNewlines)) }.filter { !$0.isEmpty }
    }
}
