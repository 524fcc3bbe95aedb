import ArgumentParser
import BERT
import Foundation

/// `bert prepare`: text → pre-training shards in NVIDIA's HDF5 layout. Flags and defaults follow Google's
/// create_pretraining_data.py; sharding and the test split follow NVIDIA's bertPrep.py.
struct PrepareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Make pre-training shards (NVIDIA's HDF5 layout) from text.",
        discussion: """
            Reads text files, directories or globs (--input-format: google = one sentence per line and a blank \
            line between documents; nvidia = one document per line; wikiextractor = <doc> blocks; wikipedia-xml = a \
            MediaWiki XML dump, plain or .bz2, cleaned as WikiExtractor does; auto = per file), tokenizes with --vocab-file, makes NSP pairs and masked-LM targets as Google's \
            create_pretraining_data.py does, and writes <output-dir>/<prefix>_training_<k>.hdf5 (and \
            <prefix>_test_<k>.hdf5 with --eval-fraction). Output depends on --random-seed and the shard \
            counts, not on --threads. Memory is about 12 × (input size / shards).
            """)

    @Option(parsing: .upToNextOption, help: "Input text files, directories or glob patterns.")
    var input: [String]

    @Option(help: "The WordPiece vocabulary (vocab.txt).")
    var vocabFile: String

    @Option(help: "Where the shards go (created when missing).")
    var outputDir: String

    @Option(help: "Shard file name prefix: <prefix>_training_<k>.hdf5.")
    var outputPrefix = "corpus"

    @Option(help: "Input layout: google, nvidia, wikiextractor, wikipedia-xml or auto.")
    var inputFormat: CorpusFormat = .auto

    @Option(parsing: .unconditional, help: "Maximum sequence length S.")
    var maxSeqLength = 128

    @Option(parsing: .unconditional, help: "Maximum masked-LM predictions per sequence P.")
    var maxPredictionsPerSeq = 20

    @Option(parsing: .unconditional, help: "Masked-LM probability.")
    var maskedLmProb = 0.15

    @Option(parsing: .unconditional, help: "Passes over the data with different masks.")
    var dupeFactor = 5

    @Option(parsing: .unconditional, help: "Probability of a shorter target length.")
    var shortSeqProb = 0.1

    @Option(parsing: .unconditional, help: "Seed of all random choices.")
    var randomSeed: UInt64 = 12345

    @Flag(help: "Mask whole words (a word and its ## pieces together).")
    var doWholeWordMask = false

    @Flag(help: "Lower-case and strip accents (the default; for uncased vocabularies).")
    var doLowerCase = false

    @Flag(help: "Keep case and accents (cased vocabularies).")
    var cased = false

    @Flag(help: "Google's original NSP labelling: a 'random' B that came from the same document after ten draws stays labelled random (NVIDIA's fix, the default, labels it not random).")
    var googleRandomNext = false

    @Option(parsing: .unconditional, help: "Training shards (0: one per 64 MiB of input).")
    var numShards = 0

    @Option(parsing: .unconditional, help: "Test shards, used when --eval-fraction > 0.")
    var numTestShards = 1

    @Option(parsing: .unconditional, help: "Fraction of documents held out for the test shards.")
    var evalFraction = 0.0

    @Option(parsing: .unconditional, help: "How the HDF5 chunks are deflated: 'fast' (runs and Huffman codes only, several times faster than gzip level 1, shards about 5 % larger than h5py's) or a gzip level, 1 (fastest) to 9 (smallest; libdeflate when installed, else zlib). NVIDIA's script uses h5py's 4. Every HDF5 reader inflates all of them.")
    var compressionLevel = CompressionLevel.fast

    @Flag(help: "Add HDF5's byte-shuffle filter before gzip: smaller shards, faster to write; h5py and every HDF5 reader read them, but NVIDIA's own files do not use it.")
    var byteShuffle = false

    @Option(help: "Worker threads.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        if doLowerCase && cased { throw ValidationError("--do-lower-case and --cased exclude each other") }
        if maxSeqLength < 5 { throw ValidationError("--max-seq-length must be at least 5") }
        if maxPredictionsPerSeq < 1 { throw ValidationError("--max-predictions-per-seq must be at least 1") }
        if dupeFactor < 1 { throw ValidationError("--dupe-factor must be at least 1") }
        if !(0...1).contains(maskedLmProb) || !(0...1).contains(shortSeqProb) {
            throw ValidationError("--masked-lm-prob and --short-seq-prob are probabilities in [0, 1]")
        }
        if !(0..<1).contains(evalFraction) { throw ValidationError("--eval-fraction must be in [0, 1)") }
        if numShards < 0 || numTestShards < 1 || threads < 1 {
            throw ValidationError("--num-shards ≥ 0, --num-test-shards ≥ 1 and --threads ≥ 1")
        }
    }

    func run() throws {
        let vocabulary = try Vocabulary(contentsOf: vocabFile)
        let tokenizer = BertTokenizer(vocabulary: vocabulary, lowercase: !cased)
        var options = PrepareOptions()
        options.inputs = input
        options.format = inputFormat
        options.outputDirectory = outputDir
        options.outputPrefix = outputPrefix
        options.instance.maxSeqLength = maxSeqLength
        options.instance.maxPredictionsPerSeq = maxPredictionsPerSeq
        options.instance.maskedLMProb = maskedLmProb
        options.instance.dupeFactor = dupeFactor
        options.instance.shortSeqProb = shortSeqProb
        options.instance.doWholeWordMask = doWholeWordMask
        options.instance.sameDocumentRandomIsRandom = googleRandomNext
        options.seed = randomSeed
        options.trainingShards = numShards
        options.testShards = numTestShards
        options.evalFraction = evalFraction
        options.threads = threads
        options.compressionLevel = compressionLevel.level
        options.byteShuffle = byteShuffle
        let masking = MaskingVocabulary(clsId: vocabulary.clsId, sepId: vocabulary.sepId, maskId: vocabulary.maskId,
                                        tokens: vocabulary.tokens)
        let preparer = PretrainingDataPreparer(options: options, vocabulary: masking) { text in
            var ids: [Int32] = []
            var text = text
            text.withUTF8 { tokenizer.encode(utf8: $0, appendingTo: &ids) }
            return ids
        }
        let display = ProgressDisplay()
        let summary: PrepareSummary
        do {
            summary = try preparer.prepare(progress: display.show)
        } catch let error as ShardError {
            display.finish()
            FileHandle.standardError.write("Error: \(error.message)\n".data(using: .utf8)!)
            throw ExitCode.failure
        }
        display.finish()
        Self.printSummary(summary, options: options)
        // A machine-readable record next to the shards.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        struct Record: Encodable { var options: PrepareOptions; var summary: PrepareSummary }
        let record = try encoder.encode(Record(options: options, summary: summary))
        try record.write(to: URL(fileURLWithPath: (outputDir as NSString).appendingPathComponent("\(outputPrefix)_prepare.json")))
    }

    static func printSummary(_ s: PrepareSummary, options: PrepareOptions) {
        func line(_ name: String, _ st: InstanceStatistics) -> String {
            guard st.instances > 0 else { return "\(name): no instances" }
            let masked = Double(st.maskedPositions)
            return String(format: "%@: %d instances, %d tokens (%.1f per instance), masked %.2f%% of tokens "
                          + "(%.1f%% [MASK], %.1f%% kept, %.1f%% random), NSP random %.1f%%",
                          name, st.instances, st.tokens, Double(st.tokens) / Double(st.instances),
                          100 * masked / Double(st.tokens), 100 * Double(st.replacedByMask) / masked,
                          100 * Double(st.keptOriginal) / masked, 100 * Double(st.replacedByRandom) / masked,
                          100 * Double(st.randomNext) / Double(st.instances))
        }
        print(String(format: "prepare: %d documents, %d sentences, %.1f MB in %.1f s (%.2f MB/s)",
                     s.documents, s.sentences, Double(s.inputBytes) / 1e6, s.seconds,
                     Double(s.inputBytes) / 1e6 / max(s.seconds, 1e-9)))
        print(String(format: "time: read+tokenize %.2f s, instances %.2f s, HDF5 %.2f s",
                     s.readSeconds, s.instanceSeconds, s.writeSeconds))
        print(line("training", s.training))
        if s.test.instances > 0 || options.evalFraction > 0 { print(line("test", s.test)) }
        if !s.staleShards.isEmpty {
            print("warning: \(s.staleShards.count) older shard(s) with the same prefix are in the output directory "
                  + "(\((s.staleShards.first! as NSString).lastPathComponent), …); remove them before training")
        }
        print("shards: \(s.shardPaths.count) in \(options.outputDirectory) (S=\(options.instance.maxSeqLength), P=\(options.instance.maxPredictionsPerSeq))")
    }
}

