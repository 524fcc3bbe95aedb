/// Vocabulary lookup for WordPiece on scalar slices, without building strings.
///
/// Every token is a key `(scalars, continuation: false)`; a token `##x` is also the key
/// `(x, continuation: true)`. Keys hash with a polynomial over scalars, so the hash of any slice of a word
/// comes in O(1) from the word's prefix hashes (`hash(s..<e) = P[e] − P[s]·Bᵉ⁻ˢ`, wrapping arithmetic);
/// a hash match is confirmed by comparing the scalars. Open addressing, linear probing.
final class WordpieceIndex: @unchecked Sendable {
    static let base: UInt64 = 0x100_0000_01B3
    static let continuationSalt: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// `[slotCount]` entry index or −1.
    private let slots: UnsafeMutablePointer<Int32>
    private let mask: Int
    /// Per entry: full hash, key offset in `keys`, key length, token id.
    private let entryHash: UnsafeMutablePointer<UInt64>
    private let entryOffset: UnsafeMutablePointer<Int32>
    private let entryLength: UnsafeMutablePointer<Int32>
    private let entryId: UnsafeMutablePointer<Int32>
    private let keys: UnsafeMutablePointer<UInt32>
    /// The longest word-initial and continuation keys, in scalars.
    let maxInitialLength: Int
    let maxContinuationLength: Int
    /// `[2, 65536]` the longest word-initial (row 0) and continuation (row 1) key that starts with a BMP
    /// scalar, capped at 255; 0 when none does. A word with a capital letter and an uncased vocabulary
    /// then fails at once instead of probing every length.
    private let maxLengthByFirst: UnsafeMutablePointer<UInt8>
    /// The first token (in id order) that repeats an earlier one: the earlier one's id, then its own.
    let firstDuplicate: (first: Int32, second: Int32)?

    init(tokens: [String]) {
        var keyScalars: [UInt32] = []
        var offsets: [Int32] = [], lengths: [Int32] = [], hashes: [UInt64] = [], ids: [Int32] = []
        var maxInitial = 0, maxContinuation = 0
        let byFirst = UnsafeMutablePointer<UInt8>.allocate(capacity: 2 * 65536)
        byFirst.initialize(repeating: 0, count: 2 * 65536)
        maxLengthByFirst = byFirst
        func add(_ scalars: ArraySlice<UInt32>, continuation: Bool, id: Int) {
            offsets.append(Int32(keyScalars.count))
            lengths.append(Int32(scalars.count))
            keyScalars.append(contentsOf: scalars)
            hashes.append(WordpieceIndex.finish(WordpieceIndex.polynomial(scalars), continuation: continuation))
            ids.append(Int32(id))
            if continuation { maxContinuation = max(maxContinuation, scalars.count) }
            else { maxInitial = max(maxInitial, scalars.count) }
            if let first = scalars.first, first < 65536 {
                let slot = (continuation ? 65536 : 0) + Int(first)
                byFirst[slot] = max(byFirst[slot], UInt8(min(scalars.count, 255)))
            }
        }
        var scalars: [UInt32] = []
        for (id, token) in tokens.enumerated() {
            scalars.removeAll(keepingCapacity: true)
            for s in token.unicodeScalars { scalars.append(s.value) }
            add(scalars[...], continuation: false, id: id)
            if scalars.count > 2 && scalars[0] == 35 && scalars[1] == 35 {
                add(scalars[2...], continuation: true, id: id)
            }
        }
        var slotCount = 16
        while slotCount < ids.count * 3 { slotCount <<= 1 }
        slots = .allocate(capacity: slotCount)
        slots.initialize(repeating: -1, count: slotCount)
        mask = slotCount - 1
        let n = ids.count
        entryHash = .allocate(capacity: max(n, 1)); entryOffset = .allocate(capacity: max(n, 1))
        entryLength = .allocate(capacity: max(n, 1)); entryId = .allocate(capacity: max(n, 1))
        keys = .allocate(capacity: max(keyScalars.count, 1))
        for i in 0..<keyScalars.count { keys[i] = keyScalars[i] }
        for e in 0..<n {
            entryHash[e] = hashes[e]; entryOffset[e] = offsets[e]; entryLength[e] = lengths[e]; entryId[e] = ids[e]
        }
        maxInitialLength = maxInitial
        maxContinuationLength = maxContinuation
        // Inserted in id order; a key already present keeps its lower id, and the first such token is the
        // vocabulary's first duplicate (its line and the earlier one's).
        var duplicate: (first: Int32, second: Int32)? = nil
        insertion: for e in 0..<n {
            var slot = Int(truncatingIfNeeded: hashes[e]) & mask
            while slots[slot] >= 0 {
                let other = Int(slots[slot])
                if hashes[other] == hashes[e] && lengths[other] == lengths[e]
                    && keyScalars[Int(offsets[other])..<Int(offsets[other] + lengths[other])]
                        == keyScalars[Int(offsets[e])..<Int(offsets[e] + lengths[e])] {
                    if duplicate == nil { duplicate = (ids[other], ids[e]) }
                    continue insertion
                }
                slot = (slot + 1) & mask
            }
            slots[slot] = Int32(e)
        }
        firstDuplicate = duplicate
    }

