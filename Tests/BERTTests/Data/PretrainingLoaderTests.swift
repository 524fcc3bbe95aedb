import Foundation
import Testing
@testable import BERT

/// The loader on synthetic shards whose rows encode where they come from: `input_ids[0] = 1000 × shard + row`.
/// Each property is shown for NVIDIA's layout and for packed shards (K = 2: even rows hold two sequences, odd rows
/// one), where a packed row is one sample of the stream.
@Suite struct PretrainingLoaderTests {
    static let counts = [7, 5, 9, 3]
    static let S = 8, P = 2, K = 2

    /// Writes the synthetic shards into a new directory; returns their paths.
    static func makeShards(packed: Bool = false) throws -> (String, [String]) {
        let dir = try ShardFixtures.temporaryDirectory("loader")
        var paths: [String] = []
        for (s, n) in counts.enumerated() {
            var rows = ShardRows(count: n, seqLength: S, maxPredictions: P, packedSequences: packed ? K : nil)
            for r in 0..<n {
                rows.inputIds[r * S] = Int32(1000 * s + r)
                rows.inputIds[r * S + 1] = Int32(s)
                rows.inputMask[r * S] = 1
                rows.maskedLMPositions[r * P] = 1
                rows.maskedLMIds[r * P] = Int32(r)
                rows.nextSentenceLabels[r * rows.sequencesPerRow] = Int32(r % 2)
                if packed {
                    // Sequence 1 on tokens 0..<3, sequence 2 (even rows) on 3..<5.
                    let sequences = r % 2 == 0 ? 2 : 1
                    for t in 0..<(sequences == 2 ? 5 : 3) {
                        rows.inputMask[r * S + t] = t < 3 ? 1 : 2
                        rows.positions![r * S + t] = Int32(t < 3 ? t : t - 3)
                    }
                    for j in 0..<sequences {
                        rows.nextSentencePositions![r * K + j] = Int32(3 * j)
                        rows.nextSentenceWeights![r * K + j] = 1
                    }
                }
            }
            let path = dir + "/synthetic_training_\(s).hdf5"
            try ShardWriter.write(rows, to: path)
            paths.append(path)
        }
        return (dir, paths)
    }

    /// The sample ids of a batch, row by row.
    static func ids(_ b: PretrainingBatch) -> [Int32] { (0..<b.batchSize).map { b.inputIds[$0 * b.seqLength] } }

    /// One optimizer step of every rank of a W-rank world, each rank's samples in micro-batch order.
    static func stepAll(_ loaders: [PretrainingLoader]) throws -> [[Int32]] {
        try loaders.map { try $0.nextStep().flatMap(ids) }
    }

