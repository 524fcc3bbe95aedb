import Foundation

/// Where the loader stands: the next optimizer step starts at sample `position` of epoch `epoch` in the
/// global sample order. A checkpoint stores it; passing it back to `PretrainingLoader` resumes exactly.
public struct LoaderCursor: Codable, Equatable, Sendable {
    /// Passes over the data completed.
    public var epoch: Int
    /// The first sample of the next step, counted in the epoch's global order.
    public var position: Int
    /// The start of epoch `epoch`, or a saved place.
    public init(epoch: Int = 0, position: Int = 0) { self.epoch = epoch; self.position = position }
}

/// Feeds pre-training micro-batches from HDF5 shards to one rank.
///
/// **The global order.** For epoch `e` the shards (sorted by path) are permuted by `DataRandom(seed, [1, e])`
/// and the rows of shard `s` by `DataRandom(seed, [2, e, s])`; the epoch's order is the shards' permuted rows
/// one shard after another, and epochs follow each other as one endless stream. Nothing in it depends on the
/// world size. Optimizer step `k` takes the next `G = worldSize × accumulationSteps × microBatchSize` samples
/// of the stream (a step may straddle an epoch's end: every sample is still seen exactly once per epoch);
/// rank `r` takes the contiguous slice `[r·A·b, (r+1)·A·b)` of it and cuts it into `A` micro-batches of `b`.
/// So the union of the ranks' slices is the world-size-1 global batch, whatever the world size.
///
/// **Reading.** Each rank keeps from a shard only the rows that fall into its slices, read with simple
/// hyperslabs over the blocks that hold them (`ShardReader.read(rows:)`), one shard at a time, and reads
/// the next shard on a background thread while the current one is served. Every row read is validated
/// (ids below `vocabSize`, positions below S, labels 0/1, a packed row's structure).
///
/// **Layouts.** A run reads one layout: NVIDIA's unpacked shards, or packed shards (`bert pack`) when constructed
/// with `packed: true`. A packed row is one sample of the stream, so the order, the world-size independence and
/// the resume above hold per row in both.
public final class PretrainingLoader: @unchecked Sendable {
    /// The shards, sorted by path.
    public let shardPaths: [String]
    /// Rows per shard, in `shardPaths` order.
    public let shardCounts: [Int]
    /// S of the shards.
    public let seqLength: Int
    /// P of the shards (P' when packed).
    public let maxPredictions: Int
    /// Whether the shards are packed.
    public let isPacked: Bool
    /// K: sequences a row may hold (1 unpacked).
    public let sequencesPerRow: Int
    /// Samples in one epoch.
    public let samplesPerEpoch: Int
    /// Fixes the global sample order.
    public let seed: UInt64
    /// W: ranks.
    public let worldSize: Int
    /// r: this rank.
    public let rank: Int
    /// b: samples per micro-batch.
    public let microBatchSize: Int
    /// A: micro-batches per optimizer step.
    public let accumulationSteps: Int
    /// G: samples per optimizer step over all ranks.
    public var globalBatchSize: Int { worldSize * accumulationSteps * microBatchSize }
    /// The cursor of the next step.
    public var cursor: LoaderCursor { LoaderCursor(epoch: next / samplesPerEpoch, position: next % samplesPerEpoch) }

    private let vocabSize: Int?
    private let prefetch: Bool
    /// The first sample of the first step this loader serves (its batch grid starts here).
    private let base: Int
    /// The first sample of the next step, counted over the endless stream.
    private var next: Int
    private let queue = DispatchQueue(label: "bert.loader.prefetch")
    private let lock = NSLock()
    private var segments: [Int: SegmentFuture] = [:]
    private var orderCache: (epoch: Int, order: [Int])?
    private var keptRows = 0

    /// Rows this rank has loaded from shards so far (its own samples only; prefetched ones included).
    public var rowsLoaded: Int { lock.lock(); defer { lock.unlock() }; return keptRows }

