import CHDF5
import Foundation
import Synchronization

// Pre-training shards in NVIDIA's HDF5 layout (DeepLearningExamples PyTorch/LanguageModeling/BERT,
// create_pretraining_data.py `write_instance_to_example_file`), N instances, S max_seq_length,
// P max_predictions_per_seq:
//
//   input_ids            i4 [N, S]      masked_lm_positions  i4 [N, P]
//   input_mask           i1 [N, S]      masked_lm_ids        i4 [N, P]
//   segment_ids          i1 [N, S]      next_sentence_labels i1 [N]
//
// and the packed layout of Habana's and MLPerf's packed BERT (Model-References PyTorch/nlp/bert
// `pack_pretraining_data_pytorch.py` and its `pretraining_dataset`), N rows of up to K sequences, P' = P + K:
//
//   input_ids            i4 [N, S]      masked_lm_positions     i4 [N, P']
//   input_mask           i1 [N, S]      masked_lm_ids           i4 [N, P']
//   segment_ids          i1 [N, S]      next_sentence_positions i4 [N, K]
//   positions            i4 [N, S]      next_sentence_labels    i1 [N, K]
//                                       next_sentence_weights   i4 [N, K]
//
// `input_mask` holds the 1-based sequence index (0 padding), `positions` restart at 0 at each sequence. A reader
// tells the layouts apart by the `positions` dataset. gzip-compressed and chunked. The reader takes any integer
// widths (HDF5 converts to native int32), so Habana's i4 `input_mask` reads as well as our i1.

/// A shard problem, worded as one line that names the file, the dataset and what to do.
public struct ShardError: Error, CustomStringConvertible, Equatable {
    /// The whole message: `<file>: <what is wrong>; <what to do>`.
    public var message: String
    /// - Parameter message: one line naming the file and what to do.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// The dataset names, in Habana's order (NVIDIA's six, then the packed layout's three in their places).
public enum ShardDataset: String, CaseIterable, Sendable {
    case inputIds = "input_ids"
    case inputMask = "input_mask"
    case segmentIds = "segment_ids"
    case positions = "positions"
    case maskedLMPositions = "masked_lm_positions"
    case maskedLMIds = "masked_lm_ids"
    case nextSentencePositions = "next_sentence_positions"
    case nextSentenceLabels = "next_sentence_labels"
    case nextSentenceWeights = "next_sentence_weights"

    /// The datasets of one layout: NVIDIA's six, or all nine when packed.
    public static func layout(packed: Bool) -> [ShardDataset] {
        packed ? allCases : [.inputIds, .inputMask, .segmentIds, .maskedLMPositions, .maskedLMIds, .nextSentenceLabels]
    }

    /// Bytes per element in the files: i4 for ids, positions and weights (NVIDIA's and Habana's choice), i1 for
    /// masks, segments and labels.
    public var fileBytes: Int {
        switch self {
        case .inputIds, .positions, .maskedLMPositions, .maskedLMIds, .nextSentencePositions, .nextSentenceWeights: return 4
        case .inputMask, .segmentIds, .nextSentenceLabels: return 1
        }
    }
}

/// The arrays of a shard (or of some of its rows), 32-bit and row-major: NVIDIA's six, plus the packed layout's
/// three when `isPacked`.
public struct ShardRows: Sendable, Equatable {
    /// N: rows.
    public var count: Int
    /// S
    public var seqLength: Int
    /// P (P' = P + K when packed)
    public var maxPredictions: Int
    /// K: the sequences a row may hold; 1 in NVIDIA's layout.
    public var sequencesPerRow: Int
    /// `[N, S]` token ids, zero-padded.
    public var inputIds: [Int32]
    /// `[N, S]` 1 for real tokens; packed: the 1-based index of the token's sequence in its row, 0 for padding.
    public var inputMask: [Int32]
    /// `[N, S]` 0 for `[CLS]` A `[SEP]`, 1 for B `[SEP]`.
    public var segmentIds: [Int32]
    /// `[N, S]` packed only: position ids, restarting at 0 at each sequence's `[CLS]`; nil in NVIDIA's layout.
    public var positions: [Int32]?
    /// `[N, P]` masked positions, ascending, zero-padded.
    public var maskedLMPositions: [Int32]
    /// `[N, P]` original ids at the masked positions, zero-padded.
    public var maskedLMIds: [Int32]
    /// `[N, K]` packed only: the row position of each sequence's `[CLS]`, 0 in empty slots.
    public var nextSentencePositions: [Int32]?
    /// `[N, K]` 1 when B is a random sentence (`[N]` in NVIDIA's layout, where K = 1).
    public var nextSentenceLabels: [Int32]
    /// `[N, K]` packed only: 1 for a sequence, 0 for an empty slot.
    public var nextSentenceWeights: [Int32]?

