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
// gzip-compressed and chunked. The reader takes any integer widths (HDF5 converts to native int32).

/// A shard problem, worded as one line that names the file, the dataset and what to do.
public struct ShardError: Error, CustomStringConvertible, Equatable {
    /// The whole message: `<file>: <what is wrong>; <what to do>`.
    public var message: String
    /// - Parameter message: one line naming the file and what to do.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// The dataset names, in NVIDIA's order.
public enum ShardDataset: String, CaseIterable, Sendable {
    case inputIds = "input_ids"
    case inputMask = "input_mask"
    case segmentIds = "segment_ids"
    case maskedLMPositions = "masked_lm_positions"
    case maskedLMIds = "masked_lm_ids"
    case nextSentenceLabels = "next_sentence_labels"

    /// Bytes per element in NVIDIA's files: i4 for ids and positions, i1 for masks, segments and labels.
    public var fileBytes: Int {
        switch self {
        case .inputIds, .maskedLMPositions, .maskedLMIds: return 4
        case .inputMask, .segmentIds, .nextSentenceLabels: return 1
        }
    }
}

/// The six arrays of a shard (or of some of its rows), 32-bit and row-major.
public struct ShardRows: Sendable, Equatable {
    /// N: rows.
    public var count: Int
    /// S
    public var seqLength: Int
    /// P
    public var maxPredictions: Int
    /// `[N, S]` token ids, zero-padded.
    public var inputIds: [Int32]
    /// `[N, S]` 1 for real tokens.
    public var inputMask: [Int32]
    /// `[N, S]` 0 for `[CLS]` A `[SEP]`, 1 for B `[SEP]`.
    public var segmentIds: [Int32]
    /// `[N, P]` masked positions, ascending, zero-padded.
    public var maskedLMPositions: [Int32]
    /// `[N, P]` original ids at the masked positions, zero-padded.
    public var maskedLMIds: [Int32]
    /// `[N]` 1 when B is a random sentence.
    public var nextSentenceLabels: [Int32]