    @Test(arguments: [false, true])
    func everySampleOncePerEpochAndRankSlicesMakeTheGlobalBatch(packed: Bool) throws {
        let (dir, paths) = try Self.makeShards(packed: packed)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let total = Self.counts.reduce(0, +)   // 24
        // For a global batch G, every world (W, A, b) with W·A·b = G must give the same global batches as W = 1.
        for (G, configs) in [(10, [(1, 2, 5), (2, 1, 5), (2, 5, 1)]), (8, [(1, 1, 8), (2, 2, 2), (4, 1, 2), (4, 2, 1)])] {
            var reference: [[Int32]] = []
            for (W, A, b) in configs {
                #expect(W * A * b == G)
                let loaders = try (0..<W).map {
                    try PretrainingLoader(shardPaths: paths.reversed(), seed: 42, worldSize: W, rank: $0,
                                          microBatchSize: b, accumulationSteps: A, packed: packed)
                }
                var global: [[Int32]] = []
                for _ in 0..<7 {
                    let parts = try Self.stepAll(loaders)
                    #expect(parts.allSatisfy { $0.count == A * b })
                    global.append(parts.flatMap { $0 })
                }
                if reference.isEmpty { reference = global } else { #expect(global == reference, "W=\(W) A=\(A) b=\(b)") }
                #expect(loaders[0].seqLength == Self.S && loaders[0].maxPredictions == Self.P)
            }
            // The stream covers each (shard, row) exactly once per epoch, epochs back to back.
            let stream = reference.flatMap { $0 }
            let all = Set(Self.counts.enumerated().flatMap { s, n in (0..<n).map { Int32(1000 * s + $0) } })
            #expect(Set(stream[0..<total]) == all && Set(stream[0..<total]).count == total)
            #expect(Set(stream[total..<(2 * total)]) == all)
            // Epochs are ordered differently, and shards are visited whole (samples of one shard together).
            #expect(Array(stream[0..<total]) != Array(stream[total..<(2 * total)]))
            let shardsInOrder = stream[0..<total].map { $0 / 1000 }
            #expect(zip(shardsInOrder, shardsInOrder.dropFirst()).filter { $0 != $1 }.count == Self.counts.count - 1)
        }
    }

    /// Each rank loads only its own samples: over whole epochs the ranks together load each sample once.
    @Test(arguments: [false, true])
    func ranksLoadOnlyTheirRows(packed: Bool) throws {
        let (dir, paths) = try Self.makeShards(packed: packed)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let total = Self.counts.reduce(0, +)   // 24 = 3 steps of G = 8
        let loaders = try (0..<4).map {
            try PretrainingLoader(shardPaths: paths, seed: 3, worldSize: 4, rank: $0, microBatchSize: 2, prefetch: false,
                                  packed: packed)
        }
        for _ in 0..<3 { _ = try Self.stepAll(loaders) }
        #expect(loaders.map(\.rowsLoaded).reduce(0, +) == total)
        #expect(loaders.allSatisfy { $0.rowsLoaded == total / 4 })
    }

    @Test(arguments: [false, true])
    func resumeFromASavedCursorContinuesExactly(packed: Bool) throws {
        let (dir, paths) = try Self.makeShards(packed: packed)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for prefetch in [true, false] {
            let straight = try PretrainingLoader(shardPaths: paths, seed: 7, worldSize: 2, rank: 1, microBatchSize: 3,
                                                 accumulationSteps: 2, prefetch: prefetch, packed: packed)
            var expected: [[Int32]] = []
            var saved = Data()
            for step in 0..<9 {
                if step == 5 { saved = try JSONEncoder().encode(straight.cursor) }
                expected.append(try straight.nextStep().flatMap(Self.ids))
            }
            let cursor = try JSONDecoder().decode(LoaderCursor.self, from: saved)
            #expect(cursor.epoch >= 1)   // 5 steps × 12 samples = 60 > 2 epochs of 24
            let resumed = try PretrainingLoader(shardPaths: paths, seed: 7, worldSize: 2, rank: 1, microBatchSize: 3,
                                                accumulationSteps: 2, cursor: cursor, prefetch: prefetch, packed: packed)
            for step in 5..<9 { #expect(try resumed.nextStep().flatMap(Self.ids) == expected[step]) }
            #expect(resumed.cursor == straight.cursor)
        }
    }

    @Test(arguments: [false, true])
    func batchesCarryWholeRows(packed: Bool) throws {
        let (dir, paths) = try Self.makeShards(packed: packed)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let loader = try PretrainingLoader(shardPaths: paths, seed: 1, microBatchSize: 5, accumulationSteps: 2, packed: packed)
        #expect(loader.isPacked == packed && loader.sequencesPerRow == (packed ? Self.K : 1))
        for _ in 0..<6 {
            for b in try loader.nextStep() {
                #expect(b.batchSize == 5 && b.seqLength == Self.S && b.maxPredictions == Self.P)
                #expect(b.isPacked == packed && b.sequencesPerRow == loader.sequencesPerRow)
                let N = b.sequencesPerRow
                for r in 0..<5 {
                    let id = b.inputIds[r * Self.S]
                    #expect(b.inputIds[r * Self.S + 1] == id / 1000)
                    #expect(b.maskedLMIds[r * Self.P] == id % 1000)
                    #expect(b.nextSentenceLabels[r * N] == (id % 1000) % 2)
                    #expect(b.predictionCount(row: r) == 1)
                    if packed {
                        let two = (id % 1000) % 2 == 0
                        #expect(Array(b.nextSentenceWeights[(r * N)..<((r + 1) * N)]) == (two ? [1, 1] : [1, 0]))
                        #expect(Array(b.positions![(r * Self.S)..<(r * Self.S + 5)]) == (two ? [0, 1, 2, 0, 1] : [0, 1, 2, 0, 0]))
                    }
                }
            }
        }
    }

    /// One layout per run: packed shards without `packed`, or unpacked ones with it, fail at construction naming
    /// the file and the flag.
    @Test func theOtherLayoutIsRefusedNamingFileAndFlag() throws {
        let (dir, paths) = try Self.makeShards()
        let (packedDir, packedPaths) = try Self.makeShards(packed: true)
        defer { try? FileManager.default.removeItem(atPath: dir); try? FileManager.default.removeItem(atPath: packedDir) }
        let e1 = #expect(throws: ShardError.self) {
            _ = try PretrainingLoader(shardPaths: [paths[0], packedPaths[1]], seed: 1, microBatchSize: 2)
        }
        #expect(e1?.message.hasPrefix(packedPaths[1] + ": a packed shard") == true)
        #expect(e1?.message.contains("pass --packed") == true)
        let e2 = #expect(throws: ShardError.self) {
            _ = try PretrainingLoader(shardPaths: [packedPaths[0], paths[2]], seed: 1, microBatchSize: 2, packed: true)
        }
        #expect(e2?.message.hasPrefix(paths[2] + ": an unpacked shard") == true)
        #expect(e2?.message.contains("drop --packed") == true)
        #expect(throws: ShardError.self) { _ = try readAndValidateShard(path: packedPaths[0], vocabSize: nil) }
        #expect(try readAndValidateShard(path: packedPaths[0], vocabSize: nil, packed: true).isPacked)
    }

