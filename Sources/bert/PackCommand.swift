import ArgumentParser
import BERT
import Foundation

/// `bert pack`: unpacked shards → packed shards (up to K sequences a row), for `bert pretrain --packed`.
struct PackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pack",
        abstract: "Pack pre-training shards: up to --max-sequences-per-pack sequences per row (the packed layout).",
        discussion: """
            Reads every row of the --input shards (NVIDIA's layout, from `bert prepare`) at once — the length \
            histogram is global — chooses which lengths share a row by shortest-pack-first histogram packing, draws \
            which sequences fill them from --seed, and writes <output-dir>/packed_training_<k>.hdf5 in the packed \
            layout (Habana's and MLPerf's: positions, a sequence index in input_mask, NSP slots per row, P' = P + K \
            masked positions). Prints one summary line. Memory is about the size of the uncompressed input.
            """)

    @Option(parsing: .upToNextOption, help: "Shard files, or directories of *training*.hdf5 shards.")
    var input: [String]

    @Option(help: "Where the packed shards go (created when missing; must hold no shards).")
    var outputDir: String

    @Option(parsing: .unconditional, help: "K: the most sequences one row holds.")
    var maxSequencesPerPack = 3

    @Option(parsing: .unconditional, help: "Packed shards to write (default: as many as the input shards).")
    var numShards: Int?

    @Option(parsing: .unconditional, help: "Seed of which sequences share a row and of the rows' order.")
    var seed: UInt64 = 12345

    @Option(parsing: .unconditional, help: "Threads that compress (default: all cores).")
    var threads: Int?

    func validate() throws {
        try FlagCheck.positive("--max-sequences-per-pack", maxSequencesPerPack)
        try FlagCheck.positive("--num-shards", numShards)
        try FlagCheck.positive("--threads", threads)
    }

    func run() throws {
        let summary = try ShardPacking.pack(inputs: try ShardPacking.shardPaths(input), outputDirectory: outputDir,
                                            maxSequencesPerPack: maxSequencesPerPack, numShards: numShards, seed: seed,
                                            threads: threads ?? ProcessInfo.processInfo.activeProcessorCount)
        print(summary.line)
    }
}
