import ArgumentParser
import BERT
import Foundation

/// `bert vocab`: learn a WordPiece vocabulary (BERT's layout) from text files.
struct VocabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vocab",
        abstract: "Learn a WordPiece vocabulary from text files.",
        discussion: """
            Pre-tokenizes with BERT's basic tokenizer, counts words and learns merges by pair frequency (as \
            HF tokenizers' WordPieceTrainer). Output layout: [PAD], [unused0]…[unused98], [UNK], [CLS], \
            [SEP], [MASK], the characters, their ## forms, then the merged pieces. Lines starting with <doc \
            or </doc> (WikiExtractor) are skipped.
            """)

    @Option(name: .long, parsing: .upToNextOption, help: "Text files to learn from.")
    var input: [String]

    @Option(parsing: .unconditional, help: "Tokens in the vocabulary, reserved ones included.")
    var vocabSize: Int = 30522

    @Option(help: "Where to write vocab.txt.")
    var output: String

    @Flag(help: "Keep case and accents (cased models). The default lower-cases and strips accents.")
    var cased = false

    @Option(parsing: .unconditional, help: "A pair seen fewer times is never merged.")
    var minFrequency: Int = 2

    @Option(parsing: .unconditional, help: "Characters kept in the alphabet (the most frequent).")
    var limitAlphabet: Int = 1000

    @Option(help: "Threads for reading and pre-tokenizing.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        if input.isEmpty { throw ValidationError("vocab: give at least one --input file") }
        if vocabSize < 1 { throw ValidationError("vocab: --vocab-size must be positive") }
        for path in input where !FileManager.default.isReadableFile(atPath: path) {
            throw ValidationError("vocab: cannot read \(path)")
        }
    }

    func run() throws {
        let start = Date()
        let trainer = VocabularyTrainer(options: .init(
            vocabSize: vocabSize, lowercase: !cased, minFrequency: minFrequency,
            limitAlphabet: limitAlphabet, threads: max(1, threads)))
        let terminal = isatty(2) != 0
        let totalBytes = input.reduce(0) {
            $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0)
        }
        var doneBytes = 0
        func status(_ line: String) {
            FileHandle.standardError.write(Data(((terminal ? "\r\u{1B}[K" : "") + line + (terminal ? "" : "\n")).utf8))
        }
        for (i, path) in input.enumerated() {
            try trainer.addFile(atPath: path) { bytes in
                if terminal {
                    status(String(format: "vocab: reading file %d/%d, %.1f/%.1f MB", i + 1, input.count,
                                  Double(doneBytes + bytes) / 1e6, Double(totalBytes) / 1e6))
                }
            }
            doneBytes = trainer.summary.bytes
        }
        let counted = Date()
        if terminal { status("vocab: learning merges from \(trainer.summary.uniqueWords) distinct words…") }
        let vocabulary = try trainer.train()
        try vocabulary.write(to: output)
        let s = trainer.summary
        if terminal { status("") ; FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        let line = String(format: "vocab: %d files, %.1f MB, %d words (%d distinct), alphabet %d (+%d ##), %d merges → %d tokens in %@ (counting %.1f s, merging %.1f s)",
                          s.files, Double(s.bytes) / 1e6, s.words, s.uniqueWords, s.alphabet,
                          s.continuationCharacters, s.merges, s.vocabularySize, output,
                          counted.timeIntervalSince(start), Date().timeIntervalSince(counted))
        print(line)
    }
}