extension CorpusFormat: ExpressibleByArgument {}

/// Progress on standard error: one rewritten line on a terminal, a plain line every 10 s otherwise.
final class ProgressDisplay: @unchecked Sendable {
    private let isTerminal = isatty(2) != 0
    private var lastPlain = Date.distantPast
    private var wroteLine = false

    func show(_ p: PrepareProgress) {
        let mb = Double(p.bytesRead) / 1e6
        let rate = mb / max(p.elapsed, 1e-9)
        var text: String
        switch p.phase {
        case .tokenizing:
            let left = Double(p.totalBytes - p.bytesRead) / 1e6 / max(rate, 1e-9)
            text = String(format: "reading: %d documents, %.1f/%.1f MB, %.2f MB/s, ETA %@",
                          p.documents, mb, Double(p.totalBytes) / 1e6, rate, Self.clock(left))
        case .writing:
            text = String(format: "writing: %d/%d shards, %d instances, %@ elapsed",
                          p.shardsDone, p.shardCount, p.instances, Self.clock(p.elapsed))
        }
        if isTerminal {
            text = "\r\u{1B}[K" + text
            FileHandle.standardError.write(text.data(using: .utf8)!)
            wroteLine = true
        } else if Date().timeIntervalSince(lastPlain) >= 10 || p.shardsDone == p.shardCount && p.phase == .writing {
            lastPlain = Date()
            FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
        }
    }

    func finish() {
        if isTerminal && wroteLine { FileHandle.standardError.write("\n".data(using: .utf8)!) }
    }

    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "--:--" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}

/// `--compression-level`: `fast` (`ChunkCompressor`'s run-length deflate, level 0 in `PrepareOptions`) or gzip 1…9.
struct CompressionLevel: ExpressibleByArgument, CustomStringConvertible {
    static let fast = CompressionLevel(level: 0)
    let level: Int

    private init(level: Int) { self.level = level }

    init?(argument: String) {
        if argument == "fast" { self = .fast; return }
        guard let level = Int(argument), (1...9).contains(level) else { return nil }
        self.level = level
    }

    var description: String { level == 0 ? "fast" : String(level) }
    static var allValueStrings: [String] { ["fast"] + (1...9).map(String.init) }
}
