import Foundation
import Testing
@testable import BERT

/// Shards in the packed layout: the round trip, and one clear error naming the file and row for each way a packed
/// row can be damaged.
@Suite struct PackedShardTests {
    static let S = 8, P = 4, K = 2

    /// Rows of two sequences each: tokens 0..<3 and 3..<6, masked positions 1 and 4.
    static func rows(count: Int = 3) -> ShardRows {
        var rows = ShardRows(count: count, seqLength: S, maxPredictions: P, packedSequences: K)
        for r in 0..<count {
            for t in 0..<6 {
                rows.inputIds[r * S + t] = Int32((10 * r + t) % 90 + 5)
                rows.inputMask[r * S + t] = t < 3 ? 1 : 2
                rows.segmentIds[r * S + t] = t == 2 || t == 5 ? 1 : 0
                rows.positions![r * S + t] = Int32(t % 3)
            }
            rows.maskedLMPositions[r * P] = 1; rows.maskedLMPositions[r * P + 1] = 4
            rows.maskedLMIds[r * P] = 7; rows.maskedLMIds[r * P + 1] = 8
            rows.nextSentencePositions![r * K + 1] = 3
            rows.nextSentenceWeights![r * K] = 1; rows.nextSentenceWeights![r * K + 1] = 1
            rows.nextSentenceLabels[r * K + 1] = Int32(r % 2)
        }
        return rows
    }

    @Test func roundTripKeepsEveryValue() throws {
        let dir = try ShardFixtures.temporaryDirectory("packedrt")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rows = Self.rows(count: 300)   // more than one chunk
        rows.inputMask[7 * Self.S + 3] = 1; rows.inputMask[7 * Self.S + 4] = 1; rows.inputMask[7 * Self.S + 5] = 1
        for t in 3..<6 { rows.positions![7 * Self.S + t] = Int32(t) }
        rows.nextSentencePositions![7 * Self.K + 1] = 0; rows.nextSentenceWeights![7 * Self.K + 1] = 0
        rows.nextSentenceLabels[7 * Self.K + 1] = 0   // row 7: one sequence of six tokens
        let path = dir + "/p_training_0.hdf5"
        try ShardWriter.write(rows, to: path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["p_training_0.hdf5"])
        let reader = try ShardReader(path: path)
        #expect(reader.isPacked && reader.sequencesPerRow == Self.K && reader.count == 300)
        #expect(try reader.readAll() == rows)
        let some = try reader.read(rows: [7, 2, 7, 299])
        #expect(some == rows.selecting(rows: [7, 2, 7, 299]))
        let batch = some.batch(rows: [0, 1])
        #expect(batch.isPacked && batch.sequencesPerRow == Self.K && batch.sequenceCount == 3)
        #expect(batch.positions! == Array(rows.positions![(7 * Self.S)..<(8 * Self.S)] + rows.positions![(2 * Self.S)..<(3 * Self.S)]))
        #expect(try readAndValidateShard(path: path, vocabSize: 100, packed: true) == rows)
    }

    /// Each damage, at row 1 of three, gives one line naming the file, the row and what is wrong.
    @Test(arguments: [
        ("gap", "input_mask goes from 1 to 3 at token 3"),
        ("zeroFirst", "input_mask holds 1 at token 1 after padding"),
        ("tooMany", "input_mask holds sequence 3 at token 6, more sequences than the 2"),
        ("positionNoRestart", "positions holds 3 at token 3, expected 0"),
        ("positionStep", "positions holds 2 at token 1, expected 1"),
        ("nspPosition", "next_sentence_positions holds 2 in slot 1, but sequence 2 starts at token 3"),
        ("weightValue", "next_sentence_weights holds 2 in slot 0"),
        ("weightAbsent", "next_sentence_weights is 1 in slot 1, but the row holds 1 sequence(s)"),
        ("weightMissing", "next_sentence_weights is 0 in slot 1, but sequence 2 is present"),
        ("maskedOnPadding", "masked_lm_positions holds 7 in slot 1, beyond the row's 6 real tokens"),
        ("maskedDescending", "masked_lm_positions holds 1 in slot 1 after 4"),
        ("maskedAfterEnd", "masked_lm_positions holds 4 in slot 2 after the list's end"),
        ("badId", "dataset 'input_ids' row 1 holds 100"),
    ])
    func damagedRowsNameFileAndRow(damage: String, message: String) throws {
        let dir = try ShardFixtures.temporaryDirectory("packedbad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rows = Self.rows()
        let o = Self.S, q = Self.P, k = Self.K   // row 1's offsets
        switch damage {
        case "gap": for t in 3..<6 { rows.inputMask[o + t] = 3 }
        case "zeroFirst": rows.inputMask[o] = 0
        case "tooMany": rows.inputMask[o + 6] = 3; rows.positions![o + 6] = 0
        case "positionNoRestart": rows.positions![o + 3] = 3
        case "positionStep": rows.positions![o + 1] = 2
        case "nspPosition": rows.nextSentencePositions![k + 1] = 2
        case "weightValue": rows.nextSentenceWeights![k] = 2
        case "weightAbsent":
            for t in 3..<6 { rows.inputMask[o + t] = 1; rows.positions![o + t] = Int32(t) }
        case "weightMissing": rows.nextSentenceWeights![k + 1] = 0
        case "maskedOnPadding": rows.maskedLMPositions[q + 1] = 7
        case "maskedDescending": rows.maskedLMPositions[q] = 4; rows.maskedLMPositions[q + 1] = 1
        case "maskedAfterEnd": rows.maskedLMPositions[q + 1] = 0; rows.maskedLMPositions[q + 2] = 4
        case "badId": rows.inputIds[o + 2] = 100
        default: Issue.record("unknown damage \(damage)")
        }
        let path = dir + "/bad_training_0.hdf5"
        try ShardWriter.write(rows, to: path)
        let e = #expect(throws: ShardError.self) { _ = try readAndValidateShard(path: path, vocabSize: 100, packed: true) }
        let text = e?.message ?? ""
        #expect(text.hasPrefix(path + ": "), "\(text)")
        #expect(text.contains("row 1"), "\(text)")
        #expect(text.contains(message), "\(text)")
        #expect(!text.contains("\n"))
        // The undamaged rows pass.
        try Self.rows().validate(file: path, vocabSize: 100)
    }

    /// K comes from the shard's `[N, K]` NSP datasets; a row holding more sequences than that is refused.
    @Test func theShardsKLimitsTheSequencesOfARow() throws {
        let dir = try ShardFixtures.temporaryDirectory("packedshape")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rows = Self.rows()
        rows.nextSentenceWeights = [1, 1, 1]   // [3] written as [3, K]: one per row is not K per row
        rows.sequencesPerRow = 1
        rows.nextSentencePositions = [0, 0, 0]; rows.nextSentenceLabels = [0, 0, 0]
        try ShardWriter.write(rows, to: dir + "/k1.hdf5")
        #expect(try ShardReader(path: dir + "/k1.hdf5").sequencesPerRow == 1)   // K = 1 is a valid packed shard shape
        let e = #expect(throws: ShardError.self) { _ = try readAndValidateShard(path: dir + "/k1.hdf5", vocabSize: nil, packed: true) }
        #expect(e?.message.contains("row 0: input_mask holds sequence 2 at token 3, more sequences than the 1") == true)
    }
}