    /// - Parameters:
    ///   - shardPaths: the training shards (sorted here by path so the listing order never matters).
    ///   - seed: fixes the global order.
    ///   - worldSize, rank: this process's place (W, r).
    ///   - microBatchSize: b, samples per micro-batch.
    ///   - accumulationSteps: A, micro-batches per optimizer step.
    ///   - vocabSize: when given, every row read is checked to hold ids in `[0, vocabSize)`.
    ///   - cursor: where to start (a checkpoint's `cursor`).
    ///   - prefetch: read the next shard in the background (turn off to read on demand).
    ///   - packed: read packed shards; a shard of the other layout is refused.
    /// - Throws: `ShardError` when a shard is missing, unreadable, of the other layout, or its shape disagrees
    ///   with the others.
    public init(shardPaths: [String], seed: UInt64, worldSize: Int = 1, rank: Int = 0, microBatchSize: Int,
                accumulationSteps: Int = 1, vocabSize: Int? = nil, cursor: LoaderCursor = LoaderCursor(),
                prefetch: Bool = true, packed: Bool = false) throws {
        precondition(worldSize >= 1 && rank >= 0 && rank < worldSize, "PretrainingLoader: rank \(rank) of \(worldSize)")
        precondition(microBatchSize >= 1 && accumulationSteps >= 1, "PretrainingLoader: empty batch")
        guard !shardPaths.isEmpty else {
            throw ShardError("no training shards given; point --input-dir at the output of `bert prepare`")
        }
        let paths = shardPaths.sorted()
        var counts: [Int] = []
        var shape: (Int, Int, Int)?
        for p in paths {
            let r = try ShardReader(path: p)
            try r.expectLayout(packed: packed)
            if let (s, q, k) = shape, s != r.seqLength || q != r.maxPredictions || k != r.sequencesPerRow {
                throw ShardError("\(p): shape S=\(r.seqLength), P=\(r.maxPredictions), K=\(r.sequencesPerRow) differs from \(paths[0]) (S=\(s), P=\(q), K=\(k)); use shards from one `bert prepare` (or `bert pack`) run")
            }
            shape = (r.seqLength, r.maxPredictions, r.sequencesPerRow)
            counts.append(r.count)
        }
        self.shardPaths = paths
        shardCounts = counts
        seqLength = shape!.0
        maxPredictions = shape!.1
        sequencesPerRow = shape!.2
        isPacked = packed
        samplesPerEpoch = counts.reduce(0, +)
        guard samplesPerEpoch > 0 else { throw ShardError("\(paths[0]): the shards hold no samples; re-run `bert prepare` on more text") }
        guard cursor.epoch >= 0, cursor.position >= 0, cursor.position < samplesPerEpoch else {
            throw ShardError("loader cursor \(cursor) is outside an epoch of \(samplesPerEpoch) samples; the checkpoint belongs to other shards")
        }
        self.seed = seed
        self.worldSize = worldSize
        self.rank = rank
        self.microBatchSize = microBatchSize
        self.accumulationSteps = accumulationSteps
        self.vocabSize = vocabSize
        self.prefetch = prefetch
        base = cursor.epoch * samplesPerEpoch + cursor.position
        next = base
    }

    /// The shard order of `epoch` (indices into `shardPaths`).
    public func shardOrder(epoch: Int) -> [Int] {
        lock.lock()
        if let c = orderCache, c.epoch == epoch { lock.unlock(); return c.order }
        lock.unlock()
        var rng = DataRandom(seed: seed, streams: [1, UInt64(epoch)])
        let order = rng.permutation(shardPaths.count)
        lock.lock(); orderCache = (epoch, order); lock.unlock()
        return order
    }

    /// The row order of shard `shard` in `epoch`.
    public func rowOrder(epoch: Int, shard: Int) -> [Int] {
        var rng = DataRandom(seed: seed, streams: [2, UInt64(epoch), UInt64(shard)])
        return rng.permutation(shardCounts[shard])
    }

    /// The global sample at stream index `index`, as (shard, row).
    public func globalSample(at index: Int) -> (shard: Int, row: Int) {
        let (seg, i) = locate(index)
        let info = segmentInfo(seg)
        return (info.shard, rowOrder(epoch: info.epoch, shard: info.shard)[i])
    }

    /// This rank's micro-batches for the next optimizer step, in order (`accumulationSteps` of them), and the
    /// cursor moves one global batch on.
    /// - Throws: `ShardError` when a shard cannot be read or holds bad values.
    public func nextStep() throws -> [PretrainingBatch] {
        let slice = accumulationSteps * microBatchSize
        let first = next + rank * slice
        var batches: [PretrainingBatch] = []
        for m in 0..<accumulationSteps {
            batches.append(try gather(from: first + m * microBatchSize, count: microBatchSize))
        }
        next += globalBatchSize
        // Forget segments that lie wholly behind the next step.
        let (keep, _) = locate(next + rank * slice)
        lock.lock()
        for k in segments.keys where k < keep { segments[k] = nil }
        lock.unlock()
        return batches
    }

    // MARK: - Internals

    /// A segment is one shard's turn in the stream: segment `k` is position `k % shardCount` of epoch
    /// `k / shardCount`.
    private struct SegmentInfo { var epoch: Int; var shard: Int; var start: Int }

    private func segmentInfo(_ k: Int) -> SegmentInfo {
        let e = k / shardPaths.count, j = k % shardPaths.count
        let order = shardOrder(epoch: e)
        var start = e * samplesPerEpoch
        for q in 0..<j { start += shardCounts[order[q]] }
        return SegmentInfo(epoch: e, shard: order[j], start: start)
    }

