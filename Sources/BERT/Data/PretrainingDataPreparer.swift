import Foundation
import Synchronization

/// Everything `bert prepare` decides.
public struct PrepareOptions: Sendable, Codable {
    /// Files, directories and glob patterns (`--input`).
    public var inputs: [String] = []
    /// `--input-format`.
    public var format: CorpusFormat = .auto
    /// `--output-dir`.
    public var outputDirectory = "."
    /// Shard names are `<prefix>_training_<k>.hdf5` and `<prefix>_test_<k>.hdf5`, like NVIDIA's.
    public var outputPrefix = "corpus"
    /// The instance flags (S, P, masked-LM probability, dupe factor, …).
    public var instance = InstanceOptions()
    /// `--random-seed`.
    public var seed: UInt64 = 12345
    /// Training shards; 0 picks one per `autoShardBytes` of input text.
    public var trainingShards = 0
    /// The fraction of documents that go to the test shards (NVIDIA's `fraction_test_set`).
    public var evalFraction = 0.0
    /// Test shards when `evalFraction` > 0.
    public var testShards = 1
    /// Worker threads (the output does not depend on them).
    public var threads = 2
    /// Input bytes per shard when `trainingShards` is 0.
    public var autoShardBytes = 64 << 20
    /// How HDF5 chunks are deflated: 0 (the default) is `RunLengthDeflate`, runs and Huffman codes only — shards about
    /// 5 % larger than h5py's level 4 (NVIDIA's setting) at a fraction of any gzip level's time; 1–9 are gzip levels
    /// (libdeflate when installed, else zlib), 4 reproducing h5py's setting.
    public var compressionLevel = 0
    /// Add HDF5's byte-shuffle filter before gzip (smaller, faster; not in NVIDIA's files, read by any HDF5).
    public var byteShuffle = false

    public init() {}
}

/// What one run made.
public struct PrepareSummary: Sendable, Codable {
    /// Non-empty documents read.
    public var documents = 0
    /// Non-empty sentences in them.
    public var sentences = 0
    /// Bytes of input text.
    public var inputBytes = 0
    /// Counts over the training shards.
    public var training = InstanceStatistics()
    /// Counts over the test shards.
    public var test = InstanceStatistics()
    /// The shards written: training, then test.
    public var shardPaths: [String] = []
    /// Wall time of both passes.
    public var seconds = 0.0
    /// Shards with this run's prefix in the output directory that this run did not write (left from an
    /// earlier run with more shards): a loader listing the directory would take them too.
    public var staleShards: [String] = []
    /// Wall time of pass 1 (read, split, tokenize, spool).
    public var readSeconds = 0.0
    /// Seconds spent making instances in pass 2.
    public var instanceSeconds = 0.0
    /// Seconds spent padding, compressing and writing HDF5 in pass 2.
    public var writeSeconds = 0.0
}

/// A progress report (called from the thread that runs `prepare`).
public struct PrepareProgress: Sendable {
    /// Pass 1 (read and tokenize) or pass 2 (instances and HDF5).
    public enum Phase: String, Sendable { case tokenizing, writing }
    /// Which pass.
    public var phase: Phase
    /// Documents read so far.
    public var documents: Int
    /// Input bytes read so far.
    public var bytesRead: Int
    /// Input bytes in all.
    public var totalBytes: Int
    /// Shards written so far.
    public var shardsDone: Int
    /// Shards to write.
    public var shardCount: Int
    /// Instances written so far.
    public var instances: Int
    /// Seconds since the start.
    public var elapsed: Double
}

/// From text files to HDF5 shards.
///
/// **Memory-bounded scheme.** Pass 1 streams the input in blocks of documents (about 4 MiB of text), tokenizes
/// each block on `threads` threads, and appends each document's ids to a temporary file of the shard it is dealt
/// to (a run of one shard keeps them in memory): the `d`-th document goes to the test set with probability
/// `evalFraction` (its own seeded draw) and otherwise to the training shard with the fewest tokens so far (test
/// documents likewise over the test shards), which depends on the input order only. Pass 2 turns the shards into
/// HDF5 files one after another, each on all threads: it loads that shard's documents and runs Google's
/// `create_training_instances` on them — documents shuffled, `dupeFactor` passes (in parallel over fixed units of
/// pass × document block, each with its own stream), instances shuffled — then deflates the HDF5 chunks in parallel
/// and writes the file. This is what NVIDIA's pipeline does (text shards first, then one
/// create_pretraining_data.py run per shard): random next sentences are
/// drawn from the same shard, and memory holds one shard × dupe factor (about 12 × the shard's text size),
/// never the whole corpus. The output depends on the seed and the shard counts only, never on `threads`.
public final class PretrainingDataPreparer: @unchecked Sendable {
    /// The run's settings.
    public let options: PrepareOptions
    /// Special ids and the `##` table.
    public let vocabulary: MaskingVocabulary
    private let encode: @Sendable (String) -> [Int32]

