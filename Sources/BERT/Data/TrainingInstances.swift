import Dispatch
import Synchronization

// Instance creation for BERT pre-training: next-sentence pairs and masked-LM predictions.
//
// Mirrors `create_instances_from_document`, `truncate_seq_pair` and `create_masked_lm_predictions` of Google's
// create_pretraining_data.py (google-research/bert) with NVIDIA's change (DeepLearningExamples
// PyTorch/LanguageModeling/BERT): when ten draws of a "random" document all land on the current document, the
// pair is labelled "not random". Google's original labelling is kept behind `sameDocumentRandomIsRandom`.
// The generator is ours (`DataRandom`), so results match the Python code in distribution, not bit for bit.

/// One tokenized document: its sentences stored back to back.
public struct TokenizedDocument: Sendable, Equatable {
    /// All token ids of the document, sentence after sentence.
    public var tokens: [Int32]
    /// `sentenceEnds[i]` is the end (exclusive) of sentence `i` in `tokens`; ascending, last == tokens.count.
    public var sentenceEnds: [Int32]

    /// An empty document.
    public init() { tokens = []; sentenceEnds = [] }

    /// - Parameter sentences: each sentence's token ids; empty sentences are dropped as Google's reader does.
    public init(sentences: [[Int32]]) {
        self.init()
        for s in sentences { append(sentence: s) }
    }

    /// Appends one sentence (ignored when empty).
    public mutating func append<C: Collection>(sentence: C) where C.Element == Int32 {
        guard !sentence.isEmpty else { return }
        tokens.append(contentsOf: sentence)
        sentenceEnds.append(Int32(tokens.count))
    }

    /// The number of sentences.
    public var sentenceCount: Int { sentenceEnds.count }
    /// True when the document has no sentence.
    public var isEmpty: Bool { sentenceEnds.isEmpty }

    /// The token range of sentence `i` in `tokens`.
    @inline(__always)
    public func range(ofSentence i: Int) -> Range<Int> {
        (i == 0 ? 0 : Int(sentenceEnds[i - 1]))..<Int(sentenceEnds[i])
    }
}

/// What instance creation needs to know about the vocabulary.
public struct MaskingVocabulary: Sendable {
    /// `[CLS]`
    public var clsId: Int32
    /// `[SEP]`
    public var sepId: Int32
    /// `[MASK]`
    public var maskId: Int32
    /// The number of vocabulary entries; random replacements draw uniformly from `0..<size` like Google's
    /// `vocab_words[rng.randint(0, len(vocab_words) - 1)]`.
    public var size: Int
    /// `isContinuation[id]` is true for WordPiece pieces that start with `##` (whole-word masking groups them).
    public var isContinuation: [Bool]

    /// - Parameters:
    ///   - clsId, sepId, maskId: the special tokens' ids.
    ///   - tokens: the vocabulary in id order (its size and which entries start with `##`).
    public init(clsId: Int32, sepId: Int32, maskId: Int32, tokens: [String]) {
        self.clsId = clsId; self.sepId = sepId; self.maskId = maskId
        size = tokens.count
        isContinuation = tokens.map { $0.hasPrefix("##") }
    }
}

/// The flags of create_pretraining_data.py that shape instances.
public struct InstanceOptions: Sendable, Codable, Equatable {
    /// S: `--max-seq-length`.
    public var maxSeqLength = 128
    /// P: `--max-predictions-per-seq`.
    public var maxPredictionsPerSeq = 20
    /// `--masked-lm-prob`.
    public var maskedLMProb = 0.15
    /// `--short-seq-prob`: how often a document aims at a random shorter length.
    public var shortSeqProb = 0.1
    /// `--dupe-factor`: passes over the documents, each with other masks.
    public var dupeFactor = 5
    /// `--do-whole-word-mask`: mask a word and its `##` pieces together.
    public var doWholeWordMask = false
    /// Google's original: a "random" B drawn from the current document (after ten tries) is still labelled
    /// random. NVIDIA's fix (the default, `false`) labels it "not random".
    public var sameDocumentRandomIsRandom = false

    public init() {}
}

/// One pre-training example before padding: `[CLS] A [SEP] B [SEP]` with its masked-LM targets.
public struct TrainingInstance: Sendable, Equatable {
    /// Token ids after masking, length ≤ max_seq_length.
    public var inputIds: [Int32]
    /// Tokens with segment id 0: `[CLS]`, A and the first `[SEP]`.
    public var segmentALength: Int
    /// Masked positions, ascending.
    public var maskedPositions: [Int32]
    /// The original ids at `maskedPositions`.
    public var maskedIds: [Int32]
    /// True when B is a random sentence (NSP label 1).
    public var isRandomNext: Bool
}

