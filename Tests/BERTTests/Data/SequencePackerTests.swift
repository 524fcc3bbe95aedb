import Foundation
import Testing
@testable import BERT

/// The packer: histogram strategies, the packed rows it builds from synthetic shards whose tokens encode their
/// origin, and `bert pack` run as a user runs it.
@Suite struct SequencePackerTests {
    static let S = 32, P = 5

    /// Unpacked shards of random lengths: token t of row r of shard s is `100000 × s + 100 × r + t`, masked positions
    /// every fifth token from 1 (at most P), each masked id the token + 1.
    static func syntheticShards(counts: [Int], seed: UInt64) -> [ShardRows] {
        var rng = DataRandom(seed: seed)
        return counts.enumerated().map { s, n in
            var rows = ShardRows(count: n, seqLength: S, maxPredictions: P)
            for r in 0..<n {
                let L = rng.uniform() < 0.3 ? S : rng.int(2, S)   // many short ones, some full
                let a = rng.int(1, L - 1)
                for t in 0..<L {
                    rows.inputIds[r * S + t] = Int32(100_000 * s + 100 * r + t)
                    rows.inputMask[r * S + t] = 1
                    rows.segmentIds[r * S + t] = t < a ? 0 : 1
                }
                for (k, p) in stride(from: 1, to: L, by: 5).prefix(P).enumerated() {
                    rows.maskedLMPositions[r * P + k] = Int32(p)
                    rows.maskedLMIds[r * P + k] = rows.inputIds[r * S + p] + 1
                }
                rows.nextSentenceLabels[r] = Int32(rng.int(0, 1))
            }
            return rows
        }
    }

