import Foundation
import Testing
@testable import BERT

/// Shards in NVIDIA's HDF5 layout: our round trip, files written by h5py
/// (scripts/reference/make_nvidia_shard_fixture.py), and the errors for damaged files.
@Suite struct HDF5ShardTests {
    static func sampleRows(count: Int = 40, S: Int = 16, P: Int = 3) -> ShardRows {
        var rng = DataRandom(seed: 11)
        let instances = (0..<count).map { r -> TrainingInstance in
            let n = rng.int(6, S)
            var ids = (0..<n).map { _ in Int32(rng.int(5, 99)) }
            ids[0] = 2; ids[n - 1] = 3
            let a = rng.int(3, n - 2)
            ids[a - 1] = 3
            return TrainingInstance(inputIds: ids, segmentALength: a, maskedPositions: [1, Int32(n - 2)],
                                    maskedIds: [Int32(r), 7], isRandomNext: r % 3 == 0)
        }
        return ShardRows(instances: instances, seqLength: S, maxPredictions: P)
    }

    @Test func roundTripKeepsEveryValue() throws {
        let dir = try ShardFixtures.temporaryDirectory("h5rt")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rows = Self.sampleRows()
        let path = dir + "/x_training_0.hdf5"
        try ShardWriter.write(rows, to: path)
        // Written under a temporary name, then renamed: nothing else is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["x_training_0.hdf5"])
        let reader = try ShardReader(path: path)
        #expect(reader.count == 40 && reader.seqLength == 16 && reader.maxPredictions == 3)
        #expect(try reader.readAll() == rows)
        // Rows in any order, repeats allowed: hyperslab reads of just those rows.
        let some = try reader.read(rows: [7, 2, 7, 39])
        #expect(some.batch(rows: [0, 1, 2, 3]) == rows.batch(rows: [7, 2, 7, 39]))
        try rows.validate(file: path, vocabSize: 100)
    }

    /// Writing straight from instances in a given order (what `bert prepare` does), with or without the
    /// byte-shuffle filter, by gzip level 1 or the run-length deflate (level 0), stores the same rows as padding them
    /// first; HDF5's own gzip filter inflates them.
    @Test(arguments: [false, true], [Int32(1), ChunkCompressor.fastLevel])
    func writingFromInstancesMatchesPaddedRows(byteShuffle: Bool, level: Int32) throws {
        let dir = try ShardFixtures.temporaryDirectory("h5inst")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rows = Self.sampleRows(count: 600)   // more than two chunks, the last one partial
        let instances = (0..<rows.count).map { r -> TrainingInstance in
            let n = (0..<16).last { rows.inputMask[r * 16 + $0] == 1 }! + 1
            let a = (0..<n).first { rows.segmentIds[r * 16 + $0] == 1 }!
            return TrainingInstance(inputIds: Array(rows.inputIds[(r * 16)..<(r * 16 + n)]), segmentALength: a,
                                    maskedPositions: Array(rows.maskedLMPositions[(r * 3)..<(r * 3 + 2)]),
                                    maskedIds: Array(rows.maskedLMIds[(r * 3)..<(r * 3 + 2)]),
                                    isRandomNext: rows.nextSentenceLabels[r] == 1)
        }
        var rng = DataRandom(seed: 5)
        let order = rng.permutation(instances.count)
        let path = dir + "/i_training_0.hdf5"
        try ShardWriter.write(instances, order: order, seqLength: 16, maxPredictions: 3, to: path,
                              compressionLevel: level, byteShuffle: byteShuffle, threads: 2)
        let back = try ShardReader(path: path).readAll()
        #expect(back == ShardRows(instances: order.map { instances[$0] }, seqLength: 16, maxPredictions: 3))
        #expect(back.batch(rows: Array(0..<back.count)) == rows.batch(rows: order))
    }

    /// A process started while a shard was being written inherits the writer's descriptor; with HDF5's file locking
    /// that descriptor kept an exclusive flock on the finished shard, and opening it failed as "not a readable HDF5
    /// file" until that process ended (seen when a test spawned `mpirun` beside a shard test). Here a second open
    /// file description holds that lock: the shard must still open and read, and be rewritten in place.
    @Test func aLockHeldElsewhereDoesNotStopReadingOrRewriting() throws {
        let dir = try ShardFixtures.temporaryDirectory("h5lock")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rows = Self.sampleRows(count: 5)
        let path = dir + "/l_training_0.hdf5"
        try ShardWriter.write(rows, to: path)
        let fd = open(path, O_RDWR)
        try #require(fd >= 0)
        defer { close(fd) }
        try #require(flock(fd, LOCK_EX | LOCK_NB) == 0)
        #expect(try ShardReader(path: path).readAll() == rows)
        let other = Self.sampleRows(count: 3)
        try ShardWriter.write(other, to: path)
        #expect(try ShardReader(path: path).readAll() == other)
    }

