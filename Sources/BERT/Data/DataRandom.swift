/// The seeded generator of the data pipeline: xoshiro256** seeded through SplitMix64 from a seed and a list of
/// stream numbers (shard index, epoch, …).
///
/// Every independent piece of work (one shard's instances, one epoch's shard order, one shard's row order)
/// gets its own stream, so results depend only on the seed and the stream numbers — never on how many
/// threads or ranks run, nor in which order they finish.
public struct DataRandom: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// - Parameters:
    ///   - seed: the user's seed (`--random-seed`).
    ///   - streams: numbers that name an independent stream, e.g. `[shardIndex]` or `[epoch, shard]`.
    public init(seed: UInt64, streams: [UInt64] = []) {
        var x = seed &+ 0x9E37_79B9_7F4A_7C15
        for s in streams { x = DataRandom.splitMix(&x) ^ (s &* 0xD1B5_4A32_D192_ED03) }
        s0 = DataRandom.splitMix(&x); s1 = DataRandom.splitMix(&x)
        s2 = DataRandom.splitMix(&x); s3 = DataRandom.splitMix(&x)
        if s0 | s1 | s2 | s3 == 0 { s0 = 1 }
    }

    private static func splitMix(_ x: inout UInt64) -> UInt64 {
        x = x &+ 0x9E37_79B9_7F4A_7C15
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The next 64 random bits.
    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// A uniform Double in [0, 1) — Python's `random.random()`.
    @inline(__always)
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// A uniform integer in `a...b`, both ends included — Python's `random.randint(a, b)`.
    @inline(__always)
    public mutating func int(_ a: Int, _ b: Int) -> Int {
        precondition(a <= b, "DataRandom.int: empty range \(a)...\(b)")
        return a + Int(next(upperBound: UInt64(b - a) + 1))
    }
}

extension DataRandom {
    /// Fisher–Yates shuffle in place, written out here so the order never depends on the standard library's
    /// choice of algorithm.
    public mutating func shuffle<T>(_ a: inout [T]) {
        var i = a.count - 1
        while i > 0 {
            let j = Int(next(upperBound: UInt64(i) + 1))
            if i != j { a.swapAt(i, j) }
            i -= 1
        }
    }

    /// A random permutation of `0..<n`.
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        shuffle(&p)
        return p
    }
}