    deinit {
        slots.deallocate(); maxLengthByFirst.deallocate(); entryHash.deallocate(); entryOffset.deallocate()
        entryLength.deallocate(); entryId.deallocate(); keys.deallocate()
    }

    /// The longest key (of the kind) that could start with `first`.
    @inline(__always)
    func maxLength(startingWith first: UInt32, continuation: Bool) -> Int {
        if first < 65536 {
            let m = Int(maxLengthByFirst[(continuation ? 65536 : 0) + Int(first)])
            return m < 255 ? m : (continuation ? maxContinuationLength : maxInitialLength)
        }
        return continuation ? maxContinuationLength : maxInitialLength
    }

    /// The polynomial hash of a whole key (what `WordpieceTokenizer.encode`'s prefix hashes give for a slice).
    static func polynomial<S: Sequence<UInt32>>(_ scalars: S) -> UInt64 {
        scalars.reduce(0) { $0 &* base &+ UInt64($1) &+ 1 }
    }

    /// Mixes a polynomial hash (and the continuation flag) into a well-spread slot hash.
    @inline(__always)
    static func finish(_ h: UInt64, continuation: Bool) -> UInt64 {
        var x = h ^ (continuation ? continuationSalt : 0)
        x ^= x >> 31
        x = x &* 0xBF58_476D_1CE4_E5B9
        x ^= x >> 29
        return x
    }

    /// The id of the key `word[start..<end]` (a continuation key when `continuation`), given the
    /// polynomial hash of that slice.
    @inline(__always)
    func lookup(_ word: UnsafePointer<UInt32>, _ start: Int, _ end: Int, polynomial: UInt64,
                continuation: Bool) -> Int32? {
        let h = WordpieceIndex.finish(polynomial, continuation: continuation)
        let length = end - start
        var slot = Int(truncatingIfNeeded: h) & mask
        while true {
            let e = Int(slots[slot])
            if e < 0 { return nil }
            if entryHash[e] == h && Int(entryLength[e]) == length {
                let key = keys + Int(entryOffset[e])
                var i = 0
                while i < length && key[i] == word[start + i] { i += 1 }
                if i == length { return entryId[e] }
            }
            slot = (slot + 1) & mask
        }
    }
}

extension WordpieceIndex {
    /// The id of the word-initial key with exactly the scalars of `token` (no canonical equivalence: `;` and
    /// U+037E GREEK QUESTION MARK are two tokens, as in HF).
    func id(of token: String) -> Int32? {
        let scalars = token.unicodeScalars.map(\.value), h = WordpieceIndex.polynomial(scalars)
        return scalars.withUnsafeBufferPointer { p in
            p.baseAddress.flatMap { lookup($0, 0, p.count, polynomial: h, continuation: false) }
        }
    }
}

/// Greedy longest-match-first WordPiece (Google's `WordpieceTokenizer`, HF's `WordPiece` model).
///
/// A word longer than `maxCharactersPerWord` scalars, or one with any part not in the vocabulary,
/// becomes a single `[UNK]`.
struct WordpieceTokenizer: Sendable {
    let vocabulary: Vocabulary
    let maxCharactersPerWord: Int
    /// `[maxCharactersPerWord + 1]` powers of the hash base.
    let powers: [UInt64]

    init(vocabulary: Vocabulary, maxCharactersPerWord: Int) {
        self.vocabulary = vocabulary
        self.maxCharactersPerWord = max(maxCharactersPerWord, 0)
        var powers = [UInt64](repeating: 1, count: self.maxCharactersPerWord + 2)
        for i in 1..<powers.count { powers[i] = powers[i - 1] &* WordpieceIndex.base }
        self.powers = powers
    }

    /// Appends the ids of one word (`count` scalars at `word`) to `ids`.
    /// - Parameter prefix: scratch of at least `count + 1` hashes.
    @inline(__always)
    func encode(word: UnsafePointer<UInt32>, count: Int, prefix: UnsafeMutablePointer<UInt64>,
                into ids: inout [Int32]) {
        let unknown = vocabulary.unknownId
        if count > maxCharactersPerWord { ids.append(unknown); return }
        let index = vocabulary.index
        prefix[0] = 0
        for i in 0..<count { prefix[i + 1] = prefix[i] &* WordpieceIndex.base &+ UInt64(word[i]) &+ 1 }
        let firstId = ids.count
        var start = 0
        powers.withUnsafeBufferPointer { pow in
            while start < count {
                let continuation = start > 0
                var end = min(count, start + index.maxLength(startingWith: word[start], continuation: continuation))
                var found: Int32 = -1
                while end > start {
                    let h = prefix[end] &- prefix[start] &* pow[end - start]
                    if let id = index.lookup(word, start, end, polynomial: h, continuation: continuation) {
                        found = id
                        break
                    }
                    end -= 1
                }
                if found < 0 {
                    ids.removeSubrange(firstId...)
                    ids.append(unknown)
                    return
                }
                ids.append(found)
                start = end
            }
        }
    }
}