    /// Zero-filled rows.
    /// - Parameter packedSequences: nil for NVIDIA's layout; K for the packed layout of up to K sequences a row.
    public init(count: Int, seqLength: Int, maxPredictions: Int, packedSequences: Int? = nil) {
        self.count = count; self.seqLength = seqLength; self.maxPredictions = maxPredictions
        sequencesPerRow = packedSequences ?? 1
        inputIds = Array(repeating: 0, count: count * seqLength)
        inputMask = inputIds; segmentIds = inputIds
        maskedLMPositions = Array(repeating: 0, count: count * maxPredictions)
        maskedLMIds = maskedLMPositions
        nextSentenceLabels = Array(repeating: 0, count: count * sequencesPerRow)
        if packedSequences != nil {
            positions = inputIds
            nextSentencePositions = nextSentenceLabels; nextSentenceWeights = nextSentenceLabels
        }
    }

    /// Pads instances into rows (NVIDIA's writer: zeros after the tokens and after the predictions).
    public init(instances: [TrainingInstance], seqLength: Int, maxPredictions: Int) {
        self.init(count: instances.count, seqLength: seqLength, maxPredictions: maxPredictions)
        for (r, inst) in instances.enumerated() {
            precondition(inst.inputIds.count <= seqLength && inst.maskedPositions.count <= maxPredictions,
                         "ShardRows: instance longer than the shard's shape")
            let o = r * seqLength
            for (k, t) in inst.inputIds.enumerated() {
                inputIds[o + k] = t
                inputMask[o + k] = 1
                segmentIds[o + k] = k < inst.segmentALength ? 0 : 1
            }
            let q = r * maxPredictions
            for (k, p) in inst.maskedPositions.enumerated() {
                maskedLMPositions[q + k] = p
                maskedLMIds[q + k] = inst.maskedIds[k]
            }
            nextSentenceLabels[r] = inst.isRandomNext ? 1 : 0
        }
    }

    /// Whether the rows are in the packed layout.
    public var isPacked: Bool { positions != nil }

    /// The datasets this layout stores.
    public var datasets: [ShardDataset] { ShardDataset.layout(packed: isPacked) }

    /// Values per row of dataset `d`: S, P or K.
    public func width(of d: ShardDataset) -> Int {
        switch d {
        case .inputIds, .inputMask, .segmentIds, .positions: return seqLength
        case .maskedLMPositions, .maskedLMIds: return maxPredictions
        case .nextSentencePositions, .nextSentenceLabels, .nextSentenceWeights: return sequencesPerRow
        }
    }

    /// The values of dataset `d` (`[N, width(of: d)]`; empty for a packed-only dataset of an unpacked shard).
    public subscript(d: ShardDataset) -> [Int32] {
        get {
            switch d {
            case .inputIds: return inputIds
            case .inputMask: return inputMask
            case .segmentIds: return segmentIds
            case .positions: return positions ?? []
            case .maskedLMPositions: return maskedLMPositions
            case .maskedLMIds: return maskedLMIds
            case .nextSentencePositions: return nextSentencePositions ?? []
            case .nextSentenceLabels: return nextSentenceLabels
            case .nextSentenceWeights: return nextSentenceWeights ?? []
            }
        }
        set {
            switch d {
            case .inputIds: inputIds = newValue
            case .inputMask: inputMask = newValue
            case .segmentIds: segmentIds = newValue
            case .positions: positions = newValue
            case .maskedLMPositions: maskedLMPositions = newValue
            case .maskedLMIds: maskedLMIds = newValue
            case .nextSentencePositions: nextSentencePositions = newValue
            case .nextSentenceLabels: nextSentenceLabels = newValue
            case .nextSentenceWeights: nextSentenceWeights = newValue
            }
        }
    }

    /// Rows `rows` (indices into self, any order, repeats allowed) in the same layout.
    public func selecting(rows: [Int]) -> ShardRows {
        var out = ShardRows(count: rows.count, seqLength: seqLength, maxPredictions: maxPredictions,
                            packedSequences: isPacked ? sequencesPerRow : nil)
        for d in datasets {
            let w = width(of: d), values = self[d]
            var picked = [Int32]()
            picked.reserveCapacity(rows.count * w)
            for r in rows { picked.append(contentsOf: values[(r * w)..<((r + 1) * w)]) }
            out[d] = picked
        }
        return out
    }