    /// - Parameters:
    ///   - options: the run's settings.
    ///   - vocabulary: special ids and the `##` table of the tokenizer's vocabulary.
    ///   - encode: text → ids (a `BertTokenizer`'s `encode`), called from several threads.
    public init(options: PrepareOptions, vocabulary: MaskingVocabulary, encode: @escaping @Sendable (String) -> [Int32]) {
        self.options = options
        self.vocabulary = vocabulary
        self.encode = encode
    }

    /// Runs both passes.
    /// - Parameter progress: called now and then with where the run stands.
    /// - Returns: counts and the shard paths written.
    /// - Throws: `ShardError` for unreadable input or unwritable output.
    public func prepare(progress: (PrepareProgress) -> Void = { _ in }) throws -> PrepareSummary {
        let start = Date()
        let files = try CorpusReader.expand(options.inputs)
        guard !files.isEmpty else { throw ShardError("no input files found; check --input") }
        let fm = FileManager.default
        let totalBytes = files.reduce(0) { $0 + ((try? fm.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0) }
        let trainingShards = options.trainingShards > 0
            ? options.trainingShards : max(1, (totalBytes + options.autoShardBytes - 1) / options.autoShardBytes)
        let testShards = options.evalFraction > 0 ? max(1, options.testShards) : 0
        guard options.instance.maxSeqLength >= 5 else { throw ShardError("--max-seq-length must be at least 5") }

        try fm.createDirectory(atPath: options.outputDirectory, withIntermediateDirectories: true)
        removeStaleTemporaries(in: options.outputDirectory)
        var manifest = ShardManifest(complete: false, prefix: options.outputPrefix, maxSeqLength: options.instance.maxSeqLength,
                                     maxPredictionsPerSeq: options.instance.maxPredictionsPerSeq, shards: [])
        try manifest.write(directory: options.outputDirectory)   // until the last shard is written, the set is unfinished
        let tmpDir = (options.outputDirectory as NSString)
            .appendingPathComponent(".prepare-tmp-\(ProcessInfo.processInfo.processIdentifier)")
        try fm.createDirectory(atPath: tmpDir, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: tmpDir) }

        // Pass 1: read, tokenize, deal documents to shard files.
        // A single shard's documents stay in memory: pass 2 loads them all at once anyway.
        let spoolCount = trainingShards + testShards
        var spools = try (0..<spoolCount).map {
            try DocumentSpool(path: spoolCount == 1 ? nil : (tmpDir as NSString).appendingPathComponent("shard_\($0).bin"))
        }
        var summary = PrepareSummary()
        summary.inputBytes = totalBytes
        var bytesRead = 0
        var documentIndex = 0
        var shardTokens = [Int](repeating: 0, count: trainingShards + testShards)
        var shardDocuments = [Int](repeating: 0, count: trainingShards + testShards)
        var block: [[String]] = []
        var blockBytes = 0
        var lastReport = Date.distantPast
        func report(force: Bool = false) {
            let now = Date()
            if force || now.timeIntervalSince(lastReport) > 0.5 {
                lastReport = now
                progress(PrepareProgress(phase: .tokenizing, documents: summary.documents, bytesRead: bytesRead,
                                         totalBytes: totalBytes, shardsDone: 0, shardCount: spools.count,
                                         instances: 0, elapsed: now.timeIntervalSince(start)))
            }
        }
        func flushBlock() throws {
            let tokenized = tokenize(block)
            for doc in tokenized where !doc.isEmpty {
                let toTest = options.evalFraction > 0
                    && { var r = DataRandom(seed: options.seed, streams: [3, UInt64(documentIndex)]); return r.uniform() < options.evalFraction }()
                documentIndex += 1
                let target: Int
                // The shard of its kind with the fewest tokens so far (the first one on ties), so shards come
                // out about equally large, as NVIDIA's sharding balances them.
                let range = toTest ? trainingShards..<(trainingShards + testShards) : 0..<trainingShards
                target = range.min { shardTokens[$0] < shardTokens[$1] || (shardTokens[$0] == shardTokens[$1] && $0 < $1) }!
                shardTokens[target] += doc.tokens.count
                shardDocuments[target] += 1
                try spools[target].append(doc)
                summary.documents += 1
                summary.sentences += doc.sentenceCount
            }
            block.removeAll(keepingCapacity: true)
            blockBytes = 0
            report()
        }
        for file in files {
            try CorpusReader.forEachDocument(path: file, format: options.format, threads: options.threads) { sentences in
                block.append(sentences)
                let bytes = sentences.reduce(0) { $0 + $1.utf8.count + 1 }
                blockBytes += bytes
                bytesRead += bytes
                if blockBytes >= 4 << 20 { try flushBlock() }
            }
            try flushBlock()
        }
        for k in spools.indices { try spools[k].close() }
        let trainingDocuments = shardDocuments[..<trainingShards].reduce(0, +), testDocuments = summary.documents - trainingDocuments
        if trainingDocuments < trainingShards {
            throw ShardError("--num-shards \(trainingShards) asks for more shards than the \(trainingDocuments) training documents read "
                             + "(each shard needs one); use --num-shards \(max(1, trainingDocuments)) or fewer")
        }
        if testDocuments < testShards {
            throw ShardError("--eval-fraction \(options.evalFraction) held out \(testDocuments) documents, fewer than --num-test-shards "
                             + "\(testShards) (each shard needs one); raise --eval-fraction or lower --num-test-shards")
        }
        bytesRead = totalBytes
        report(force: true)
        summary.readSeconds = Date().timeIntervalSince(start)

        // Pass 2: instances and HDF5, one shard per job.
        struct Job { var spool: Int; var output: String; var kind: UInt64; var index: Int }
        var jobs: [Job] = []
        for k in 0..<trainingShards {
            jobs.append(Job(spool: k, output: shardPath(kind: "training", index: k), kind: 0, index: k))
        }
        for k in 0..<testShards {
            jobs.append(Job(spool: trainingShards + k, output: shardPath(kind: "test", index: k), kind: 1, index: k))
        }
        // Shards one after another, each using all threads (passes in parallel, chunks compressed in parallel):
        // memory holds one shard at a time.
        var state = (done: 0, training: InstanceStatistics(), test: InstanceStatistics(),
                     instanceSeconds: 0.0, writeSeconds: 0.0)
        for job in jobs {
            let t0 = Date()
            let documents = try spools[job.spool].take()
            var stats = InstanceStatistics()
            let (instances, order) = createTrainingInstancesUnshuffled(
                documents: documents, options: options.instance, vocabulary: vocabulary, seed: options.seed,
                streams: [4, job.kind, UInt64(job.index)], threads: options.threads, statistics: &stats)
            let t1 = Date()
            try ShardWriter.write(instances, order: order, seqLength: options.instance.maxSeqLength,
                                  maxPredictions: options.instance.maxPredictionsPerSeq, to: job.output,
                                  compressionLevel: Int32(options.compressionLevel), byteShuffle: options.byteShuffle,
                                  threads: options.threads)
            let t2 = Date()
            state.done += 1
            if FaultInjection.active("kill-after-shard", step: state.done) { kill(getpid(), SIGKILL) }
            state.instanceSeconds += t1.timeIntervalSince(t0)
            state.writeSeconds += t2.timeIntervalSince(t1)
            if job.kind == 0 { state.training.add(stats) } else { state.test.add(stats) }
            manifest.shards.append(ShardManifest.Shard(file: (job.output as NSString).lastPathComponent, instances: stats.instances,
                                                       bytes: try fileSize(job.output), checksum: try fileChecksum(job.output)))
            progress(PrepareProgress(phase: .writing, documents: summary.documents, bytesRead: totalBytes,
                                     totalBytes: totalBytes, shardsDone: state.done, shardCount: jobs.count,
                                     instances: state.training.instances + state.test.instances,
                                     elapsed: Date().timeIntervalSince(start)))
        }
        manifest.complete = true
        try manifest.write(directory: options.outputDirectory)
        let final = state
        summary.training = final.training
        summary.test = final.test
        summary.shardPaths = jobs.map(\.output)
        let written = Set(summary.shardPaths.map { ($0 as NSString).lastPathComponent })
        summary.staleShards = ((try? fm.contentsOfDirectory(atPath: options.outputDirectory)) ?? []).filter {
            $0.hasPrefix(options.outputPrefix + "_") && $0.hasSuffix(".hdf5") && !written.contains($0)
        }.sorted().map { (options.outputDirectory as NSString).appendingPathComponent($0) }
        summary.instanceSeconds = final.instanceSeconds
        summary.writeSeconds = final.writeSeconds
        summary.seconds = Date().timeIntervalSince(start)
        return summary
    }

