/// Counts words given as scalar sequences, without building strings: an open-addressing hash map whose
/// keys live in one flat scalar pool. Used by the vocabulary trainer, one counter per thread.
final class WordCounter {
    private(set) var slots: [Int32] = Array(repeating: -1, count: 1 << 12)
    private var mask = (1 << 12) - 1
    /// Key scalars of all entries, back to back.
    private(set) var pool: [UInt32] = []
    private(set) var offsets: [Int] = []
    private(set) var lengths: [Int32] = []
    private(set) var hashes: [UInt64] = []
    private(set) var counts: [Int] = []
    /// Words added, with repetition.
    private(set) var total = 0

    var uniqueCount: Int { counts.count }

    @inline(__always)
    static func hash(_ word: UnsafePointer<UInt32>, _ count: Int) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for i in 0..<count { h = (h ^ UInt64(word[i])) &* 0x100_0000_01B3 }
        h ^= h >> 29
        return h &* 0xBF58_476D_1CE4_E5B9
    }

    /// Adds `count` occurrences of the word `word[0..<length]`.
    func add(_ word: UnsafePointer<UInt32>, _ length: Int, count: Int = 1) {
        add(word, length, hash: WordCounter.hash(word, length), count: count)
    }

    func add(_ word: UnsafePointer<UInt32>, _ length: Int, hash: UInt64, count: Int) {
        total += count
        var slot = Int(truncatingIfNeeded: hash >> 7) & mask
        while true {
            let e = Int(slots[slot])
            if e < 0 { break }
            if hashes[e] == hash && Int(lengths[e]) == length {
                let offset = offsets[e]
                var same = true
                pool.withUnsafeBufferPointer { p in
                    for i in 0..<length where p[offset + i] != word[i] { same = false; break }
                }
                if same { counts[e] += count; return }
            }
            slot = (slot + 1) & mask
        }
        slots[slot] = Int32(counts.count)
        offsets.append(pool.count)
        pool.append(contentsOf: UnsafeBufferPointer(start: word, count: length))
        lengths.append(Int32(length))
        hashes.append(hash)
        counts.append(count)
        if counts.count * 2 > slots.count { grow() }
    }

    private func grow() {
        let size = slots.count * 2
        slots = Array(repeating: -1, count: size)
        mask = size - 1
        for e in 0..<counts.count {
            var slot = Int(truncatingIfNeeded: hashes[e] >> 7) & mask
            while slots[slot] >= 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(e)
        }
    }

    /// Adds every word of `other` with its count.
    func merge(_ other: WordCounter) {
        other.pool.withUnsafeBufferPointer { p in
            for e in 0..<other.counts.count {
                add(p.baseAddress! + other.offsets[e], Int(other.lengths[e]), hash: other.hashes[e],
                    count: other.counts[e])
            }
        }
    }

    /// Calls `body` with each word's scalars and count, in insertion order.
    func forEach(_ body: (UnsafeBufferPointer<UInt32>, Int) -> Void) {
        pool.withUnsafeBufferPointer { p in
            for e in 0..<counts.count {
                body(UnsafeBufferPointer(rebasing: p[offsets[e]..<(offsets[e] + Int(lengths[e]))]), counts[e])
            }
        }
    }
}
