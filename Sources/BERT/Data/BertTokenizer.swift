import Foundation

/// BERT's full tokenizer: the basic tokenizer, then greedy WordPiece (Google's `FullTokenizer`; the same
/// output as HF `BertWordPieceTokenizer` with `clean_text`, `handle_chinese_chars` and
/// `strip_accents` = `lowercase`).
///
/// `[PAD] [UNK] [CLS] [SEP] [MASK]` written in the text are kept whole (as HF does).
/// Thread-safe: one tokenizer can serve many threads.
///
/// Where HF and Google's `tokenization.py` differ, this follows HF (checked on every code point by
/// `bench/unicode_sweep.py`, on 30 MB of Wikipedia by `bench/tokenize_match.py`):
/// - special tokens in the text are not split (Google splits `[MASK]` into `[ mask ]`);
/// - U+2028/U+2029 (Zl/Zp) are whitespace; Cf and Co (private use) characters are dropped like Cc;
///   control/mark/punctuation categories are Unicode 8.0's (see `ScalarTable`);
/// - accents are stripped before lower-casing (Google lower-cases first), and lower-casing is per code
///   point (no final sigma);
/// - U+2B820–U+2B91F are not treated as CJK (HF's copy of the ranges starts the fifth at U+2B920);
/// - words over `maxCharactersPerWord` = 100 characters become `[UNK]` (Google: 200).
public struct BertTokenizer: Sendable {
    /// The vocabulary the ids refer to.
    public let vocabulary: Vocabulary
    /// Whether text is lower-cased and stripped of accents (an uncased model).
    public var lowercase: Bool { basic.lowercase }
    let basic: BasicTokenizer
    let wordpiece: WordpieceTokenizer

    /// - Parameters:
    ///   - vocabulary: the WordPiece vocabulary.
    ///   - lowercase: uncased models: lower-case and strip accents.
    ///   - maxCharactersPerWord: longer words become `[UNK]` (HF uses 100, Google 200).
    public init(vocabulary: Vocabulary, lowercase: Bool, maxCharactersPerWord: Int = 100) {
        self.vocabulary = vocabulary
        let specials = zip(Vocabulary.specialTokens, vocabulary.specialIds).map {
            BasicTokenizer.SpecialToken(bytes: Array($0.0.utf8), id: $0.1)
        }
        basic = BasicTokenizer(lowercase: lowercase, specials: specials)
        wordpiece = WordpieceTokenizer(vocabulary: vocabulary, maxCharactersPerWord: maxCharactersPerWord)
    }

    /// The wordpieces of `text`, without `[CLS]`/`[SEP]`.
    public func tokenize(_ text: String) -> [String] {
        encode(text).map { vocabulary.tokens[Int($0)] }
    }

    /// The ids of `tokenize(text)`.
    public func encode(_ text: String) -> [Int32] {
        let scratch = Scratch(maxCharactersPerWord: wordpiece.maxCharactersPerWord)
        var ids: [Int32] = []
        var text = text
        text.withUTF8 { encode(utf8: $0, into: &ids, scratch: scratch) }
        return ids
    }

    /// `[CLS] A [SEP]`, or `[CLS] A [SEP] B [SEP]` with `pair`; segment ids 0 for `[CLS] A [SEP]`, 1 for
    /// `B [SEP]`. No truncation.
    public func encodeForModel(_ a: String, pair b: String?) -> (ids: [Int32], segmentIds: [Int32]) {
        var ids: [Int32] = [vocabulary.clsId]
        ids.append(contentsOf: encode(a))
        ids.append(vocabulary.sepId)
        var segmentIds = [Int32](repeating: 0, count: ids.count)
        if let b {
            let first = ids.count
            ids.append(contentsOf: encode(b))
            ids.append(vocabulary.sepId)
            segmentIds.append(contentsOf: repeatElement(1, count: ids.count - first))
        }
        return (ids, segmentIds)
    }

    /// `encode` of many texts on `threads` threads; results in input order.
    public func encodeBatch(_ texts: [String], threads: Int = ProcessInfo.processInfo.activeProcessorCount)
        -> [[Int32]] {
        var results = [[Int32]](repeating: [], count: texts.count)
        let chunks = max(1, min(texts.count, threads * 8))
        results.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let out = out
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let scratch = Scratch(maxCharactersPerWord: wordpiece.maxCharactersPerWord)
                let lo = texts.count * c / chunks, hi = texts.count * (c + 1) / chunks
                for t in lo..<hi {
                    var ids: [Int32] = []
                    var text = texts[t]
                    text.withUTF8 { encode(utf8: $0, into: &ids, scratch: scratch) }
                    out[t] = ids
                }
            }
        }
        return results
    }

    /// Appends the ids of UTF-8 `text` (no `[CLS]`/`[SEP]`) to `ids`; no `String` is built. Invalid UTF-8
    /// sequences are dropped, as U+FFFD is.
    public func encode(utf8 text: UnsafeBufferPointer<UInt8>, appendingTo ids: inout [Int32]) {
        encode(utf8: text, into: &ids, scratch: Scratch(maxCharactersPerWord: wordpiece.maxCharactersPerWord))
    }

    /// Buffers one thread reuses across calls.
    final class Scratch {
        let capacity: Int
        let word: UnsafeMutablePointer<UInt32>
        let prefix: UnsafeMutablePointer<UInt64>
        var astral: [UInt32] = []

        init(maxCharactersPerWord: Int) {
            capacity = maxCharactersPerWord + 1
            word = .allocate(capacity: capacity)
            prefix = .allocate(capacity: capacity + 1)
        }

        deinit { word.deallocate(); prefix.deallocate() }
    }

    /// Appends the ids of UTF-8 `text` to `ids` (the hot path: no strings are built).
    func encode(utf8 text: UnsafeBufferPointer<UInt8>, into ids: inout [Int32], scratch: Scratch) {
        let word = scratch.word, prefix = scratch.prefix
        let wordpiece = self.wordpiece
        basic.split(text, word: word, wordCapacity: scratch.capacity, astral: &scratch.astral,
                    onWord: { stored, length in
                        if length > stored { ids.append(vocabulary.unknownId); return }
                        wordpiece.encode(word: word, count: length, prefix: prefix, into: &ids)
                    },
                    onSpecial: { ids.append($0) })
    }
}