    /// Removes what a killed `prepare` left in `directory`: its `.prepare-tmp-<pid>` folder and `*.tmp-<pid>` shard
    /// files, for every pid that is no longer running (a `prepare` still at work on the same folder keeps its own).
    private func removeStaleTemporaries(in directory: String) {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] {
            let pid: Substring
            if name.hasPrefix(".prepare-tmp-") {
                pid = name.dropFirst(".prepare-tmp-".count)
            } else if name.hasPrefix(options.outputPrefix + "_"), let range = name.range(of: ".hdf5.tmp-", options: .backwards) {
                pid = name[range.upperBound...]
            } else {
                continue
            }
            guard let id = pid_t(pid), id > 0, kill(id, 0) != 0, errno == ESRCH else { continue }
            try? fm.removeItem(atPath: (directory as NSString).appendingPathComponent(name))
        }
    }

    private func fileSize(_ path: String) throws -> Int {
        guard let size = try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int else {
            throw ShardError("\(path): cannot read the shard just written")
        }
        return size
    }

    /// `<dir>/<prefix>_<kind>_<k>.hdf5`
    public func shardPath(kind: String, index: Int) -> String {
        (options.outputDirectory as NSString).appendingPathComponent("\(options.outputPrefix)_\(kind)_\(index).hdf5")
    }

    /// Tokenizes a block of documents on `options.threads` threads, keeping their order.
    private func tokenize(_ block: [[String]]) -> [TokenizedDocument] {
        var out = [TokenizedDocument](repeating: TokenizedDocument(), count: block.count)
        let counter = Atomic<Int>(0)
        let encode = self.encode
        out.withUnsafeMutableBufferPointer { buffer in
            nonisolated(unsafe) let results = buffer
            DispatchQueue.concurrentPerform(iterations: max(1, options.threads)) { _ in
                while true {
                    let d = counter.add(1, ordering: .relaxed).oldValue
                    guard d < block.count else { return }
                    var doc = TokenizedDocument()
                    for sentence in block[d] { doc.append(sentence: encode(sentence)) }
                    results[d] = doc
                }
            }
        }
        return out
    }
}