    @Test func strategiesUseTheHistogramUpWithinTheLimits() {
        var rng = DataRandom(seed: 9)
        for K in [1, 2, 3] {
            for S in [8, 128] {
                let histogram = [0] + (1...S).map { _ in rng.uniform() < 0.3 ? 0 : rng.int(0, 50) }
                let packs = SequencePacker.strategies(histogram: histogram, seqLength: S, maxSequencesPerPack: K)
                var used = [Int](repeating: 0, count: S + 1)
                for p in packs {
                    #expect(p.count > 0 && p.lengths.count <= K && p.lengths.reduce(0, +) <= S)
                    for L in p.lengths { used[L] += p.count }
                }
                #expect(used == histogram, "K=\(K) S=\(S)")
                let rows = packs.reduce(0) { $0 + $1.count }
                if K == 1 { #expect(rows == histogram.reduce(0, +)) } else { #expect(rows < histogram.reduce(0, +)) }
            }
        }
        // Lengths that fill rows exactly pair up: 3 × (5 + 3) and 2 × 8 in S = 8.
        let exact = SequencePacker.strategies(histogram: [0, 0, 0, 3, 0, 3, 0, 0, 2], seqLength: 8, maxSequencesPerPack: 3)
        #expect(exact.reduce(0) { $0 + $1.count } == 5)
    }

    /// Every input sequence lands in exactly one packed row, with its tokens, segments, masked ids and NSP label;
    /// positions restart, masked positions move by the sequence's offset, and the rows pass the packed validation.
    @Test func packedRowsHoldEverySequenceOnceAndIntact() throws {
        let shards = Self.syntheticShards(counts: [40, 25, 33], seed: 4)
        let lengths = try shards.enumerated().map { try $1.sequenceLengths(file: "shard\($0)") }
        let K = 3, packedP = Self.P + K
        let plan = SequencePacker.plan(lengths: lengths, maskedCounts: shards.map { s in (0..<s.count).map { s.predictionCount(row: $0) } },
                                       seqLength: Self.S, maxSequencesPerPack: K, maxPredictions: packedP, seed: 1)
        let packed = SequencePacker.pack(plan, from: shards, lengths: lengths, maxSequencesPerPack: K)
        try packed.validate(file: "packed", vocabSize: nil)
        #expect(packed.isPacked && packed.maxPredictions == packedP && packed.count == plan.count && packed.count < 98)
        var seen = Set<SequencePacker.SequenceRef>()
        let S = Self.S, P = Self.P
        for r in 0..<packed.count {
            var slot = 0
            for j in 0..<K where packed.nextSentenceWeights![r * K + j] == 1 {
                let start = Int(packed.nextSentencePositions![r * K + j])
                let code = Int(packed.inputIds[r * S + start])
                let ref = SequencePacker.SequenceRef(shard: code / 100_000, row: (code % 100_000) / 100)
                #expect(seen.insert(ref).inserted, "\(ref) packed twice")
                let input = shards[ref.shard], L = lengths[ref.shard][ref.row]
                for t in 0..<L {
                    #expect(packed.inputIds[r * S + start + t] == input.inputIds[ref.row * S + t])
                    #expect(packed.segmentIds[r * S + start + t] == input.segmentIds[ref.row * S + t])
                    #expect(packed.positions![r * S + start + t] == Int32(t))
                    #expect(packed.inputMask[r * S + start + t] == Int32(j + 1))
                }
                for k in 0..<input.predictionCount(row: ref.row) {
                    #expect(packed.maskedLMPositions[r * packedP + slot] == input.maskedLMPositions[ref.row * P + k] + Int32(start))
                    #expect(packed.maskedLMIds[r * packedP + slot] == input.maskedLMIds[ref.row * P + k])
                    slot += 1
                }
                #expect(packed.nextSentenceLabels[r * K + j] == input.nextSentenceLabels[ref.row])
            }
        }
        #expect(seen.count == 98)
        // The seed decides the draw: the same seed the same rows, another seed another order.
        let again = SequencePacker.plan(lengths: lengths, maskedCounts: shards.map { s in (0..<s.count).map { s.predictionCount(row: $0) } },
                                        seqLength: S, maxSequencesPerPack: K, maxPredictions: packedP, seed: 1)
        let other = SequencePacker.plan(lengths: lengths, maskedCounts: shards.map { s in (0..<s.count).map { s.predictionCount(row: $0) } },
                                        seqLength: S, maxSequencesPerPack: K, maxPredictions: packedP, seed: 2)
        #expect(again == plan && other != plan)
    }

    /// A pack whose sequences mask more than P' positions together is not formed: its sequences go into rows of
    /// their own.
    @Test func packsOverTheMaskedBudgetAreSplit() {
        // Four sequences of length 4 (two masked each) fit one row of 16 by length, but with P' = 5 only two do.
        let lengths = [[4, 4, 4, 4]], masked = [[2, 2, 2, 2]]
        let plan = SequencePacker.plan(lengths: lengths, maskedCounts: masked, seqLength: 16, maxSequencesPerPack: 4,
                                       maxPredictions: 5, seed: 3)
        #expect(plan.map(\.count) == [2, 2])
        #expect(Set(plan.joined()).count == 4)
    }

    @Test func unpackableRowsNameFileAndRow() {
        var rows = ShardRows(count: 3, seqLength: 8, maxPredictions: 2)
        for r in 0..<3 { for t in 0..<4 { rows.inputMask[r * 8 + t] = 1 } }
        rows.inputMask[1 * 8 + 6] = 1
        let e = #expect(throws: ShardError.self) { _ = try rows.sequenceLengths(file: "f.hdf5") }
        #expect(e?.message.hasPrefix("f.hdf5: row 1: input_mask holds 1 at token 6 after padding") == true)
        rows.inputMask[1 * 8 + 6] = 0
        rows.maskedLMPositions[2 * 2] = 5
        let e2 = #expect(throws: ShardError.self) { _ = try rows.sequenceLengths(file: "f.hdf5") }
        #expect(e2?.message.hasPrefix("f.hdf5: row 2: masked_lm_positions holds 5, beyond the row's 4 real tokens") == true)
    }

    // MARK: - `bert pack`

    @Test(.enabled(if: BertProgram.present)) func packCommandWritesPackedShardsAndASummary() throws {
        let dir = try ShardFixtures.temporaryDirectory("packcli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let shards = Self.syntheticShards(counts: [30, 20], seed: 8)
        try FileManager.default.createDirectory(atPath: dir + "/in", withIntermediateDirectories: true)
        for (k, rows) in shards.enumerated() { try ShardWriter.write(rows, to: dir + "/in/x_training_\(k).hdf5") }
        let r = try BertProgram.run(["pack", "--input", dir + "/in", "--output-dir", dir + "/out", "--num-shards", "3", "--seed", "5"])
        #expect(r.status == 0, "\(r.err)")
        let lengths = try shards.enumerated().map { try $1.sequenceLengths(file: "\($0)") }
        let tokens = lengths.joined().reduce(0, +)
        let out = try PretrainingLoader.shardFiles(in: dir + "/out")
        #expect(out.map { ($0 as NSString).lastPathComponent } == (0..<3).map { "packed_training_\($0).hdf5" })
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/out").count == 3)   // no temporaries left
        var rows = 0, sequences = 0
        for path in out {
            let back = try readAndValidateShard(path: path, vocabSize: nil, packed: true)
            #expect(back.seqLength == Self.S && back.maxPredictions == Self.P + 3 && back.sequencesPerRow == 3)
            rows += back.count
            sequences += back.nextSentenceWeights!.reduce(0) { $0 + Int($1) }
        }
        #expect(sequences == 50 && rows < 50)
        let expected = String(format: "packed 50 sequences into %d rows of 32 tokens (3 shards): %.3f sequences per row, fill rate %.4f (unpacked %.4f), 0 packs split for masked positions",
                              rows, 50.0 / Double(rows), Double(tokens) / Double(rows * 32), Double(tokens) / Double(50 * 32))
        #expect(r.out.trimmingCharacters(in: .newlines) == expected)

        // Bad input: packed shards given to `bert pack`, and an output directory that already holds shards.
        let again = try BertProgram.run(["pack", "--input", out[0], "--output-dir", dir + "/twice"])
        #expect(again.status != 0)
        #expect(again.err.trimmingCharacters(in: .newlines) == "Error: \(out[0]): already a packed shard (it has a 'positions' dataset); give `bert pack` the unpacked shards of `bert prepare`")
        #expect(!FileManager.default.fileExists(atPath: dir + "/twice/packed_training_0.hdf5"))
        let full = try BertProgram.run(["pack", "--input", dir + "/in", "--output-dir", dir + "/out"])
        #expect(full.status != 0 && full.err.contains("\(dir)/out: already holds shards (packed_training_0.hdf5)"))
    }
}