    @Test func emptyShardRoundTrips() throws {
        let dir = try ShardFixtures.temporaryDirectory("h5empty")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rows = ShardRows(count: 0, seqLength: 8, maxPredictions: 2)
        try ShardWriter.write(rows, to: dir + "/e.hdf5")
        #expect(try ShardReader(path: dir + "/e.hdf5").readAll() == rows)
    }

    /// Files written by h5py in NVIDIA's dtypes, and the same rows in other integer widths.
    @Test(arguments: ["nvidia_layout_training_0.hdf5", "nvidia_wide_test_0.hdf5"])
    func readsFilesWrittenByH5py(file: String) throws {
        let expected = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ShardFixtures.path("nvidia_layout_expected.json")))) as? [String: Any])
        let rows = try readAndValidateShard(path: ShardFixtures.path(file), vocabSize: expected["vocab_size"] as? Int)
        let arrays: [String: [Int32]] = [
            "input_ids": rows.inputIds, "input_mask": rows.inputMask, "segment_ids": rows.segmentIds,
            "masked_lm_positions": rows.maskedLMPositions, "masked_lm_ids": rows.maskedLMIds,
            "next_sentence_labels": rows.nextSentenceLabels,
        ]
        for (name, values) in arrays {
            let e = try #require(expected[name] as? [String: Any])
            let shape = e["shape"] as! [Int]
            let width = shape.count == 2 ? shape[1] : 1
            #expect(shape[0] == rows.count, "\(name) rows")
            #expect(values.reduce(0) { $0 + Int($1) } == e["sum"] as! Int, "\(name) sum")
            #expect(values.prefix(width).map(Int.init) == e["first_row"] as! [Int], "\(name) first row")
        }
        #expect(rows.seqLength == 64 && rows.maxPredictions == 10)
    }

    @Test func truncatedShardGivesOneClearError() throws {
        let dir = try ShardFixtures.temporaryDirectory("h5trunc")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = try Data(contentsOf: URL(fileURLWithPath: ShardFixtures.path("nvidia_layout_training_0.hdf5")))
        for keep in [data.count / 2, data.count - 100, 512] {
            let path = dir + "/cut_\(keep).hdf5"
            try data.prefix(keep).write(to: URL(fileURLWithPath: path))
            let error = #expect(throws: ShardError.self) { _ = try readAndValidateShard(path: path, vocabSize: nil) }
            #expect(error?.message.hasPrefix(path) == true)
            #expect(error?.message.contains("bert prepare") == true)
            #expect(error?.message.contains("\n") == false)
        }
        let text = dir + "/not.hdf5"
        try "hello".write(toFile: text, atomically: true, encoding: .utf8)
        #expect(throws: ShardError.self) { _ = try ShardReader(path: text) }
        #expect(throws: ShardError.self) { _ = try ShardReader(path: dir + "/missing.hdf5") }
    }

    @Test func outOfRangeValuesNameTheFileAndDataset() throws {
        let dir = try ShardFixtures.temporaryDirectory("h5range")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rows = Self.sampleRows()
        rows.inputIds[5 * 16 + 2] = 30522
        let path = dir + "/bad_training_0.hdf5"
        try ShardWriter.write(rows, to: path)
        let error = #expect(throws: ShardError.self) { _ = try readAndValidateShard(path: path, vocabSize: 100) }
        #expect(error?.message.contains(path) == true)
        #expect(error?.message.contains("'input_ids' row 5 holds 30522") == true)
        var bad = Self.sampleRows()
        bad.maskedLMPositions[4] = 16
        try ShardWriter.write(bad, to: path)
        let e2 = #expect(throws: ShardError.self) { _ = try readAndValidateShard(path: path, vocabSize: 100) }
        #expect(e2?.message.contains("'masked_lm_positions' row 1") == true)
        bad = Self.sampleRows()
        bad.nextSentenceLabels[9] = 2
        try ShardWriter.write(bad, to: path)
        let e3 = #expect(throws: ShardError.self) { _ = try readAndValidateShard(path: path, vocabSize: 100) }
        #expect(e3?.message.contains("'next_sentence_labels' row 9") == true)
    }
}