/// One shard's tokenized documents between the passes: in a temporary file (per document
/// `[sentenceCount][ends…][tokens…]` as Int32), or in memory when there is no file.
struct DocumentSpool {
    private let path: String?
    private var handle: FileHandle?
    private var buffer: [Int32] = []
    private var documents: [TokenizedDocument] = []

    /// - Parameter path: the temporary file, or nil to keep the documents in memory.
    init(path: String?) throws {
        self.path = path
        guard let path else { return }
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw ShardError("\(path): cannot create a temporary file; is the output directory writable?")
        }
        handle = h
    }

    mutating func append(_ doc: TokenizedDocument) throws {
        guard path != nil else { documents.append(doc); return }
        buffer.append(Int32(doc.sentenceCount))
        buffer.append(contentsOf: doc.sentenceEnds)
        buffer.append(contentsOf: doc.tokens)
        if buffer.count >= 1 << 18 { try flush() }
    }

    private mutating func flush() throws {
        guard let handle, !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try handle.write(contentsOf: Data($0)) }
        buffer.removeAll(keepingCapacity: true)
    }

    mutating func close() throws {
        try flush()
        try handle?.close()
        handle = nil
    }

    /// The documents appended, in order; the spool is empty after (its file removed).
    mutating func take() throws -> [TokenizedDocument] {
        guard let path else { defer { documents = [] }; return documents }
        defer { try? FileManager.default.removeItem(atPath: path) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ShardError("\(path): the temporary document file vanished")
        }
        let values: [Int32] = data.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
        var docs: [TokenizedDocument] = []
        var p = 0
        while p < values.count {
            let n = Int(values[p]); p += 1
            var doc = TokenizedDocument()
            doc.sentenceEnds = Array(values[p..<(p + n)]); p += n
            let t = Int(doc.sentenceEnds.last ?? 0)
            doc.tokens = Array(values[p..<(p + t)]); p += t
            docs.append(doc)
        }
        return docs
    }
}