    /// A damaged row met while training names its row in the file, not its place in the shuffled selection read.
    @Test(arguments: [false, true])
    func aDamagedRowIsNamedByItsRowInTheFile(packed: Bool) throws {
        let (dir, paths) = try Self.makeShards(packed: packed)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rows = try ShardReader(path: paths[2]).readAll()
        rows.inputIds[6 * Self.S + 2] = 9999
        try FileManager.default.removeItem(atPath: paths[2])
        try ShardWriter.write(rows, to: paths[2])
        let loader = try PretrainingLoader(shardPaths: paths, seed: 3, microBatchSize: 4, vocabSize: 5000, prefetch: false,
                                           packed: packed)
        let e = #expect(throws: ShardError.self) { for _ in 0..<20 { _ = try loader.nextStep() } }
        #expect(e?.message.hasPrefix(paths[2] + ": dataset 'input_ids' row 6 holds 9999") == true, "\(e?.message ?? "")")
    }

    @Test func shapeMismatchAndMissingShardsAreReported() throws {
        let (dir, paths) = try Self.makeShards()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ShardWriter.write(ShardRows(count: 2, seqLength: 16, maxPredictions: 2), to: dir + "/other_training_9.hdf5")
        let e = #expect(throws: ShardError.self) {
            _ = try PretrainingLoader(shardPaths: paths + [dir + "/other_training_9.hdf5"], seed: 1, microBatchSize: 2)
        }
        #expect(e?.message.contains("S=16") == true)
        #expect(throws: ShardError.self) { _ = try PretrainingLoader(shardPaths: [], seed: 1, microBatchSize: 2) }
        #expect(try PretrainingLoader.shardFiles(in: dir).count == Self.counts.count + 1)
        #expect(throws: ShardError.self) {
            _ = try PretrainingLoader(shardPaths: paths, seed: 1, microBatchSize: 2, cursor: LoaderCursor(epoch: 0, position: 99))
        }
    }
}
