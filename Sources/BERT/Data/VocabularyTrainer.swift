import Foundation

/// Learns a WordPiece vocabulary from raw text, the way HF `tokenizers`' `WordPieceTrainer` does
/// (a BPE-style merge training on words, continuation pieces marked `##`):
///
/// 1. Pre-tokenize every line with BERT's basic tokenizer and count the words (lines that start with
///    `<doc` or `</doc>`, WikiExtractor's markers, are skipped).
/// 2. The alphabet: the `limitAlphabet` most frequent characters (ties: lower code point), in code-point
///    order; then the `##` form of each alphabet character that occurs inside a word, in code-point order.
///    Characters outside the alphabet are left out of the words, as HF does.
/// 3. Each word is a sequence of pieces (`w ##o ##r ##d`). Repeatedly merge the most frequent adjacent
///    pair (ties: the pair whose (left, right) strings come first in code-point order) into a new piece
///    (`##` of the right part dropped) until the vocabulary has `vocabSize` tokens or the best pair occurs
///    fewer than `minFrequency` times. Pair counts are updated incrementally: a merge touches only the
///    words that hold the pair.
///
/// The output layout is BERT's: `[PAD]`, `[unused0]`…`[unused98]`, `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]`,
/// the alphabet, its `##` forms, then the merged pieces in the order they were learned. Deterministic: the
/// result depends only on the text and the options, not on the thread count.
public final class VocabularyTrainer {
    /// What to learn.
    public struct Options: Sendable {
        /// Tokens in the result, the reserved ones included.
        public var vocabSize: Int
        /// Lower-case and strip accents before counting (uncased models).
        public var lowercase: Bool
        /// A pair seen fewer times than this is never merged.
        public var minFrequency: Int
        /// Characters kept in the alphabet (the most frequent ones).
        public var limitAlphabet: Int
        /// Threads for pre-tokenization.
        public var threads: Int

        /// The defaults are BERT's and HF's: 30522 tokens, uncased, min frequency 2, 1000 characters.
        public init(vocabSize: Int = 30522, lowercase: Bool = true, minFrequency: Int = 2,
                    limitAlphabet: Int = 1000, threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
            self.vocabSize = vocabSize
            self.lowercase = lowercase
            self.minFrequency = minFrequency
            self.limitAlphabet = limitAlphabet
            self.threads = threads
        }
    }

    /// Numbers from a training run.
    public struct Summary: Sendable {
        /// Files read by `addFile`.
        public var files = 0
        /// Bytes of text read.
        public var bytes = 0
        /// Words counted (with repetition) and distinct words.
        public var words = 0
        public var uniqueWords = 0
        /// Words longer than `maxWordLength` scalars, left out.
        public var skippedLongWords = 0
        /// Characters kept, and how many of them got a `##` form.
        public var alphabet = 0
        public var continuationCharacters = 0
        /// Merges learned (a merge that rebuilds an existing piece adds no token).
        public var merges = 0
        /// Tokens in the result.
        public var vocabularySize = 0
    }