    /// Zero-filled rows.
    public init(count: Int, seqLength: Int, maxPredictions: Int) {
        self.count = count; self.seqLength = seqLength; self.maxPredictions = maxPredictions
        inputIds = Array(repeating: 0, count: count * seqLength)
        inputMask = inputIds; segmentIds = inputIds
        maskedLMPositions = Array(repeating: 0, count: count * maxPredictions)
        maskedLMIds = maskedLMPositions
        nextSentenceLabels = Array(repeating: 0, count: count)
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

    /// Rows `rows` (indices into self) as a `PretrainingBatch`.
    public func batch(rows: [Int]) -> PretrainingBatch {
        let S = seqLength, P = maxPredictions
        var ids = [Int32](), seg = [Int32](), mask = [Int32](), pos = [Int32](), mid = [Int32](), nsp = [Int32]()
        ids.reserveCapacity(rows.count * S); seg.reserveCapacity(rows.count * S); mask.reserveCapacity(rows.count * S)
        pos.reserveCapacity(rows.count * P); mid.reserveCapacity(rows.count * P); nsp.reserveCapacity(rows.count)
        for r in rows {
            ids.append(contentsOf: inputIds[(r * S)..<((r + 1) * S)])
            seg.append(contentsOf: segmentIds[(r * S)..<((r + 1) * S)])
            mask.append(contentsOf: inputMask[(r * S)..<((r + 1) * S)])
            pos.append(contentsOf: maskedLMPositions[(r * P)..<((r + 1) * P)])
            mid.append(contentsOf: maskedLMIds[(r * P)..<((r + 1) * P)])
            nsp.append(nextSentenceLabels[r])
        }
        return PretrainingBatch(batchSize: rows.count, seqLength: S, maxPredictions: P, inputIds: ids,
                                segmentIds: seg, inputMask: mask, maskedLMPositions: pos, maskedLMIds: mid,
                                nextSentenceLabels: nsp)
    }

    /// Checks the values: ids in `[0, vocabSize)` (when given), mask and segment ids and labels 0/1,
    /// positions in `[0, S)`.
    /// - Throws: `ShardError` naming `file`, the dataset and the first bad value.
    public func validate(file: String, vocabSize: Int?, firstRow: Int = 0) throws {
        func fail(_ d: ShardDataset, _ index: Int, _ value: Int32, _ wanted: String, width: Int) -> ShardError {
            ShardError("\(file): dataset '\(d.rawValue)' row \(firstRow + index / width) holds \(value), "
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
        for (k, v) in inputMask.enumerated() where v != 0 && v != 1 {
            throw fail(.inputMask, k, v, "0 or 1", width: seqLength)
        }
        for (k, v) in segmentIds.enumerated() where v != 0 && v != 1 {
            throw fail(.segmentIds, k, v, "0 or 1", width: seqLength)
        }
        for (k, v) in nextSentenceLabels.enumerated() where v != 0 && v != 1 {
            throw fail(.nextSentenceLabels, k, v, "0 or 1", width: 1)
        }
    }
}

/// Thin HDF5 helpers; every call site silences HDF5's own error printing for its thread first.
enum HDF5 {
    /// Serialises our HDF5 calls: Debian's library is built thread-safe, other builds may not be.
    static let lock = NSRecursiveLock()

    static func silence() { swh5_silence_errors() }

    /// Closes an id of the right kind when it is valid.
    static func closeDataset(_ id: hid_t) { if id >= 0 { H5Dclose(id) } }
    static func closeSpace(_ id: hid_t) { if id >= 0 { H5Sclose(id) } }
    static func closeFile(_ id: hid_t) { if id >= 0 { H5Fclose(id) } }
    static func closePlist(_ id: hid_t) { if id >= 0 { H5Pclose(id) } }
}

/// Writes one shard in NVIDIA's layout.
///
/// The chunks are deflated on `threads` threads (`ChunkCompressor`: libdeflate when present, else zlib; the
/// zlib streams HDF5's gzip filter stores) and written with `H5Dwrite_chunk`; the datasets carry the gzip filter, so every HDF5 reader (h5py included)
/// inflates them as usual.
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
    ///   - compressionLevel: gzip level, 1 (fastest, the default) to 9; h5py and NVIDIA use 4.
    ///   - byteShuffle: add HDF5's shuffle filter before gzip (smaller and faster; every HDF5 reader has it).
    ///   - threads: threads that compress chunks.
    /// - Throws: `ShardError` when HDF5 or zlib refuses a step.
    public static func write(_ rows: ShardRows, to path: String, compressionLevel: Int32 = 1, byteShuffle: Bool = false,
                             threads: Int = 1) throws {
        try write(.rows(rows), count: rows.count, seqLength: rows.seqLength, maxPredictions: rows.maxPredictions,
                  to: path, compressionLevel: compressionLevel, byteShuffle: byteShuffle, threads: threads)
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
                  maxPredictions: maxPredictions, to: path, compressionLevel: compressionLevel,
                  byteShuffle: byteShuffle, threads: threads)
    }

    /// Fills `buf` (zeroed, `rowCount × width × size` bytes) with rows `lo..<hi` of dataset `d`.
    private static func fill(_ source: Source, _ d: ShardDataset, rows lo: Int, _ hi: Int, width: Int,
                             into buf: UnsafeMutableRawBufferPointer) {
        switch source {
        case .rows(let rows):
            let values: [Int32]
            switch d {
            case .inputIds: values = rows.inputIds
            case .inputMask: values = rows.inputMask
            case .segmentIds: values = rows.segmentIds
            case .maskedLMPositions: values = rows.maskedLMPositions
            case .maskedLMIds: values = rows.maskedLMIds
            case .nextSentenceLabels: values = rows.nextSentenceLabels
            }
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

    private static func write(_ source: Source, count N: Int, seqLength S: Int, maxPredictions P: Int, to path: String,
                              compressionLevel: Int32, byteShuffle: Bool, threads: Int) throws {
        let datasets = ShardDataset.allCases
        @Sendable func width(_ d: ShardDataset) -> Int {
            switch d {
            case .inputIds, .inputMask, .segmentIds: return S
            case .maskedLMPositions, .maskedLMIds: return P
            case .nextSentenceLabels: return 1
            }
        }
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
        let file = H5Fcreate(tmp, swh5_f_acc_trunc(), swh5_p_default(), swh5_p_default())
        guard file >= 0 else { throw ShardError("\(path): cannot create the file (is the directory writable?)") }
        var ok = false
        defer {
            if !ok { HDF5.closeFile(file); unlink(tmp) }
        }
        for (k, d) in datasets.enumerated() {
            let dims = d == .nextSentenceLabels ? [N] : [N, width(d)]
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
              !byteShuffle || H5Pset_shuffle(plist) >= 0, H5Pset_deflate(plist, UInt32(level)) >= 0,
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
    /// P
    public let maxPredictions: Int
    private let file: hid_t
    private var datasets: [ShardDataset: hid_t] = [:]

    /// Opens `path` and checks that the six datasets are there with consistent 2-D/1-D shapes.
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
        let f = H5Fopen(path, swh5_f_acc_rdonly(), swh5_p_default())
        guard f >= 0 else {
            throw ShardError("\(path): not a readable HDF5 file (truncated or corrupt?); re-create it with `bert prepare`")
        }
        file = f
        var shapes: [ShardDataset: [Int]] = [:]
        for d in ShardDataset.allCases {
            guard H5Lexists(f, d.rawValue, swh5_p_default()) > 0 else {
                for (_, id) in datasets { H5Dclose(id) }
                H5Fclose(f)
                throw ShardError("\(path): dataset '\(d.rawValue)' is missing; this is not a BERT pre-training shard in NVIDIA's layout — re-create it with `bert prepare`")
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
        else if shapes[.nextSentenceLabels]! != [ids[0]] { problem = bad(.nextSentenceLabels, "input_ids has \(ids[0]) rows") }
        if let problem {
            for (_, id) in datasets { H5Dclose(id) }
            H5Fclose(f)
            throw problem
        }
        count = ids[0]; seqLength = ids[1]; maxPredictions = pos[1]
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
        var packed = ShardRows(count: sorted.count, seqLength: seqLength, maxPredictions: maxPredictions)
        let S = seqLength, P = maxPredictions
        var k = 0          // next row of `packed`
        var i = 0
        while i < sorted.count {
            // A span: rows sorted[i..<j] all inside [first, first + blockRows).
            let first = sorted[i]
            var j = i + 1
            while j < sorted.count && sorted[j] < first + Self.blockRows { j += 1 }
            let last = sorted[j - 1]
            let n = last - first + 1
            var block = ShardRows(count: n, seqLength: S, maxPredictions: P)
            try readRange(.inputIds, start: first, count: n, width: S, into: &block.inputIds)
            try readRange(.inputMask, start: first, count: n, width: S, into: &block.inputMask)
            try readRange(.segmentIds, start: first, count: n, width: S, into: &block.segmentIds)
            try readRange(.maskedLMPositions, start: first, count: n, width: P, into: &block.maskedLMPositions)
            try readRange(.maskedLMIds, start: first, count: n, width: P, into: &block.maskedLMIds)
            try readRange(.nextSentenceLabels, start: first, count: n, width: nil, into: &block.nextSentenceLabels)
            for q in i..<j {
                let b = sorted[q] - first
                packed.inputIds.replaceSubrange((k * S)..<((k + 1) * S), with: block.inputIds[(b * S)..<((b + 1) * S)])
                packed.inputMask.replaceSubrange((k * S)..<((k + 1) * S), with: block.inputMask[(b * S)..<((b + 1) * S)])
                packed.segmentIds.replaceSubrange((k * S)..<((k + 1) * S), with: block.segmentIds[(b * S)..<((b + 1) * S)])
                packed.maskedLMPositions.replaceSubrange((k * P)..<((k + 1) * P), with: block.maskedLMPositions[(b * P)..<((b + 1) * P)])
                packed.maskedLMIds.replaceSubrange((k * P)..<((k + 1) * P), with: block.maskedLMIds[(b * P)..<((b + 1) * P)])
                packed.nextSentenceLabels[k] = block.nextSentenceLabels[b]
                k += 1
            }
            i = j
        }
        if sorted == wanted { return packed }
        var slot = [Int: Int](minimumCapacity: sorted.count)
        for (k, r) in sorted.enumerated() { slot[r] = k }
        let b = packed.batch(rows: wanted.map { slot[$0]! })
        var out = ShardRows(count: 0, seqLength: seqLength, maxPredictions: maxPredictions)
        out.count = wanted.count
        out.inputIds = b.inputIds; out.inputMask = b.inputMask; out.segmentIds = b.segmentIds
        out.maskedLMPositions = b.maskedLMPositions; out.maskedLMIds = b.maskedLMIds
        out.nextSentenceLabels = b.nextSentenceLabels
        return out
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
/// - Parameter vocabSize: the model's vocabulary size, or nil to skip the id range check.
/// - Throws: `ShardError` with a one-line message.
public func readAndValidateShard(path: String, vocabSize: Int?) throws -> ShardRows {
    let reader = try ShardReader(path: path)
    let rows = try reader.readAll()
    try rows.validate(file: path, vocabSize: vocabSize)
    return rows
}