/// Counts gathered while creating instances (the summary of `bert prepare` and the reference test).
public struct InstanceStatistics: Sendable, Codable, Equatable {
    /// Instances made.
    public var instances = 0
    /// Tokens in them, `[CLS]`/`[SEP]` included.
    public var tokens = 0
    /// Instances whose B is a random sentence (NSP label 1).
    public var randomNext = 0
    /// Masked-LM predictions.
    public var maskedPositions = 0
    /// Predictions shown as `[MASK]` (about 80 %).
    public var replacedByMask = 0
    /// Predictions left as the original token (about 10 %).
    public var keptOriginal = 0
    /// Predictions replaced by a random vocabulary entry (about 10 %).
    public var replacedByRandom = 0
    /// Instances shorter than max_seq_length.
    public var shortInstances = 0

    public init() {}

    /// Adds another run's counts.
    public mutating func add(_ o: InstanceStatistics) {
        instances += o.instances; tokens += o.tokens; randomNext += o.randomNext
        maskedPositions += o.maskedPositions; replacedByMask += o.replacedByMask
        keptOriginal += o.keptOriginal; replacedByRandom += o.replacedByRandom
        shortInstances += o.shortInstances
    }
}

/// Creates the training instances of one group of documents (a shard's worth), as
/// `create_training_instances` does after reading: shuffle the documents, run `dupeFactor` passes of
/// `create_instances_from_document` over them, shuffle the instances. Random next sentences come from this
/// group only (NVIDIA's scripts likewise run once per text shard).
///
/// - Parameters:
///   - documents: the group's documents; empty ones are skipped.
///   - options: the instance flags.
///   - vocabulary: special ids and the `##` table.
///   - rng: the group's own stream.
///   - statistics: incremented with what was made.
/// - Returns: the instances, shuffled.
public func createTrainingInstances(documents input: [TokenizedDocument], options: InstanceOptions,
                                    vocabulary: MaskingVocabulary, rng: inout DataRandom,
                                    statistics: inout InstanceStatistics) -> [TrainingInstance] {
    var documents = input.filter { !$0.isEmpty }
    rng.shuffle(&documents)
    var maker = InstanceMaker(options: options, vocabulary: vocabulary)
    var instances: [TrainingInstance] = []
    for _ in 0..<options.dupeFactor {
        for d in documents.indices {
            maker.instances(fromDocument: d, in: documents, rng: &rng, into: &instances, statistics: &statistics)
        }
    }
    rng.shuffle(&instances)
    return instances
}

/// `createTrainingInstances` on `threads` threads.
///
/// The work is cut into units of (pass, block of `documentsPerBlock` documents), fixed by the input alone;
/// the document shuffle and the final instance shuffle use the stream `DataRandom(seed, streams)` and unit
/// (p, b) its own stream `DataRandom(seed, streams + [1 + p, b])`. So the result is the same whatever
/// `threads` is; Google's script draws everything from one sequence (the same distribution, other draws).
/// Random next sentences still come from all the documents given.
/// - Returns: the instances, shuffled.
public func createTrainingInstances(documents input: [TokenizedDocument], options: InstanceOptions,
                                    vocabulary: MaskingVocabulary, seed: UInt64, streams: [UInt64], threads: Int,
                                    documentsPerBlock: Int = 32,
                                    statistics: inout InstanceStatistics) -> [TrainingInstance] {
    let (instances, order) = createTrainingInstancesUnshuffled(
        documents: input, options: options, vocabulary: vocabulary, seed: seed, streams: streams, threads: threads,
        documentsPerBlock: documentsPerBlock, statistics: &statistics)
    return order.map { instances[$0] }
}

/// The work of `createTrainingInstances(…threads:…)` without its last step: the instances in unit order and
/// the shuffled order to write them in (`order[r]` is the instance of row `r`), so a writer can take them
/// straight from where they were made.
public func createTrainingInstancesUnshuffled(
    documents input: [TokenizedDocument], options: InstanceOptions, vocabulary: MaskingVocabulary, seed: UInt64,
    streams: [UInt64], threads: Int, documentsPerBlock: Int = 32, statistics: inout InstanceStatistics
) -> (instances: [TrainingInstance], order: [Int]) {
    var rng = DataRandom(seed: seed, streams: streams)
    var documents = input.filter { !$0.isEmpty }
    rng.shuffle(&documents)
    let blocks = (documents.count + documentsPerBlock - 1) / documentsPerBlock
    let units = options.dupeFactor * blocks
    var perUnit = [[TrainingInstance]](repeating: [], count: units)
    var perStats = [InstanceStatistics](repeating: InstanceStatistics(), count: units)
    let counter = Atomic<Int>(0)
    perUnit.withUnsafeMutableBufferPointer { out in
        perStats.withUnsafeMutableBufferPointer { st in
            nonisolated(unsafe) let out = out, st = st
            let documents = documents
            DispatchQueue.concurrentPerform(iterations: max(1, min(threads, units))) { _ in
                var maker = InstanceMaker(options: options, vocabulary: vocabulary)
                while true {
                    let u = counter.add(1, ordering: .relaxed).oldValue
                    guard u < units else { return }
                    let p = u / blocks, b = u % blocks
                    var unitRandom = DataRandom(seed: seed, streams: streams + [UInt64(1 + p), UInt64(b)])
                    var made: [TrainingInstance] = []
                    var stats = InstanceStatistics()
                    for d in (b * documentsPerBlock)..<min(documents.count, (b + 1) * documentsPerBlock) {
                        maker.instances(fromDocument: d, in: documents, rng: &unitRandom, into: &made, statistics: &stats)
                    }
                    out[u] = made
                    st[u] = stats
                }
            }
        }
    }
    var instances: [TrainingInstance] = []
    instances.reserveCapacity(perUnit.reduce(0) { $0 + $1.count })
    for u in perUnit { instances.append(contentsOf: u) }
    for s in perStats { statistics.add(s) }
    return (instances, rng.permutation(instances.count))
}