    /// Appends `other`'s rows (same layout and shape).
    public mutating func append(_ other: ShardRows) {
        precondition(other.seqLength == seqLength && other.maxPredictions == maxPredictions
                     && other.sequencesPerRow == sequencesPerRow && other.isPacked == isPacked,
                     "ShardRows.append: layouts disagree")
        for d in datasets { self[d] += other[d] }
        count += other.count
    }

    /// Rows `rows` (indices into self) as a `PretrainingBatch`, packed when the shard is.
    public func batch(rows: [Int]) -> PretrainingBatch {
        let s = selecting(rows: rows)
        guard let positions = s.positions, let nspPositions = s.nextSentencePositions, let weights = s.nextSentenceWeights else {
            return PretrainingBatch(batchSize: rows.count, seqLength: seqLength, maxPredictions: maxPredictions,
                                    inputIds: s.inputIds, segmentIds: s.segmentIds, inputMask: s.inputMask,
                                    maskedLMPositions: s.maskedLMPositions, maskedLMIds: s.maskedLMIds,
                                    nextSentenceLabels: s.nextSentenceLabels)
        }
        return PretrainingBatch(batchSize: rows.count, seqLength: seqLength, maxPredictions: maxPredictions,
                                sequencesPerRow: sequencesPerRow, inputIds: s.inputIds, segmentIds: s.segmentIds,
                                inputMask: s.inputMask, positions: positions, maskedLMPositions: s.maskedLMPositions,
                                maskedLMIds: s.maskedLMIds, nextSentencePositions: nspPositions,
                                nextSentenceLabels: s.nextSentenceLabels, nextSentenceWeights: weights)
    }

    /// Checks the values: ids in `[0, vocabSize)` (when given), segment ids and labels 0/1, positions in `[0, S)`;
    /// mask 0/1 in NVIDIA's layout, and each packed row's structure (`validatePackedRow`).
    /// - Parameter fileRows: where these rows were read as a selection (`ShardReader.read(rows:)`), the file's row of
    ///   each, so that a message names the row a user finds in the file; nil when row r is the file's row r.
    /// - Throws: `ShardError` naming `file`, the dataset or row and the first bad value.
    public func validate(file: String, vocabSize: Int?, fileRows: [Int]? = nil) throws {
        func fileRow(_ r: Int) -> Int { fileRows?[r] ?? r }
        func fail(_ d: ShardDataset, _ index: Int, _ value: Int32, _ wanted: String, width: Int) -> ShardError {
            ShardError("\(file): dataset '\(d.rawValue)' row \(fileRow(index / width)) holds \(value), "
                       + "expected \(wanted); the shard is damaged or was made with another vocabulary/shape — "
                       + "re-run `bert prepare` with the same --vocab-file and --max-seq-length")
        }
        let limit = Int32(clamping: vocabSize ?? Int(Int32.max))
        for (k, v) in inputIds.enumerated() where v < 0 || v >= limit {
            throw fail(.inputIds, k, v, "an id in [0, \(vocabSize ?? Int(Int32.max)))", width: seqLength)
        }
        for (k, v) in maskedLMIds.enumerated() where v < 0 || v >= limit {
            throw fail(.maskedLMIds, k, v, "an id in [0, \(vocabSize ?? Int(Int32.max)))", width: maxPredictions)
        }
        for (k, v) in maskedLMPositions.enumerated() where v < 0 || Int(v) >= seqLength {
            throw fail(.maskedLMPositions, k, v, "a position in [0, \(seqLength))", width: maxPredictions)
        }
        if !isPacked {
            for (k, v) in inputMask.enumerated() where v != 0 && v != 1 {
                throw fail(.inputMask, k, v, "0 or 1", width: seqLength)
            }
        }
        for (k, v) in segmentIds.enumerated() where v != 0 && v != 1 {
            throw fail(.segmentIds, k, v, "0 or 1", width: seqLength)
        }
        for (k, v) in nextSentenceLabels.enumerated() where v != 0 && v != 1 {
            throw fail(.nextSentenceLabels, k, v, "0 or 1", width: sequencesPerRow)
        }
        guard isPacked else { return }
        for r in 0..<count {
            if let problem = validatePackedRow(r) {
                throw ShardError("\(file): row \(fileRow(r)): \(problem); the packed shard is damaged — re-create it with `bert pack`")
            }
        }
    }
}

/// Thin HDF5 helpers; every call site silences HDF5's own error printing for its thread first.
enum HDF5 {
    /// Serialises our HDF5 calls: Debian's library is built thread-safe, other builds may not be.
    static let lock = NSRecursiveLock()

    static func silence() { swh5_silence_errors() }

