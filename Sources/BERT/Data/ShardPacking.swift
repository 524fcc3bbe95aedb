import Foundation

/// What `ShardPacking.pack` did, in the figures Graphcore's and Habana's packers report.
public struct PackingSummary: Sendable, Equatable {
    /// Rows (= sequences) of the input shards.
    public var inputRows: Int
    /// Rows written.
    public var packedRows: Int
    /// Real (non-padding) tokens, the same before and after.
    public var realTokens: Int
    /// S
    public var seqLength: Int
    /// K
    public var maxSequencesPerPack: Int
    /// Packs split because their sequences masked more than P' positions together.
    public var splitPacks: Int
    /// The shards written, in order.
    public var outputPaths: [String]

    /// Sequences per packed row.
    public var sequencesPerRow: Double { Double(inputRows) / Double(max(1, packedRows)) }
    /// Real tokens / (rows · S) after packing.
    public var fillRate: Double { Double(realTokens) / Double(max(1, packedRows * seqLength)) }
    /// Real tokens / (rows · S) before packing.
    public var unpackedFillRate: Double { Double(realTokens) / Double(max(1, inputRows * seqLength)) }

    /// The one-line summary `bert pack` prints.
    public var line: String {
        String(format: "packed %d sequences into %d rows of %d tokens (%d shards): %.3f sequences per row, fill rate %.4f (unpacked %.4f), %d packs split for masked positions",
               inputRows, packedRows, seqLength, outputPaths.count, sequencesPerRow, fillRate, unpackedFillRate, splitPacks)
    }
}

/// `bert pack`: unpacked shards in, packed shards out (see `SequencePacker`).
public enum ShardPacking {
    /// The shard files named by `inputs`: each a shard file, or a directory whose `*training*.hdf5` shards are taken.
    /// - Throws: `ShardError` when an input is missing or a directory holds no shards.
    public static func shardPaths(_ inputs: [String]) throws -> [String] {
        var paths: [String] = []
        for input in inputs {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory) else {
                throw ShardError("\(input): no such shard file or directory; check --input")
            }
            guard isDirectory.boolValue else { paths.append(input); continue }
            let found = try PretrainingLoader.shardFiles(in: input)
            guard !found.isEmpty else { throw ShardError("\(input): no training shards (*training*.hdf5) in it; check --input") }
            paths += found
        }
        return paths
    }

    /// Packs all rows of `inputs` (one global histogram) into `numShards` shards `packed_training_<k>.hdf5` in
    /// `outputDirectory`, each written to a temporary name and renamed.
    /// - Parameters:
    ///   - inputs: shard files in NVIDIA's layout, of one S and P.
    ///   - maxSequencesPerPack: K.
    ///   - numShards: output shards (default: as many as the inputs).
    ///   - seed: draws which sequences share a row and the rows' order.
    /// - Throws: `ShardError` naming the file (and row) for a packed or damaged input, shapes that differ, or an
    ///   output directory that already holds shards.
    public static func pack(inputs: [String], outputDirectory: String, maxSequencesPerPack K: Int = 3,
                            numShards: Int? = nil, seed: UInt64 = 12345, threads: Int = 1) throws -> PackingSummary {
        precondition(K >= 1 && (numShards ?? 1) >= 1, "ShardPacking: K and the shard count must be positive")
        guard !inputs.isEmpty else { throw ShardError("no input shards given; point --input at the output of `bert prepare`") }
        var shards: [ShardRows] = [], lengths: [[Int]] = []
        for path in inputs {
            let reader = try ShardReader(path: path)
            guard !reader.isPacked else {
                throw ShardError("\(path): already a packed shard (it has a 'positions' dataset); give `bert pack` the unpacked shards of `bert prepare`")
            }
            if let first = shards.first, first.seqLength != reader.seqLength || first.maxPredictions != reader.maxPredictions {
                throw ShardError("\(path): shape S=\(reader.seqLength), P=\(reader.maxPredictions) differs from \(inputs[0]) (S=\(first.seqLength), P=\(first.maxPredictions)); pack shards of one `bert prepare` run together")
            }
            let rows = try reader.readAll()
            try rows.validate(file: path, vocabSize: nil)
            lengths.append(try rows.sequenceLengths(file: path))
            shards.append(rows)
        }
        let S = shards[0].seqLength, packedP = shards[0].maxPredictions + K
        try prepareOutputDirectory(outputDirectory)

        let plan = SequencePacker.plan(lengths: lengths,
                                       maskedCounts: shards.map { s in (0..<s.count).map { s.predictionCount(row: $0) } },
                                       seqLength: S, maxSequencesPerPack: K, maxPredictions: packedP, seed: seed)
        let packed = SequencePacker.pack(plan, from: shards, lengths: lengths, maxSequencesPerPack: K)
        let shapes = SequencePacker.strategies(histogram: histogram(lengths, seqLength: S), seqLength: S, maxSequencesPerPack: K)
        let n = numShards ?? inputs.count
        var outputs: [String] = []
        for k in 0..<n {
            let path = (outputDirectory as NSString).appendingPathComponent("packed_training_\(k).hdf5")
            let lo = k * packed.count / n, hi = (k + 1) * packed.count / n
            try ShardWriter.write(packed.selecting(rows: Array(lo..<hi)), to: path, threads: threads)
            outputs.append(path)
        }
        return PackingSummary(inputRows: shards.reduce(0) { $0 + $1.count }, packedRows: packed.count,
                              realTokens: lengths.joined().reduce(0, +), seqLength: S, maxSequencesPerPack: K,
                              splitPacks: packed.count - shapes.reduce(0) { $0 + $1.count }, outputPaths: outputs)
    }

    /// `histogram[L]`: the sequences of length L, for L in `0...S`.
    public static func histogram(_ lengths: [[Int]], seqLength S: Int) -> [Int] {
        var h = [Int](repeating: 0, count: S + 1)
        for L in lengths.joined() { h[L] += 1 }
        return h
    }

    /// Creates `directory` if needed and refuses one that already holds shards, so packed and unpacked shards (or
    /// two packings) never mix in one training directory.
    private static func prepareOutputDirectory(_ directory: String) throws {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw ShardError("\(directory): cannot create the output directory; check --output-dir")
        }
        let existing = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".hdf5") || $0.hasSuffix(".h5") }.sorted()
        if let first = existing.first {
            throw ShardError("\(directory): already holds shards (\(first)); give --output-dir an empty or new directory")
        }
    }
}