    /// Errors that name what to change.
    public struct Error: Swift.Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// BERT's reserved tokens, in id order, before the learned ones.
    public static let reservedTokens: [String] =
        ["[PAD]"] + (0..<99).map { "[unused\($0)]" } + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]

    /// Words longer than this (in scalars) are not counted.
    public static let maxWordLength = 4096

    /// The settings this trainer was made with.
    public let options: Options
    /// Counts so far (files, bytes, words); the vocabulary numbers after `train()`.
    public private(set) var summary = Summary()
    private let basic: BasicTokenizer
    private let counter = WordCounter()

    /// A trainer with no words counted yet.
    public init(options: Options) {
        self.options = options
        basic = BasicTokenizer(lowercase: options.lowercase)
    }

    // MARK: - Counting words

    /// Counts the words of `text` (lines; `<doc`/`</doc>` lines skipped).
    public func add(text: String) {
        var text = text
        text.withUTF8 { add(utf8: $0) }
    }

    /// Counts the words of UTF-8 text (lines; `<doc`/`</doc>` lines skipped), on `options.threads` threads.
    public func add(utf8 text: UnsafeBufferPointer<UInt8>) {
        guard !text.isEmpty else { return }
        summary.bytes += text.count
        var lineStarts: [Int] = [0]
        for i in 0..<text.count where text[i] == 10 { lineStarts.append(i + 1) }
        if lineStarts.last == text.count { lineStarts.removeLast() }
        let lineCount = lineStarts.count
        let chunks = max(1, min(options.threads, lineCount))
        let counters = (0..<chunks).map { _ in WordCounter() }
        let skipped = UnsafeMutablePointer<Int>.allocate(capacity: chunks)
        skipped.initialize(repeating: 0, count: chunks)
        defer { skipped.deallocate() }
        nonisolated(unsafe) let text = text
        nonisolated(unsafe) let counterList = counters
        nonisolated(unsafe) let skippedOut = skipped
        let basic = self.basic
        let starts = lineStarts
        let work: @Sendable (Int) -> Void = { c in
            let counter = counterList[c]
            let capacity = VocabularyTrainer.maxWordLength
            let word = UnsafeMutablePointer<UInt32>.allocate(capacity: capacity)
            defer { word.deallocate() }
            var astral: [UInt32] = []
            var longWords = 0
            let lo = lineCount * c / chunks, hi = lineCount * (c + 1) / chunks
            for l in lo..<hi {
                let start = starts[l]
                let end = l + 1 < lineCount ? starts[l + 1] : text.count
                let line = UnsafeBufferPointer(rebasing: text[start..<end])
                if VocabularyTrainer.isDocumentMarker(line) { continue }
                basic.split(line, word: word, wordCapacity: capacity, astral: &astral, onWord: { stored, length in
                    if stored == length { counter.add(word, stored) } else { longWords += 1 }
                }, onSpecial: { _ in })
            }
            skippedOut[c] = longWords
        }
        if chunks == 1 { work(0) } else { DispatchQueue.concurrentPerform(iterations: chunks, execute: work) }
        for c in 0..<chunks {
            counter.merge(counters[c])
            summary.skippedLongWords += skipped[c]
        }
    }

    /// Counts the words of a text file, reading it in blocks of whole lines.
    /// - Parameter progress: called after each block with the bytes of this file read so far.
    /// - Throws: when the file cannot be opened.
    public func addFile(atPath path: String, progress: ((Int) -> Void)? = nil) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw Error(description: "vocab: cannot open \(path)")
        }
        defer { try? handle.close() }
        var pending: [UInt8] = []
        var done = 0
        while true {
            let data = handle.readData(ofLength: 16 << 20)
            let atEnd = data.isEmpty
            pending.append(contentsOf: data)
            let cut = atEnd ? pending.count : (pending.lastIndex(of: 10).map { $0 + 1 } ?? 0)
            if cut > 0 {
                pending.withUnsafeBufferPointer { add(utf8: UnsafeBufferPointer(rebasing: $0[0..<cut])) }
                pending.removeSubrange(0..<cut)
                done += cut
                progress?(done)
            }
            if atEnd { break }
        }
        summary.files += 1
    }

    static func isDocumentMarker(_ line: UnsafeBufferPointer<UInt8>) -> Bool {
        func starts(_ prefix: [UInt8]) -> Bool {
            if line.count < prefix.count { return false }
            for i in 0..<prefix.count where line[i] != prefix[i] { return false }
            return true
        }
        return starts(Array("<doc".utf8)) || starts(Array("</doc>".utf8))
    }

    // MARK: - Training

    /// Learns the vocabulary from the words counted so far.
    /// - Throws: when `vocabSize` cannot hold the reserved tokens and the alphabet.
    public func train() throws -> Vocabulary {
        summary.words = counter.total
        summary.uniqueWords = counter.uniqueCount
        var tokens: [[UInt32]] = VocabularyTrainer.reservedTokens.map { $0.unicodeScalars.map(\.value) }
        var ids: [[UInt32]: Int32] = [:]
        for (i, t) in tokens.enumerated() { ids[t] = Int32(i) }
        let hashHash: [UInt32] = [35, 35]

        // The alphabet.
        var charCounts: [UInt32: Int] = [:]
        var inner = Set<UInt32>()
        counter.forEach { word, count in
            for (i, c) in word.enumerated() {
                charCounts[c, default: 0] += count
                if i > 0 { inner.insert(c) }
            }
        }
        var alphabet = charCounts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .prefix(max(0, options.limitAlphabet)).map(\.key)
        alphabet.sort()
        let alphabetSet = Set(alphabet)
        let continuation = inner.filter { alphabetSet.contains($0) }.sorted()
        let needed = tokens.count + alphabet.count + continuation.count
        if needed > options.vocabSize {
            throw Error(description: "vocab: --vocab-size \(options.vocabSize) cannot hold the \(tokens.count) reserved "
                + "tokens and \(alphabet.count + continuation.count) alphabet pieces; raise it or lower --limit-alphabet")
        }
        var charId: [UInt32: Int32] = [:], continuationId: [UInt32: Int32] = [:]
        for c in alphabet {
            if let id = ids[[c]] { charId[c] = id; continue }
            ids[[c]] = Int32(tokens.count); charId[c] = Int32(tokens.count); tokens.append([c])
        }
        for c in continuation {
            let t = hashHash + [c]
            if let id = ids[t] { continuationId[c] = id; continue }
            ids[t] = Int32(tokens.count); continuationId[c] = Int32(tokens.count); tokens.append(t)
        }
        summary.alphabet = alphabet.count
        summary.continuationCharacters = continuation.count

        // Words as pieces.
        var words: [[Int32]] = []
        var wordCounts: [Int] = []
        words.reserveCapacity(counter.uniqueCount)
        counter.forEach { word, count in
            var pieces: [Int32] = []
            pieces.reserveCapacity(word.count)
            for (i, c) in word.enumerated() {
                if let id = i == 0 ? charId[c] : continuationId[c] { pieces.append(id) }
            }
            if !pieces.isEmpty { words.append(pieces); wordCounts.append(count) }
        }

        // Pair counts and where each pair occurs.
        @inline(__always) func key(_ a: Int32, _ b: Int32) -> UInt64 { (UInt64(UInt32(a)) << 32) | UInt64(UInt32(b)) }
        var pairCounts: [UInt64: Int] = [:]
        var occurrences: [UInt64: [Int32]] = [:]
        for (w, pieces) in words.enumerated() where pieces.count > 1 {
            for i in 0..<(pieces.count - 1) {
                let k = key(pieces[i], pieces[i + 1])
                pairCounts[k, default: 0] += wordCounts[w]
                occurrences[k, default: []].append(Int32(w))
            }
        }
        var heap = PairHeap()
        func pairPrecedes(_ x: UInt64, _ y: UInt64) -> Bool {
            let xa = tokens[Int(x >> 32)], ya = tokens[Int(y >> 32)]
            if xa != ya { return xa.lexicographicallyPrecedes(ya) }
            return tokens[Int(x & 0xFFFF_FFFF)].lexicographicallyPrecedes(tokens[Int(y & 0xFFFF_FFFF)])
        }
        for (k, c) in pairCounts { heap.push((c, k), precedes: pairPrecedes) }

        // Merges.
        var stamp = [Int](repeating: -1, count: words.count)
        var merges = 0
        let minFrequency = max(1, options.minFrequency)
        var touched: [UInt64: Bool] = [:]
        while tokens.count < options.vocabSize, let top = heap.pop(precedes: pairPrecedes) {
            let current = pairCounts[top.pair] ?? 0
            if current != top.count {
                if current > 0 { heap.push((current, top.pair), precedes: pairPrecedes) }
                continue
            }
            if top.count < minFrequency { break }
            let a = Int32(truncatingIfNeeded: top.pair >> 32), b = Int32(truncatingIfNeeded: top.pair & 0xFFFF_FFFF)
            var right = tokens[Int(b)][...]
            if right.starts(with: hashHash) { right = right.dropFirst(2) }
            let merged = tokens[Int(a)] + right
            let newId: Int32
            if let existing = ids[merged] { newId = existing } else {
                newId = Int32(tokens.count); ids[merged] = newId; tokens.append(merged)
            }
            merges += 1
            touched.removeAll(keepingCapacity: true)
            for w32 in occurrences.removeValue(forKey: top.pair) ?? [] {
                let w = Int(w32)
                if stamp[w] == merges { continue }
                stamp[w] = merges
                let count = wordCounts[w]
                var pieces = words[w]
                words[w] = []  // so that `pieces` is the only reference and changes in place
                var i = 0
                while i < pieces.count - 1 {
                    if pieces[i] == a && pieces[i + 1] == b {
                        if i > 0 {
                            pairCounts[key(pieces[i - 1], a), default: 0] -= count
                            let k = key(pieces[i - 1], newId)
                            pairCounts[k, default: 0] += count
                            occurrences[k, default: []].append(w32); touched[k] = true
                        }
                        pairCounts[top.pair, default: 0] -= count
                        if i + 2 < pieces.count {
                            pairCounts[key(b, pieces[i + 2]), default: 0] -= count
                            let k = key(newId, pieces[i + 2])
                            pairCounts[k, default: 0] += count
                            occurrences[k, default: []].append(w32); touched[k] = true
                        }
                        pieces[i] = newId
                        pieces.remove(at: i + 1)
                    }
                    i += 1
                }
                words[w] = pieces
            }
            pairCounts[top.pair] = nil
            for k in touched.keys { if let c = pairCounts[k], c > 0 { heap.push((c, k), precedes: pairPrecedes) } }
        }
        summary.merges = merges
        summary.vocabularySize = tokens.count
        let strings = tokens.map { t -> String in
            var s = String.UnicodeScalarView()
            for v in t { s.append(Unicode.Scalar(v)!) }
            return String(s)
        }
        return try Vocabulary(tokens: strings)
    }
}

/// A binary max-heap of (count, pair): higher count first, then the pair that `precedes`.
struct PairHeap {
    private var items: [(count: Int, pair: UInt64)] = []

    var isEmpty: Bool { items.isEmpty }

    @inline(__always)
    private func above(_ x: (count: Int, pair: UInt64), _ y: (count: Int, pair: UInt64),
                       _ precedes: (UInt64, UInt64) -> Bool) -> Bool {
        x.count != y.count ? x.count > y.count : precedes(x.pair, y.pair)
    }

    mutating func push(_ item: (count: Int, pair: UInt64), precedes: (UInt64, UInt64) -> Bool) {
        items.append(item)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if !above(items[i], items[parent], precedes) { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop(precedes: (UInt64, UInt64) -> Bool) -> (count: Int, pair: UInt64)? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var best = i
                if l < items.count && above(items[l], items[best], precedes) { best = l }
                if r < items.count && above(items[r], items[best], precedes) { best = r }
                if best == i { break }
                items.swapAt(i, best)
                i = best
            }
        }
        return first
    }
}