    /// A file-access property list with HDF5's file locking off, for every file we create or open (the caller closes
    /// it). HDF5 1.10.7 and later flock() each file on a descriptor not marked close-on-exec: a process started while
    /// a shard is being written (an MPI launcher, any subprocess) inherits the writer's exclusive lock and holds it
    /// after the writer has closed, and every open of that shard then fails until that process exits. The lock guards
    /// nothing here — a shard is written under a private temporary name and renamed into place whole — and on NFS or
    /// Lustre flock itself may fail, which is why h5py users set HDF5_USE_FILE_LOCKING=FALSE.
    static func unlockedFileAccess(_ path: String) throws -> hid_t {
        let fapl = H5Pcreate(swh5_p_file_access())
        guard fapl >= 0, H5Pset_file_locking(fapl, false, true) >= 0 else {
            closePlist(fapl)
            throw ShardError("\(path): HDF5 refused a file-access property list")
        }
        return fapl
    }

    /// Closes an id of the right kind when it is valid.
    static func closeDataset(_ id: hid_t) { if id >= 0 { H5Dclose(id) } }
    static func closeSpace(_ id: hid_t) { if id >= 0 { H5Sclose(id) } }
    static func closeFile(_ id: hid_t) { if id >= 0 { H5Fclose(id) } }
    static func closePlist(_ id: hid_t) { if id >= 0 { H5Pclose(id) } }
}

/// Writes one shard in NVIDIA's layout or the packed one.
///
/// The chunks are deflated on `threads` threads (`ChunkCompressor`: our run-length deflate, or a gzip level through
/// libdeflate when present, else zlib; the zlib streams HDF5's gzip filter stores) and written with
/// `H5Dwrite_chunk`; the datasets carry the gzip filter, so every HDF5 reader (h5py included) inflates them as usual.
public enum ShardWriter {
    /// Rows per HDF5 chunk (a chunk of `input_ids` at S = 128 is 128 KiB before compression).
    public static let chunkRows = 256

    /// Where chunk bytes come from: padded rows, or instances in a given order (padded on the fly, so the
    /// `[N, S]` arrays are never built).
    enum Source {
        case rows(ShardRows)
        case instances([TrainingInstance], order: [Int])
    }

    /// Writes `rows` to `path`: first to `path + ".tmp-<pid>"`, then fsync'd and renamed, so a crash never
    /// leaves a file under the final name that looks complete.
    /// - Parameters:
    ///   - compressionLevel: `ChunkCompressor.fastLevel` (0, run-length deflate) or a gzip level 1 (the default) to
    ///     9; h5py and NVIDIA use 4.
    ///   - byteShuffle: add HDF5's shuffle filter before gzip (smaller and faster; every HDF5 reader has it).
    ///   - threads: threads that compress chunks.
    /// - Throws: `ShardError` when HDF5 or zlib refuses a step.
    public static func write(_ rows: ShardRows, to path: String, compressionLevel: Int32 = 1, byteShuffle: Bool = false,
                             threads: Int = 1) throws {
        try write(.rows(rows), count: rows.count, seqLength: rows.seqLength, maxPredictions: rows.maxPredictions,
                  packedSequences: rows.isPacked ? rows.sequencesPerRow : nil, to: path, compressionLevel: compressionLevel, byteShuffle: byteShuffle, threads: threads)
    }

    /// Writes instances, row `r` being `instances[order[r]]`, padded to `seqLength` / `maxPredictions`.
    public static func write(_ instances: [TrainingInstance], order: [Int], seqLength: Int, maxPredictions: Int,
                             to path: String, compressionLevel: Int32 = 1, byteShuffle: Bool = false,
                             threads: Int = 1) throws {
        precondition(order.count == instances.count, "ShardWriter: order must be a permutation of the instances")
        for inst in instances where inst.inputIds.count > seqLength || inst.maskedPositions.count > maxPredictions {
            throw ShardError("\(path): an instance of \(inst.inputIds.count) tokens / \(inst.maskedPositions.count) predictions does not fit S=\(seqLength), P=\(maxPredictions)")
        }
        try write(.instances(instances, order: order), count: instances.count, seqLength: seqLength,
                  maxPredictions: maxPredictions, packedSequences: nil, to: path, compressionLevel: compressionLevel,
                  byteShuffle: byteShuffle, threads: threads)
    }

