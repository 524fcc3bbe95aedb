import Foundation

/// Packs pre-training sequences (rows of NVIDIA's layout) into rows of up to K sequences, the packed layout of
/// `HDF5Shard.swift`, so that a step spends its work on tokens rather than padding.
///
/// **Which lengths share a row** comes from the global length histogram alone, by shortest-pack-first histogram
/// packing (SPFHP, Krell et al. 2021, "Efficient sequence packing without cross-contamination", Graphcore): lengths
/// are taken longest first; each goes, as many at a time as the histogram holds, into the open pack with the most
/// room left that fits it, or else opens new packs (ours put as many of the length into each as fit); a pack
/// closes when it is full or holds K sequences. It works
/// on counts, not on sequences, so it costs O(S²) however large the data set.
///
/// **Which sequences fill those rows** is drawn with `DataRandom` from the seed: the sequences of each length are
/// shuffled, and so are the packs, so that a row does not hold neighbours of one document, and the packed order does
/// not follow the lengths.
public enum SequencePacker {
    /// One input sequence: a row of one of the input shards.
    public struct SequenceRef: Hashable, Sendable {
        public var shard: Int
        public var row: Int
        public init(shard: Int, row: Int) { self.shard = shard; self.row = row }
    }

    /// A pack shape: the lengths of its sequences (longest first) and how many packs have it.
    public struct Strategy: Equatable, Sendable {
        public var lengths: [Int]
        public var count: Int
    }

    /// Shortest-pack-first histogram packing.
    /// - Parameters:
    ///   - histogram: `histogram[L]` sequences of length L, for L in `0...S` (index 0 is ignored).
    ///   - seqLength: S, the row length.
    ///   - maxSequencesPerPack: K.
    /// - Returns: pack shapes whose lengths use up the histogram exactly; each sums to at most S.
    public static func strategies(histogram: [Int], seqLength S: Int, maxSequencesPerPack K: Int) -> [Strategy] {
        precondition(histogram.count == S + 1 && K >= 1, "SequencePacker: histogram must cover 0...S")
        // open[f]: packs with f tokens of room that can still take a sequence, newest last.
        var open = [[Strategy]](repeating: [], count: S + 1)
        var closed: [Strategy] = []
        func place(_ pack: Strategy, room: Int) {
            if pack.lengths.count == K || room == 0 { closed.append(pack) } else { open[room].append(pack) }
        }
        for L in stride(from: S, through: 1, by: -1) {
            var left = histogram[L]
            var room = S
            while left > 0 {
                while room >= L && open[room].isEmpty { room -= 1 }
                guard room >= L else {
                    // New packs, each with as many of this length as fit (SPFHP opens one pack per sequence,
                    // so equal lengths that could share a row never would).
                    let m = min(K, S / L)
                    if left / m > 0 { place(Strategy(lengths: Array(repeating: L, count: m), count: left / m), room: S - m * L) }
                    if left % m > 0 { place(Strategy(lengths: Array(repeating: L, count: left % m), count: 1), room: S - (left % m) * L) }
                    break
                }
                var pack = open[room].removeLast()
                let taken = min(pack.count, left)
                if pack.count > taken { open[room].append(Strategy(lengths: pack.lengths, count: pack.count - taken)) }
                left -= taken
                pack.lengths.append(L)
                pack.count = taken
                place(pack, room: room - L)
            }
        }
        return closed + open.flatMap { $0 }
    }

    /// Assigns sequences to rows.
    /// - Parameters:
    ///   - lengths: `lengths[s][r]` the real tokens of row r of input shard s.
    ///   - maskedCounts: `maskedCounts[s][r]` its masked positions.
    ///   - seqLength: S.
    ///   - maxSequencesPerPack: K.
    ///   - maxPredictions: P' of a packed row; a pack whose sequences mask more is not formed — its sequences
    ///     are split over rows of their own, in order, each taking as many as fit.
    ///   - seed: draws which sequence of a length goes into which pack, and the order of the packs.
    /// - Returns: the rows, each the sequences it holds in order; every input sequence appears exactly once.
    public static func plan(lengths: [[Int]], maskedCounts: [[Int]], seqLength S: Int, maxSequencesPerPack K: Int,
                            maxPredictions: Int, seed: UInt64) -> [[SequenceRef]] {
        var byLength = [[SequenceRef]](repeating: [], count: S + 1)
        for (s, shard) in lengths.enumerated() {
            for (r, L) in shard.enumerated() { byLength[L].append(SequenceRef(shard: s, row: r)) }
        }
        for L in 1...S {
            var rng = DataRandom(seed: seed, streams: [3, UInt64(L)])
            rng.shuffle(&byLength[L])
        }
        var shapes: [[Int]] = []
        for strategy in strategies(histogram: byLength.map(\.count), seqLength: S, maxSequencesPerPack: K) {
            shapes.append(contentsOf: repeatElement(strategy.lengths, count: strategy.count))
        }
        var rng = DataRandom(seed: seed, streams: [4])
        rng.shuffle(&shapes)
        var taken = [Int](repeating: 0, count: S + 1)
        var rows: [[SequenceRef]] = []
        rows.reserveCapacity(shapes.count)
        for shape in shapes {
            var row: [SequenceRef] = [], masked = 0
            for L in shape {
                let ref = byLength[L][taken[L]]
                taken[L] += 1
                let m = maskedCounts[ref.shard][ref.row]
                if !row.isEmpty && masked + m > maxPredictions { rows.append(row); row = []; masked = 0 }
                row.append(ref)
                masked += m
            }
            rows.append(row)
        }
        return rows
    }