/// The per-document algorithm, with scratch buffers reused between documents.
struct InstanceMaker {
    let options: InstanceOptions
    let vocabulary: MaskingVocabulary
    private var a: [Int32] = []
    private var b: [Int32] = []
    private var candidates: [Int32] = []
    private var groupStarts: [Int32] = []
    private var groupOrder: [Int32] = []

    init(options: InstanceOptions, vocabulary: MaskingVocabulary) {
        self.options = options
        self.vocabulary = vocabulary
    }

    /// `create_instances_from_document`.
    mutating func instances(fromDocument documentIndex: Int, in documents: [TokenizedDocument],
                            rng: inout DataRandom, into out: inout [TrainingInstance],
                            statistics: inout InstanceStatistics) {
        let document = documents[documentIndex]
        let maxNumTokens = options.maxSeqLength - 3
        // Usually fill the whole sequence; sometimes (short_seq_prob) aim shorter, to lessen the mismatch
        // between pre-training and fine-tuning on short inputs. Chosen once per document, as in Google's code.
        var targetSeqLength = maxNumTokens
        if rng.uniform() < options.shortSeqProb { targetSeqLength = rng.int(2, maxNumTokens) }

        var chunkStart = 0        // first sentence of the current chunk
        var currentLength = 0
        var i = 0
        let n = document.sentenceCount
        while i < n {
            currentLength += document.range(ofSentence: i).count
            if i == n - 1 || currentLength >= targetSeqLength {
                let chunkCount = i - chunkStart + 1
                // A takes sentences [chunkStart, chunkStart + aEnd).
                var aEnd = 1
                if chunkCount >= 2 { aEnd = rng.int(1, chunkCount - 1) }
                a.removeAll(keepingCapacity: true)
                b.removeAll(keepingCapacity: true)
                let aStop = document.range(ofSentence: chunkStart + aEnd - 1).upperBound
                a.append(contentsOf: document.tokens[document.range(ofSentence: chunkStart).lowerBound..<aStop])

                var isRandomNext = false
                if chunkCount == 1 || rng.uniform() < 0.5 {
                    isRandomNext = true
                    let targetBLength = targetSeqLength - a.count
                    // Ten tries for a document other than this one.
                    var randomIndex = 0
                    for _ in 0..<10 {
                        randomIndex = rng.int(0, documents.count - 1)
                        if randomIndex != documentIndex { break }
                    }
                    if randomIndex == documentIndex && !options.sameDocumentRandomIsRandom { isRandomNext = false }
                    let randomDocument = documents[randomIndex]
                    let randomStart = rng.int(0, randomDocument.sentenceCount - 1)
                    for j in randomStart..<randomDocument.sentenceCount {
                        b.append(contentsOf: randomDocument.tokens[randomDocument.range(ofSentence: j)])
                        if b.count >= targetBLength { break }
                    }
                    // The chunk's sentences after A were not used: put them back for the next chunk.
                    i -= chunkCount - aEnd
                } else {
                    let bStart = document.range(ofSentence: chunkStart + aEnd).lowerBound
                    b.append(contentsOf: document.tokens[bStart..<document.range(ofSentence: i).upperBound])
                }
                let instance = makeInstance(isRandomNext: isRandomNext, maxNumTokens: maxNumTokens,
                                            rng: &rng, statistics: &statistics)
                out.append(instance)
                chunkStart = i + 1
                currentLength = 0
            }
            i += 1
        }
    }

