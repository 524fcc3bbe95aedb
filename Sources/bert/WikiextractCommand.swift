import ArgumentParser
import BERT
import Foundation

/// `bert wikiextract`: a Wikipedia XML dump → WikiExtractor's output files, for pipelines that keep extraction as
/// its own step (NVIDIA's bertPrep.py runs `WikiExtractor.py <dump> -b 100M -o <dir>`).
struct WikiextractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wikiextract",
        abstract: "Extract article text from a Wikipedia XML dump in WikiExtractor's <doc> format.",
        discussion: """
            Reads a MediaWiki XML export (plain or .bz2, multistream too) and writes <output>/AA/wiki_00, \
            wiki_01, … with WikiExtractor's cleaning (articles only, templates, tables, references and lists \
            dropped, link text kept). `bert prepare --input-format wikiextractor` reads the result; `bert prepare \
            --input-format wikipedia-xml` reads the dump directly. The output directory must be new or empty; it \
            appears only once complete.
            """)

    @Option(help: "The dump: pages-articles.xml or .xml.bz2.")
    var input: String

    @Option(help: "The output directory (new or empty).")
    var output: String

    @Option(help: "Maximum bytes per output file, n[KMG] as WikiExtractor's --bytes (0: one article a file).")
    var bytes = "1M"

    @Option(help: "Worker threads.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        if Self.parseSize(bytes) == nil { throw ValidationError("--bytes takes a size such as 1M, 100M, 500K or 0") }
        if threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// `n[KMG]` (powers of 1024, as WikiExtractor reads them) or a plain byte count.
    static func parseSize(_ text: String) -> Int? {
        guard let last = text.last else { return nil }
        let power = ["k": 1, "m": 2, "g": 3][last.lowercased()]
        guard let n = Int(power == nil ? text : String(text.dropLast())), n >= 0 else { return nil }
        return n << (10 * (power ?? 0))
    }

    func run() throws {
        let start = Date()
        let summary = try WikiExtractorWriter.extract(dump: input, to: output, maxFileBytes: Self.parseSize(bytes)!,
                                                      threads: threads)
        let seconds = Date().timeIntervalSince(start)
        let inputBytes = (try? FileManager.default.attributesOfItem(atPath: input)[.size] as? Int) ?? 0
        print(String(format: "wikiextract: %d articles in %d files (%.1f MB of text) in %@, %.2f s (%.1f MB of dump/s)",
                     summary.articles, summary.files, Double(summary.bytes) / 1e6, output, seconds,
                     Double(inputBytes) / 1e6 / max(seconds, 1e-9)))
    }
}