    /// Stream index → (segment, index within the segment).
    private func locate(_ index: Int) -> (Int, Int) {
        let e = index / samplesPerEpoch
        var p = index % samplesPerEpoch
        let order = shardOrder(epoch: e)
        for (j, s) in order.enumerated() {
            if p < shardCounts[s] { return (e * shardPaths.count + j, p) }
            p -= shardCounts[s]
        }
        fatalError("PretrainingLoader.locate: index past the epoch")
    }

    private func gather(from start: Int, count: Int) throws -> PretrainingBatch {
        var pieces: [(Int, [Int])] = []   // (segment, indices within it)
        for l in start..<(start + count) {
            let (seg, i) = locate(l)
            if let last = pieces.last, last.0 == seg { pieces[pieces.count - 1].1.append(i) }
            else { pieces.append((seg, [i])) }
        }
        var parts: [PretrainingBatch] = []
        for (seg, idx) in pieces {
            let loaded = try segment(seg)
            parts.append(loaded.rows.batch(rows: idx.map { loaded.slot[$0] }))
        }
        if parts.count == 1 { return parts[0] }
        var out = parts[0]
        for p in parts.dropFirst() { out.append(p) }
        return out
    }

    /// The loaded rows of segment `k` (waiting for its prefetch if one is running), and a prefetch of `k + 1`.
    private func segment(_ k: Int) throws -> LoadedSegment {
        let future = startLoad(k)
        if prefetch { _ = startLoad(k + 1) }
        return try future.wait()
    }

    private func startLoad(_ k: Int) -> SegmentFuture {
        lock.lock()
        if let f = segments[k] { lock.unlock(); return f }
        let f = SegmentFuture()
        segments[k] = f
        lock.unlock()
        let work: @Sendable () -> Void = { [self] in f.finish(Result { try self.load(k) }) }
        if prefetch { queue.async(execute: work) } else { work() }
        return f
    }

    /// Reads the rows of segment `k` that this rank will serve.
    private func load(_ k: Int) throws -> LoadedSegment {
        let info = segmentInfo(k)
        let order = rowOrder(epoch: info.epoch, shard: info.shard)
        let slice = accumulationSteps * microBatchSize
        let G = globalBatchSize
        // needed[i] for the segment index i: stream index l = info.start + i, mine when it lies at or after
        // the first step and in my slice of its global batch.
        var wanted: [Int] = []
        var indexOfRow: [Int] = []
        for i in 0..<order.count {
            let l = info.start + i
            guard l >= base else { continue }
            if ((l - base) % G) / slice == rank { wanted.append(order[i]); indexOfRow.append(i) }
        }
        let reader = try ShardReader(path: shardPaths[info.shard])
        let rows = try reader.read(rows: wanted)
        try rows.validate(file: shardPaths[info.shard], vocabSize: vocabSize, fileRows: wanted)
        var slot = [Int](repeating: -1, count: order.count)
        for (k, i) in indexOfRow.enumerated() { slot[i] = k }
        lock.lock(); keptRows += rows.count; lock.unlock()
        return LoadedSegment(rows: rows, slot: slot)
    }
}

/// One segment's rows for this rank; `slot[i]` is the row of `rows` holding segment index `i`.
struct LoadedSegment: @unchecked Sendable {
    var rows: ShardRows
    var slot: [Int]
}

/// A load that may still be running on the prefetch thread.
final class SegmentFuture: @unchecked Sendable {
    private let condition = NSCondition()
    private var result: Result<LoadedSegment, Error>?

    func finish(_ r: Result<LoadedSegment, Error>) {
        condition.lock(); result = r; condition.broadcast(); condition.unlock()
    }

    func wait() throws -> LoadedSegment {
        condition.lock()
        while result == nil { condition.wait() }
        let r = result!
        condition.unlock()
        return try r.get()
    }
}

extension PretrainingLoader {
    /// The shard files of one kind in a directory: names containing `training` (or `test`) and ending in
    /// `.hdf5` / `.h5`, sorted — NVIDIA's naming (`…_training_0.hdf5`) — checked against the directory's
    /// `ShardManifest`s when `bert prepare` wrote them.
    public static func shardFiles(in directory: String, kind: String = "training") throws -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw ShardError("\(directory): cannot list the shard directory; check --input-dir")
        }
        let paths = names.filter { ($0.hasSuffix(".hdf5") || $0.hasSuffix(".h5")) && $0.contains(kind) }
            .sorted().map { (directory as NSString).appendingPathComponent($0) }
        try ShardManifest.check(paths, in: directory)
        return paths
    }
}