    /// `truncate_seq_pair`, then `[CLS] A [SEP] B [SEP]`, then `create_masked_lm_predictions`.
    private mutating func makeInstance(isRandomNext: Bool, maxNumTokens: Int, rng: inout DataRandom,
                                       statistics: inout InstanceStatistics) -> TrainingInstance {
        // Truncate the longer side one token at a time, from the front or the back with p 0.5.
        var aLo = 0, aHi = a.count, bLo = 0, bHi = b.count
        while (aHi - aLo) + (bHi - bLo) > maxNumTokens {
            let truncateA = (aHi - aLo) > (bHi - bLo)
            let fromFront = rng.uniform() < 0.5
            if truncateA { if fromFront { aLo += 1 } else { aHi -= 1 } }
            else { if fromFront { bLo += 1 } else { bHi -= 1 } }
        }
        precondition(aHi > aLo && bHi > bLo, "instance creation: empty segment after truncation")
        var tokens: [Int32] = []
        tokens.reserveCapacity(aHi - aLo + bHi - bLo + 3)
        tokens.append(vocabulary.clsId)
        tokens.append(contentsOf: a[aLo..<aHi])
        tokens.append(vocabulary.sepId)
        let segmentALength = tokens.count
        tokens.append(contentsOf: b[bLo..<bHi])
        tokens.append(vocabulary.sepId)

        // Filled as locals and put back after: appends to a stored property re-check its uniqueness every time.
        var candidates: [Int32] = [], groupStarts: [Int32] = []
        swap(&candidates, &self.candidates)
        swap(&groupStarts, &self.groupStarts)
        defer {
            swap(&candidates, &self.candidates)
            swap(&groupStarts, &self.groupStarts)
        }
        // Candidate groups: every token but [CLS]/[SEP]; with whole-word masking a `##` piece joins the
        // group before it.
        candidates.removeAll(keepingCapacity: true)
        groupStarts.removeAll(keepingCapacity: true)
        let clsId = vocabulary.clsId, sepId = vocabulary.sepId, wholeWords = options.doWholeWordMask
        for (p, t) in tokens.enumerated() where t != clsId && t != sepId {
            let continues = wholeWords && !groupStarts.isEmpty
                && Int(t) < vocabulary.isContinuation.count && t >= 0 && vocabulary.isContinuation[Int(t)]
            if !continues { groupStarts.append(Int32(candidates.count)) }
            candidates.append(Int32(p))
        }
        let groupCount = groupStarts.count
        groupStarts.append(Int32(candidates.count))
        groupOrder.removeAll(keepingCapacity: true)
        groupOrder.append(contentsOf: (0..<Int32(groupCount)))

        // Python's round() rounds halves to even.
        let wanted = (Double(tokens.count) * options.maskedLMProb).rounded(.toNearestOrEven)
        let numToPredict = min(options.maxPredictionsPerSeq, max(1, Int(wanted)))
        var positions: [Int32] = [], ids: [Int32] = []
        positions.reserveCapacity(numToPredict)
        ids.reserveCapacity(numToPredict)
        // Google shuffles all candidate groups, then walks them in order; drawing the shuffled order lazily
        // (Fisher–Yates one step per group taken) gives the same distribution with fewer draws.
        var k = 0
        while k < groupCount && positions.count < numToPredict {
            let j = k + Int(rng.next(upperBound: UInt64(groupCount - k)))
            if j != k { groupOrder.swapAt(k, j) }
            let g = Int(groupOrder[k])
            k += 1
            let lo = Int(groupStarts[g]), hi = Int(groupStarts[g + 1])
            if positions.count + (hi - lo) > numToPredict { continue }
            // Groups are disjoint, so Google's "already covered" check never fires here.
            for c in lo..<hi {
                let p = Int(candidates[c])
                positions.append(Int32(p))
                ids.append(tokens[p])
                if rng.uniform() < 0.8 {
                    tokens[p] = vocabulary.maskId
                    statistics.replacedByMask += 1
                } else if rng.uniform() < 0.5 {
                    statistics.keptOriginal += 1
                } else {
                    tokens[p] = Int32(rng.int(0, vocabulary.size - 1))
                    statistics.replacedByRandom += 1
                }
            }
        }
        // Sort the (few) predictions by position.
        for a in 1..<max(1, positions.count) {
            let p = positions[a], v = ids[a]
            var b = a
            while b > 0 && positions[b - 1] > p { positions[b] = positions[b - 1]; ids[b] = ids[b - 1]; b -= 1 }
            positions[b] = p; ids[b] = v
        }

        statistics.instances += 1
        statistics.tokens += tokens.count
        statistics.maskedPositions += positions.count
        if isRandomNext { statistics.randomNext += 1 }
        if tokens.count < options.maxSeqLength { statistics.shortInstances += 1 }
        return TrainingInstance(inputIds: tokens, segmentALength: segmentALength,
                                maskedPositions: positions, maskedIds: ids,
                                isRandomNext: isRandomNext)
    }
}