    /// Builds packed rows from the plan.
    /// - Parameters:
    ///   - plan: the sequences of each row (from `plan`).
    ///   - shards: the input shards, in NVIDIA's layout, with `lengths` their rows' real tokens.
    ///   - maxSequencesPerPack: K.
    /// - Returns: rows in the packed layout with P' = P + K: tokens, segments and masked ids copied, the mask set to
    ///   the sequence index, positions restarting at 0, masked positions shifted by the sequence's offset, one NSP
    ///   slot per sequence at its first token.
    public static func pack(_ plan: [[SequenceRef]], from shards: [ShardRows], lengths: [[Int]],
                            maxSequencesPerPack K: Int) -> ShardRows {
        let S = shards[0].seqLength, P = shards[0].maxPredictions, packedP = P + K
        var out = ShardRows(count: plan.count, seqLength: S, maxPredictions: packedP, packedSequences: K)
        var positions = out.positions!, nspPositions = out.nextSentencePositions!, weights = out.nextSentenceWeights!
        for (r, row) in plan.enumerated() {
            precondition(row.count <= K, "SequencePacker.pack: a row of \(row.count) sequences, more than K = \(K)")
            var offset = 0, slot = 0
            for (j, ref) in row.enumerated() {
                let input = shards[ref.shard], L = lengths[ref.shard][ref.row]
                for t in 0..<L {
                    out.inputIds[r * S + offset + t] = input.inputIds[ref.row * S + t]
                    out.segmentIds[r * S + offset + t] = input.segmentIds[ref.row * S + t]
                    out.inputMask[r * S + offset + t] = Int32(j + 1)
                    positions[r * S + offset + t] = Int32(t)
                }
                for k in 0..<input.predictionCount(row: ref.row) {
                    precondition(slot < packedP, "SequencePacker.pack: more masked positions than P' = \(packedP)")
                    out.maskedLMPositions[r * packedP + slot] = input.maskedLMPositions[ref.row * P + k] + Int32(offset)
                    out.maskedLMIds[r * packedP + slot] = input.maskedLMIds[ref.row * P + k]
                    slot += 1
                }
                nspPositions[r * K + j] = Int32(offset)
                out.nextSentenceLabels[r * K + j] = input.nextSentenceLabels[ref.row]
                weights[r * K + j] = 1
                offset += L
            }
            precondition(offset <= S, "SequencePacker.pack: a row of \(offset) tokens, more than S = \(S)")
        }
        out.positions = positions; out.nextSentencePositions = nspPositions; out.nextSentenceWeights = weights
        return out
    }
}

extension ShardRows {
    /// The masked positions of row `r` in NVIDIA's layout: those before the first 0.
    public func predictionCount(row r: Int) -> Int {
        let P = maxPredictions
        return (0..<P).first { maskedLMPositions[r * P + $0] == 0 } ?? P
    }

    /// The real tokens of each row in NVIDIA's layout (its mask's run of 1s), checked to be what packing needs.
    /// - Throws: `ShardError` naming `file` and the row when a row is empty, its mask is not 1s then 0s, or a
    ///   masked position falls on padding.
    public func sequenceLengths(file: String) throws -> [Int] {
        let S = seqLength, P = maxPredictions
        return try (0..<count).map { r in
            let mask = inputMask[(r * S)..<((r + 1) * S)]
            let L = mask.firstIndex(of: 0).map { $0 - r * S } ?? S
            func fail(_ why: String) -> ShardError {
                ShardError("\(file): row \(r): \(why); only NVIDIA's layout (one sequence a row) can be packed — re-create the shard with `bert prepare`")
            }
            guard L > 0 else { throw fail("input_mask holds no token") }
            if let t = mask[(r * S + L)...].firstIndex(where: { $0 != 0 }) { throw fail("input_mask holds \(mask[t]) at token \(t - r * S) after padding") }
            for k in 0..<predictionCount(row: r) where Int(maskedLMPositions[r * P + k]) >= L {
                throw fail("masked_lm_positions holds \(maskedLMPositions[r * P + k]), beyond the row's \(L) real tokens")
            }
            return L
        }
    }
}