    /// Fills `buf` (zeroed, `rowCount × width × size` bytes) with rows `lo..<hi` of dataset `d`.
    private static func fill(_ source: Source, _ d: ShardDataset, rows lo: Int, _ hi: Int, width: Int,
                             into buf: UnsafeMutableRawBufferPointer) {
        switch source {
        case .rows(let rows):
            let values = rows[d]
            if d.fileBytes == 4 {
                let dst = buf.bindMemory(to: Int32.self)
                for k in (lo * width)..<(hi * width) { dst[k - lo * width] = values[k].littleEndian }
            } else {
                for k in (lo * width)..<(hi * width) { buf[k - lo * width] = UInt8(truncatingIfNeeded: values[k]) }
            }
        case .instances(let instances, let order):
            instances.withUnsafeBufferPointer { all in
                let base = buf.baseAddress!
                for r in lo..<hi {
                    let o = (r - lo) * width
                    // Borrow the instance in place: no copies, no reference counting per row.
                    withUnsafePointer(to: all[order[r]]) { p in
                        let inst = p.pointee
                        switch d {
                        case .inputIds: copyLittleEndian(inst.inputIds, to: base + 4 * o)
                        case .maskedLMPositions: copyLittleEndian(inst.maskedPositions, to: base + 4 * o)
                        case .maskedLMIds: copyLittleEndian(inst.maskedIds, to: base + 4 * o)
                        case .inputMask: memset(base + o, 1, inst.inputIds.count)
                        case .segmentIds:
                            memset(base + o + inst.segmentALength, 1, inst.inputIds.count - inst.segmentALength)
                        case .nextSentenceLabels: base.storeBytes(of: inst.isRandomNext ? 1 : 0, toByteOffset: o, as: UInt8.self)
                        case .positions, .nextSentencePositions, .nextSentenceWeights:
                            preconditionFailure("ShardWriter: instances are written in NVIDIA's layout only")
                        }
                    }
                }
            }
        }
    }

    /// Stores `values` as little-endian Int32 at `destination`.
    @inline(__always)
    private static func copyLittleEndian(_ values: [Int32], to destination: UnsafeMutableRawPointer) {
        values.withUnsafeBytes { src in
            #if _endian(little)
            if let a = src.baseAddress { destination.copyMemory(from: a, byteCount: src.count) }
            #else
            for (k, v) in values.enumerated() { destination.storeBytes(of: v.littleEndian, toByteOffset: 4 * k, as: Int32.self) }
            #endif
        }
    }

    /// - Parameter packedSequences: K for the packed layout, nil for NVIDIA's.
    private static func write(_ source: Source, count N: Int, seqLength S: Int, maxPredictions P: Int,
                              packedSequences: Int?, to path: String,
                              compressionLevel: Int32, byteShuffle: Bool, threads: Int) throws {
        let datasets = ShardDataset.layout(packed: packedSequences != nil)
        let shape = ShardRows(count: 0, seqLength: S, maxPredictions: P, packedSequences: packedSequences)
        @Sendable func width(_ d: ShardDataset) -> Int { shape.width(of: d) }
        let R = max(1, min(N, chunkRows))
        let chunksPerDataset = (N + R - 1) / R
        let total = chunksPerDataset * datasets.count
        var compressed = [[UInt8]](repeating: [], count: total)
        let failed = Atomic<Bool>(false)
        let counter = Atomic<Int>(0)
        compressed.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let out = out
            DispatchQueue.concurrentPerform(iterations: max(1, min(threads, total))) { _ in
                var raw: [UInt8] = [], shuffled: [UInt8] = []
                let compressor = ChunkCompressor(level: compressionLevel)
                defer { compressor.release() }
                while true {
                    let job = counter.add(1, ordering: .relaxed).oldValue
                    guard job < total else { return }
                    let d = datasets[job / chunksPerDataset]
                    let c = job % chunksPerDataset
                    let w = width(d), size = d.fileBytes
                    raw.removeAll(keepingCapacity: true)
                    raw.append(contentsOf: repeatElement(0, count: R * w * size))
                    raw.withUnsafeMutableBytes { fill(source, d, rows: c * R, min(N, (c + 1) * R), width: w, into: $0) }
                    if byteShuffle && size > 1 {
                        // HDF5's shuffle filter: byte k of every element, for k = 0, 1, …
                        let n = raw.count / size
                        shuffled.removeAll(keepingCapacity: true)
                        shuffled.append(contentsOf: repeatElement(0, count: raw.count))
                        for e in 0..<n { for k in 0..<size { shuffled[k * n + e] = raw[e * size + k] } }
                        swap(&raw, &shuffled)
                    }
                    guard let dest = compressor.compress(raw) else { failed.store(true, ordering: .relaxed); return }
                    out[job] = dest
                }
            }
        }
        guard !failed.load(ordering: .relaxed) else { throw ShardError("\(path): zlib could not compress the data") }

