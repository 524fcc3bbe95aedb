import Foundation
import Testing
@testable import BERT

/// The loader on synthetic shards whose rows encode where they come from: `input_ids[0] = 1000 × shard + row`.
@Suite struct PretrainingLoaderTests {
    static let counts = [7, 5, 9, 3]
    static let S = 8, P = 2

    /// Writes the synthetic shards into a new directory; returns their paths.
    static func makeShards() throws -> (String, [String]) {
        let dir = try ShardFixtures.temporaryDirectory("loader")
        var paths: [String] = []
        for (s, n) in counts.enumerated() {
            var rows = ShardRows(count: n, seqLength: S, maxPredictions: P)
            for r in 0..<n {
                rows.inputIds[r * S] = Int32(1000 * s + r)
                rows.inputIds[r * S + 1] = Int32(s)
                rows.inputMask[r * S] = 1
                rows.maskedLMPositions[r * P] = 1
                rows.maskedLMIds[r * P] = Int32(r)
                rows.nextSentenceLabels[r] = Int32(r % 2)
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

    @Test func everySampleOncePerEpochAndRankSlicesMakeTheGlobalBatch() throws {
        let (dir, paths) = try Self.makeShards()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let total = Self.counts.reduce(0, +)   // 24
        // For a global batch G, every world (W, A, b) with W·A·b = G must give the same global batches as W = 1.
        for (G, configs) in [(10, [(1, 2, 5), (2, 1, 5), (2, 5, 1)]), (8, [(1, 1, 8), (2, 2, 2), (4, 1, 2), (4, 2, 1)])] {
            var reference: [[Int32]] = []
            for (W, A, b) in configs {
                #expect(W * A * b == G)
                let loaders = try (0..<W).map {
                    try PretrainingLoader(shardPaths: paths.reversed(), seed: 42, worldSize: W, rank: $0,
                                          microBatchSize: b, accumulationSteps: A)
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
    @Test func ranksLoadOnlyTheirRows() throws {
        let (dir, paths) = try Self.makeShards()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let total = Self.counts.reduce(0, +)   // 24 = 3 steps of G = 8
        let loaders = try (0..<4).map {
            try PretrainingLoader(shardPaths: paths, seed: 3, worldSize: 4, rank: $0, microBatchSize: 2, prefetch: false)
        }
        for _ in 0..<3 { _ = try Self.stepAll(loaders) }
        #expect(loaders.map(\.rowsLoaded).reduce(0, +) == total)
        #expect(loaders.allSatisfy { $0.rowsLoaded == total / 4 })
    }

    @Test func resumeFromASavedCursorContinuesExactly() throws {
        let (dir, paths) = try Self.makeShards()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for prefetch in [true, false] {
            let straight = try PretrainingLoader(shardPaths: paths, seed: 7, worldSize: 2, rank: 1, microBatchSize: 3,
                                                 accumulationSteps: 2, prefetch: prefetch)
            var expected: [[Int32]] = []
            var saved = Data()
            for step in 0..<9 {
                if step == 5 { saved = try JSONEncoder().encode(straight.cursor) }
                expected.append(try straight.nextStep().flatMap(Self.ids))
            }
            let cursor = try JSONDecoder().decode(LoaderCursor.self, from: saved)
            #expect(cursor.epoch >= 1)   // 5 steps × 12 samples = 60 > 2 epochs of 24
            let resumed = try PretrainingLoader(shardPaths: paths, seed: 7, worldSize: 2, rank: 1, microBatchSize: 3,
                                                accumulationSteps: 2, cursor: cursor, prefetch: prefetch)
            for step in 5..<9 { #expect(try resumed.nextStep().flatMap(Self.ids) == expected[step]) }
            #expect(resumed.cursor == straight.cursor)
        }
    }

    @Test func batchesCarryWholeRows() throws {
        let (dir, paths) = try Self.makeShards()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let loader = try PretrainingLoader(shardPaths: paths, seed: 1, microBatchSize: 5, accumulationSteps: 2)
        for _ in 0..<6 {
            for b in try loader.nextStep() {
                #expect(b.batchSize == 5 && b.seqLength == Self.S && b.maxPredictions == Self.P)
                for r in 0..<5 {
                    let id = b.inputIds[r * Self.S]
                    #expect(b.inputIds[r * Self.S + 1] == id / 1000)
                    #expect(b.maskedLMIds[r * Self.P] == id % 1000)
                    #expect(b.nextSentenceLabels[r] == (id % 1000) % 2)
                    #expect(b.predictionCount(row: r) == 1)
                }
            }
        }
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