        HDF5.lock.lock()
        defer { HDF5.lock.unlock() }
        HDF5.silence()
        let tmp = path + ".tmp-\(ProcessInfo.processInfo.processIdentifier)"
        let fapl = try HDF5.unlockedFileAccess(path)
        defer { HDF5.closePlist(fapl) }
        let file = H5Fcreate(tmp, swh5_f_acc_trunc(), swh5_p_default(), fapl)
        guard file >= 0 else { throw ShardError("\(path): cannot create the file (is the directory writable?)") }
        var ok = false
        defer {
            if !ok { HDF5.closeFile(file); unlink(tmp) }
        }
        for (k, d) in datasets.enumerated() {
            let dims = d == .nextSentenceLabels && packedSequences == nil ? [N] : [N, width(d)]
            try dataset(file, d, dims: dims, chunkRows: R, fileType: d.fileBytes == 4 ? swh5_std_i32le() : swh5_std_i8le(),
                        level: compressionLevel, byteShuffle: byteShuffle,
                        chunks: compressed[(k * chunksPerDataset)..<((k + 1) * chunksPerDataset)], path: path)
        }
        guard H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0, H5Fclose(file) >= 0 else {
            throw ShardError("\(path): HDF5 could not finish the file (disk full?)")
        }
        ok = true
        // fsync the data before the rename makes it visible under its final name.
        let fd = open(tmp, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw ShardError("\(path): cannot rename the finished temporary file into place")
        }
    }

    private static func dataset(_ file: hid_t, _ name: ShardDataset, dims: [Int], chunkRows: Int, fileType: hid_t,
                                level: Int32, byteShuffle: Bool, chunks: ArraySlice<[UInt8]>, path: String) throws {
        var d = dims.map { hsize_t($0) }
        let space = H5Screate_simple(Int32(d.count), &d, nil)
        defer { HDF5.closeSpace(space) }
        let plist = H5Pcreate(swh5_p_dataset_create())
        defer { HDF5.closePlist(plist) }
        var chunk = d
        chunk[0] = hsize_t(chunkRows)
        for k in chunk.indices.dropFirst() { chunk[k] = max(1, chunk[k]) }
        guard space >= 0, plist >= 0, H5Pset_chunk(plist, Int32(chunk.count), &chunk) >= 0,
              !byteShuffle || H5Pset_shuffle(plist) >= 0, H5Pset_deflate(plist, UInt32(max(level, 1))) >= 0,
              H5Pset_obj_track_times(plist, false) >= 0 else {   // no timestamps: the same input makes the same bytes
            throw ShardError("\(path): HDF5 refused the layout of dataset '\(name.rawValue)'")
        }
        let ds = H5Dcreate2(file, name.rawValue, fileType, space, swh5_p_default(), plist, swh5_p_default())
        defer { HDF5.closeDataset(ds) }
        guard ds >= 0 else { throw ShardError("\(path): cannot create dataset '\(name.rawValue)'") }
        for (c, bytes) in chunks.enumerated() {
            var offset = [hsize_t](repeating: 0, count: d.count)
            offset[0] = hsize_t(c * chunkRows)
            let status = bytes.withUnsafeBytes {
                H5Dwrite_chunk(ds, swh5_p_default(), 0, &offset, $0.count, $0.baseAddress)
            }
            guard status >= 0 else { throw ShardError("\(path): cannot write dataset '\(name.rawValue)' (disk full?)") }
        }
    }
}

/// An open shard: shapes read and checked at open, rows read on demand (hyperslabs).
public final class ShardReader {
    /// The file.
    public let path: String
    /// N
    public let count: Int
    /// S
    public let seqLength: Int
    /// P (P' when packed)
    public let maxPredictions: Int
    /// Whether the shard is in the packed layout (it has a `positions` dataset).
    public let isPacked: Bool
    /// K: sequences a row may hold (1 in NVIDIA's layout).
    public let sequencesPerRow: Int
    private let file: hid_t
    private var datasets: [ShardDataset: hid_t] = [:]

    /// Opens `path` and checks that the datasets of its layout are there with consistent 2-D/1-D shapes: NVIDIA's
    /// six, or the packed layout's nine when it has a `positions` dataset.
    /// - Throws: `ShardError` naming the file, the dataset and what to do.
    public init(path: String) throws {
        HDF5.lock.lock()
        defer { HDF5.lock.unlock() }
        HDF5.silence()
        self.path = path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ShardError("\(path): no such shard file; check --input-dir (shards come from `bert prepare`)")
        }
        guard !isDirectory.boolValue else { throw ShardError("\(path): a directory, not a shard file; move it out of --input-dir") }
        guard access(path, R_OK) == 0 else { throw ShardError("\(path): cannot read the shard: \(String(cString: strerror(errno)))") }
        let fapl = try HDF5.unlockedFileAccess(path)
        defer { HDF5.closePlist(fapl) }
        let f = H5Fopen(path, swh5_f_acc_rdonly(), fapl)
        guard f >= 0 else {
            throw ShardError("\(path): not a readable HDF5 file (truncated or corrupt?); re-create it with `bert prepare`")
        }
        file = f
        var shapes: [ShardDataset: [Int]] = [:]
        let packed = H5Lexists(f, ShardDataset.positions.rawValue, swh5_p_default()) > 0
        for d in ShardDataset.layout(packed: packed) {
            guard H5Lexists(f, d.rawValue, swh5_p_default()) > 0 else {
                for (_, id) in datasets { H5Dclose(id) }
                H5Fclose(f)
                throw ShardError(packed
                    ? "\(path): dataset '\(d.rawValue)' is missing, but the shard has 'positions' so it is read as a packed shard; re-create it with `bert pack`"
                    : "\(path): dataset '\(d.rawValue)' is missing; this is not a BERT pre-training shard in NVIDIA's layout — re-create it with `bert prepare`")
            }
            let id = H5Dopen2(f, d.rawValue, swh5_p_default())
            let space = id >= 0 ? H5Dget_space(id) : -1
            let rank = space >= 0 ? Int(H5Sget_simple_extent_ndims(space)) : -1
            var dims = [hsize_t](repeating: 0, count: max(rank, 1))
            let typeClass = id >= 0 ? { let t = H5Dget_type(id); defer { H5Tclose(t) }; return H5Tget_class(t) }() : H5T_NO_CLASS
            if rank > 0 { H5Sget_simple_extent_dims(space, &dims, nil) }
            HDF5.closeSpace(space)
            if id >= 0 { datasets[d] = id }
            guard id >= 0, rank >= 1, typeClass == H5T_INTEGER else {
                for (_, id) in datasets { H5Dclose(id) }
                H5Fclose(f)
                throw ShardError("\(path): dataset '\(d.rawValue)' is unreadable or not an integer array (truncated or corrupt file?); re-create it with `bert prepare`")
            }
            shapes[d] = dims.map { Int($0) }
        }
        let ids = shapes[.inputIds]!, pos = shapes[.maskedLMPositions]!
        func bad(_ d: ShardDataset, _ why: String) -> ShardError {
            ShardError("\(path): dataset '\(d.rawValue)' has shape \(shapes[d]!) but \(why); the shard is inconsistent — re-create it with `bert prepare`")
        }
        var problem: ShardError?
        if ids.count != 2 { problem = bad(.inputIds, "it must be [N, S]") }
        else if pos.count != 2 || pos[0] != ids[0] { problem = bad(.maskedLMPositions, "input_ids is \(ids)") }
        else if shapes[.maskedLMIds]! != pos { problem = bad(.maskedLMIds, "masked_lm_positions is \(pos)") }
        else if shapes[.inputMask]! != ids { problem = bad(.inputMask, "input_ids is \(ids)") }
        else if shapes[.segmentIds]! != ids { problem = bad(.segmentIds, "input_ids is \(ids)") }
        else if !packed && shapes[.nextSentenceLabels]! != [ids[0]] { problem = bad(.nextSentenceLabels, "input_ids has \(ids[0]) rows") }
        else if packed {
            let labels = shapes[.nextSentenceLabels]!
            if shapes[.positions]! != ids { problem = bad(.positions, "input_ids is \(ids)") }
            else if labels.count != 2 || labels[0] != ids[0] || labels[1] < 1 { problem = bad(.nextSentenceLabels, "a packed shard's must be [N, K] with N = \(ids[0])") }
            else if shapes[.nextSentencePositions]! != labels { problem = bad(.nextSentencePositions, "next_sentence_labels is \(labels)") }
            else if shapes[.nextSentenceWeights]! != labels { problem = bad(.nextSentenceWeights, "next_sentence_labels is \(labels)") }
        }
        if let problem {
            for (_, id) in datasets { H5Dclose(id) }
            H5Fclose(f)
            throw problem
        }
        count = ids[0]; seqLength = ids[1]; maxPredictions = pos[1]
        isPacked = packed
        sequencesPerRow = packed ? shapes[.nextSentenceLabels]![1] : 1
    }

    /// Checks the shard's layout against the one a run reads.
    /// - Parameter packed: whether the run reads packed shards (`bert pretrain --packed`).
    /// - Throws: `ShardError` naming the file and the flag that decides.
    public func expectLayout(packed: Bool) throws {
        if isPacked && !packed {
            throw ShardError("\(path): a packed shard (it has a 'positions' dataset), but unpacked shards in NVIDIA's layout are expected; pass --packed to `bert pretrain` to train on packed shards")
        }
        if !isPacked && packed {
            throw ShardError("\(path): an unpacked shard in NVIDIA's layout (no 'positions' dataset), but --packed expects packed shards; drop --packed, or pack the shards with `bert pack`")
        }
    }

    deinit {
        HDF5.lock.lock()
        defer { HDF5.lock.unlock() }
        for (_, id) in datasets { H5Dclose(id) }
        H5Fclose(file)
    }

    /// Reads every row.
    public func readAll() throws -> ShardRows { try read(rows: Array(0..<count)) }

    /// Rows per block read: a block holding needed rows is read whole (HDF5 inflates whole chunks anyway).
    public static let blockRows = 1024

    /// Reads the given rows (any order, repeats allowed).
    ///
    /// The needed rows are grouped into spans of at most `blockRows` rows; each span is read with one simple
    /// hyperslab per dataset and only its needed rows are kept, so a rank never holds more than it serves
    /// plus one block, and blocks without a needed row are not read at all. (One hyperslab made of thousands
    /// of scattered rows is far slower in HDF5 1.10 than these block reads.)
    /// - Returns: rows in the order asked for.
    /// - Throws: `ShardError` when a row is out of range or the data cannot be read (truncated file).
    public func read(rows wanted: [Int]) throws -> ShardRows {
        HDF5.lock.lock()
        defer { HDF5.lock.unlock() }
        HDF5.silence()
        for r in wanted where r < 0 || r >= count {
            throw ShardError("\(path): row \(r) asked for but the shard holds \(count) rows")
        }
        let sorted = Array(Set(wanted)).sorted()
        let K = isPacked ? sequencesPerRow : nil
        var picked = ShardRows(count: 0, seqLength: seqLength, maxPredictions: maxPredictions, packedSequences: K)
        var i = 0
        while i < sorted.count {
            // A span: rows sorted[i..<j] all inside [first, first + blockRows).
            let first = sorted[i]
            var j = i + 1
            while j < sorted.count && sorted[j] < first + Self.blockRows { j += 1 }
            let n = sorted[j - 1] - first + 1
            var block = ShardRows(count: n, seqLength: seqLength, maxPredictions: maxPredictions, packedSequences: K)
            for d in block.datasets {
                let rank1 = d == .nextSentenceLabels && !isPacked   // NVIDIA's labels are [N]
                try readRange(d, start: first, count: n, width: rank1 ? nil : block.width(of: d), into: &block[d])
            }
            picked.append(block.selecting(rows: sorted[i..<j].map { $0 - first }))
            i = j
        }
        if sorted == wanted { return picked }
        var slot = [Int: Int](minimumCapacity: sorted.count)
        for (k, r) in sorted.enumerated() { slot[r] = k }
        return picked.selecting(rows: wanted.map { slot[$0]! })
    }

    /// Rows `start..<start + count` of dataset `d` (a `[N, width]` array, or `[N]` when `width` is nil),
    /// converted by HDF5 to native Int32.
    private func readRange(_ d: ShardDataset, start: Int, count: Int, width: Int?, into buffer: inout [Int32]) throws {
        let ds = datasets[d]!
        let fileSpace = H5Dget_space(ds)
        defer { HDF5.closeSpace(fileSpace) }
        var offset: [hsize_t] = width == nil ? [hsize_t(start)] : [hsize_t(start), 0]
        var extent: [hsize_t] = width == nil ? [hsize_t(count)] : [hsize_t(count), hsize_t(width!)]
        let memSpace = H5Screate_simple(Int32(extent.count), &extent, nil)
        defer { HDF5.closeSpace(memSpace) }
        var ok = fileSpace >= 0 && memSpace >= 0
            && H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &offset, nil, &extent, nil) >= 0
        if ok {
            ok = buffer.withUnsafeMutableBufferPointer {
                H5Dread(ds, swh5_native_int32(), memSpace, fileSpace, swh5_p_default(), $0.baseAddress) >= 0
            }
        }
        guard ok else {
            throw ShardError("\(path): cannot read dataset '\(d.rawValue)' (truncated or corrupt file?); re-create it with `bert prepare`")
        }
    }
}

/// Opens a shard, reads all of it and checks its values.
/// - Parameters:
///   - vocabSize: the model's vocabulary size, or nil to skip the id range check.
///   - packed: the layout expected: NVIDIA's (false), the packed one (true), or either (nil).
/// - Throws: `ShardError` with a one-line message.
public func readAndValidateShard(path: String, vocabSize: Int?, packed: Bool? = false) throws -> ShardRows {
    let reader = try ShardReader(path: path)
    if let packed { try reader.expectLayout(packed: packed) }
    let rows = try reader.readAll()
    try rows.validate(file: path, vocabSize: vocabSize)
    return rows
}
