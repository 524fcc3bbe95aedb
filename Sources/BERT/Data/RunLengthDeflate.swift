/// A zlib stream (RFC 1950) holding one deflate block (RFC 1951) of dynamic Huffman codes whose only matches are runs
/// of one byte (distance 1) — the stream zlib's `Z_RLE` strategy makes, built for HDF5 chunks of token ids.
///
/// Why not a general matcher: a shard's `input_ids` are int32 token ids (two bytes of id, two zero bytes) whose
/// repeats LZ77 rarely finds, while the masks and segment ids are runs. libdeflate's level 1 spends most of
/// `bert prepare`'s HDF5 time searching for matches; byte statistics plus runs come within ~10 % of its size at
/// several times its speed. Every inflater reads the result; a chunk that would not shrink is stored.
enum RunLengthDeflate {
    /// Buffers one thread reuses from chunk to chunk.
    final class Scratch {
        /// Per input position at most one token: a literal byte, or 256 + (run length − 3).
        fileprivate var tokens = UnsafeMutablePointer<UInt16>.allocate(capacity: 0)
        fileprivate var capacity = 0

        init() {}
        deinit { tokens.deallocate() }

        fileprivate func reserve(_ n: Int) {
            guard n > capacity else { return }
            tokens.deallocate()
            tokens = .allocate(capacity: n)
            capacity = n
        }
    }

    /// `input` as a zlib stream.
    /// - Parameter adler32: the Adler-32 of a buffer (libdeflate's or zlib's).
    static func compress(_ input: UnsafeRawBufferPointer, scratch: Scratch,
                         adler32: (UnsafeRawBufferPointer) -> UInt32) -> [UInt8] {
        let n = input.count
        scratch.reserve(n)
        let tokens = scratch.tokens
        // Pass 1: runs and literals, with the literal/length histogram.
        var litFreq = [UInt32](repeating: 0, count: 286)
        let (tokenCount, runExtraBits) = litFreq.withUnsafeMutableBufferPointer { freq in
            tokenize(input.baseAddress?.assumingMemoryBound(to: UInt8.self), count: n, into: tokens, histogram: freq.baseAddress!)
        }
        litFreq[256] = 1   // end of block
        let runs = litFreq[257...].reduce(0) { $0 + Int($1) }
        // Distances: every match is distance 1 (code 0); code 1 is a dummy so that the code is complete.
        let distLengths: [UInt8] = [1, 1]
        let litLengths = huffmanLengths(litFreq, limit: 15)
        let header = HeaderCodes(litLengths: litLengths, distLengths: distLengths)

        var bits = 3 + header.bitCount + runExtraBits + runs * Int(distLengths[0])
        for s in 0..<286 { bits += Int(litFreq[s]) * Int(litLengths[s]) }
        let huffmanBytes = (bits + 7) / 8
        let storedBytes = n + 5 * max(1, (n + 65534) / 65535)

        var out = [UInt8](repeating: 0, count: 2 + min(huffmanBytes, storedBytes) + 4 + 8)
        out[0] = 0x78; out[1] = 0x01   // deflate, 32 KiB window, fastest; (0x78 << 8 | 0x01) % 31 == 0
        var length = 2
        out.withUnsafeMutableBytes { raw in
            let dst = raw.baseAddress!
            if huffmanBytes <= storedBytes {
                var w = BitWriter(dst + 2)
                w.put(0b101, 3)   // BFINAL, BTYPE 2 (dynamic Huffman)
                header.write(&w)
                // One table lookup per token: a literal's code, or a run's length code, extra bits and distance code.
                var code = [UInt32](repeating: 0, count: 512), size = [UInt8](repeating: 0, count: 512)
                let litCodes = canonicalCodes(litLengths)
                for b in 0..<256 { code[b] = litCodes[b]; size[b] = litLengths[b] }
                let distCode = canonicalCodes(distLengths)[0]
                for run in 3...258 {
                    let s = Int(Lengths.symbol[run]), e = Int(Lengths.extraBits[run])
                    guard litLengths[s] > 0 else { continue }
                    let l = Int(litLengths[s])
                    code[256 + run - 3] = litCodes[s] | (UInt32(Lengths.extraValue[run]) << l) | (distCode << (l + e))
                    size[256 + run - 3] = UInt8(l + e + Int(distLengths[0]))
                }
                code.withUnsafeBufferPointer { code in
                    size.withUnsafeBufferPointer { size in
                        encode(tokens, count: tokenCount, code: code.baseAddress!, size: size.baseAddress!, into: &w)
                    }
                }
                w.put(UInt64(litCodes[256]), Int(litLengths[256]))
                length += w.finish()
            } else {
                var p = 2, left = n
                let src = input.baseAddress
                repeat {
                    let k = min(left, 65535)
                    dst.storeBytes(of: left == k ? 1 : 0, toByteOffset: p, as: UInt8.self)   // BFINAL, BTYPE 0
                    dst.storeBytes(of: UInt16(k).littleEndian, toByteOffset: p + 1, as: UInt16.self)
                    dst.storeBytes(of: (~UInt16(k)).littleEndian, toByteOffset: p + 3, as: UInt16.self)
                    if k > 0, let src { (dst + p + 5).copyMemory(from: src + (n - left), byteCount: k) }
                    p += 5 + k
                    left -= k
                } while left > 0
                length = p
            }
            dst.storeBytes(of: adler32(input).bigEndian, toByteOffset: length, as: UInt32.self)
        }
        out.removeLast(out.count - length - 4)
        return out
    }

    /// Splits `count` bytes into literals and runs (a byte equal to the one before it starting at least three such):
    /// tokens into `tokens`, their literal/length symbols counted in `histogram` [286].
    /// - Returns: the tokens and the runs' extra bits in all.
    private static func tokenize(_ src: UnsafePointer<UInt8>?, count n: Int, into tokens: UnsafeMutablePointer<UInt16>,
                                 histogram: UnsafeMutablePointer<UInt32>) -> (tokens: Int, extraBits: Int) {
        guard let src, n > 0 else { return (0, 0) }
        // Literals counted in four tables by position: one table would make every repeat of a byte wait for the
        // previous count's store.
        return withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 4 * 256) { lit in
            let lit = lit.baseAddress!
            lit.initialize(repeating: 0, count: 4 * 256)
            var t = 0, extraBits = 0, i = 0
            while i < n {
                // Eight bytes at once: where no byte of the first six starts a run of three (it and the next two
                // equal to the byte before it), those six are literals. Token ids' bytes are nearly all literals.
                if i > 0 && i &+ 8 <= n {
                    // Byte k of x (from the low end) is zero when src[i + k] equals the byte before it.
                    let x = UInt64(littleEndian: UnsafeRawPointer(src + i).loadUnaligned(as: UInt64.self))
                        ^ UInt64(littleEndian: UnsafeRawPointer(src + (i &- 1)).loadUnaligned(as: UInt64.self))
                    // The top bit of each zero byte of x (exact: no carries between bytes).
                    let same = ~(((x & 0x7F7F_7F7F_7F7F_7F7F) &+ 0x7F7F_7F7F_7F7F_7F7F) | x) & 0x8080_8080_8080_8080
                    if same & (same &>> 8) & (same &>> 16) & 0x0000_8080_8080_8080 == 0 {
                        for k in 0..<6 {
                            let b = src[i &+ k]
                            tokens[t &+ k] = UInt16(b)
                            lit[((t &+ k) & 3) << 8 | Int(b)] &+= 1
                        }
                        t &+= 6
                        i &+= 6
                        continue
                    }
                }
                let b = src[i]
                if i > 0 && src[i &- 1] == b {
                    let run = runLength(of: b, at: src + i, limit: min(258, n &- i))
                    if run >= 3 {
                        tokens[t] = UInt16(truncatingIfNeeded: 253 &+ run)
                        histogram[Int(Lengths.symbol[run])] &+= 1
                        extraBits &+= Int(Lengths.extraBits[run])
                        t &+= 1
                        i &+= run
                        continue
                    }
                }
                tokens[t] = UInt16(b)
                lit[(t & 3) << 8 | Int(b)] &+= 1
                t &+= 1
                i &+= 1
            }
            for b in 0..<256 { histogram[b] &+= lit[b] &+ lit[256 + b] &+ lit[512 + b] &+ lit[768 + b] }
            return (t, extraBits)
        }
    }

    /// Writes each token's bits: `code[token]`, `size[token]` of them.
    private static func encode(_ tokens: UnsafePointer<UInt16>, count: Int, code: UnsafePointer<UInt32>,
                               size: UnsafePointer<UInt8>, into writer: inout BitWriter) {
        var w = writer   // a local copy stays in registers
        // Two tokens per store (at most 2 × 21 bits): half the dependent shifts and stores.
        var t = 0
        while t &+ 1 < count {
            let a = Int(tokens[t]), b = Int(tokens[t &+ 1])
            let sizeA = UInt64(size[a])
            w.put(UInt64(code[a]) | UInt64(code[b]) &<< sizeA, Int(sizeA) &+ Int(size[b]))
            t &+= 2
        }
        if t < count { w.put(UInt64(code[Int(tokens[t])]), Int(size[Int(tokens[t])])) }
        writer = w
    }

    /// How many bytes from `p` (at most `limit`, at least 1 with `p[0] == b`) equal `b`, eight at a time.
    @inline(__always)
    private static func runLength(of b: UInt8, at p: UnsafePointer<UInt8>, limit: Int) -> Int {
        let pattern = UInt64(b) &* 0x0101_0101_0101_0101
        var run = 1
        while run + 8 <= limit {
            let x = UnsafeRawPointer(p + run).loadUnaligned(as: UInt64.self) ^ pattern
            if x != 0 { return run + (UInt64(littleEndian: x).trailingZeroBitCount >> 3) }
            run += 8
        }
        while run < limit && p[run] == b { run += 1 }
        return run
    }

    /// The length symbols of RFC 1951 §3.2.5, per match length 3…258.
    private enum Lengths {
        static let base: [Int] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
                                  35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
        static let extra: [Int] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
        /// Indexed by length (0–2 unused).
        static let symbol: [UInt16] = table { 257 + $0 }
        static let extraBits: [UInt8] = table { extra[$0] }
        static let extraValue: [UInt16] = table(by: { $1 - base[$0] })

        private static func table<T: BinaryInteger>(_ value: (Int) -> Int) -> [T] { table(by: { code, _ in value(code) }) }
        private static func table<T: BinaryInteger>(by value: (_ code: Int, _ length: Int) -> Int) -> [T] {
            (0...258).map { length in
                guard length >= 3 else { return 0 }
                // 258 has its own symbol (285), not 284 with all extra bits set.
                let code = length == 258 ? 28 : base.lastIndex { $0 <= length }!
                return T(value(code, length))
            }
        }
    }

    /// Huffman code lengths for `freq`, none longer than `limit`; symbols of frequency 0 get 0. A lone symbol gets
    /// a partner, so that every code is complete (zlib refuses some incomplete ones).
    static func huffmanLengths(_ freq: [UInt32], limit: Int) -> [UInt8] {
        var lengths = [UInt8](repeating: 0, count: freq.count)
        // Symbols by increasing frequency (then symbol), sorted as plain integers: frequency above, symbol below.
        var keys: [UInt64] = []
        keys.reserveCapacity(freq.count)
        for (s, f) in freq.enumerated() where f > 0 { keys.append(UInt64(f) << 16 | UInt64(s)) }
        keys.sort()
        let used = keys.map { Int($0 & 0xFFFF) }
        let m = used.count
        guard m > 1 else {
            let s = used.first ?? 0
            lengths[s] = 1
            lengths[s == 0 ? 1 : 0] = 1
            return lengths
        }
        // Two-queue Huffman: leaves in increasing weight, then internal nodes in the order made (also increasing).
        var weight = keys.map { $0 >> 16 }
        var parent = [Int](repeating: 0, count: 2 * m - 1)
        var nextLeaf = 0, nextNode = m
        func lightest() -> Int {
            if nextLeaf < m && (nextNode >= weight.count || weight[nextLeaf] <= weight[nextNode]) {
                nextLeaf += 1
                return nextLeaf - 1
            }
            nextNode += 1
            return nextNode - 1
        }
        while weight.count < 2 * m - 1 {
            let a = lightest(), b = lightest()
            parent[a] = weight.count; parent[b] = weight.count
            weight.append(weight[a] + weight[b])
        }
        var depth = [Int](repeating: 0, count: 2 * m - 1)
        for k in stride(from: 2 * m - 3, through: 0, by: -1) { depth[k] = depth[parent[k]] + 1 }
        // Leaves per length, the longest folded into `limit`, then the Kraft sum brought back to one: each step takes
        // a leaf off the deepest level and splits one at a shallower level into two.
        var count = [Int](repeating: 0, count: max(limit, depth[..<m].max()!) + 1)
        for leaf in 0..<m { count[depth[leaf]] += 1 }
        if count.count > limit + 1 {
            count[limit] += count[(limit + 1)...].reduce(0, +)
            count.removeLast(count.count - limit - 1)
            var kraft = (1...limit).reduce(0) { $0 + (count[$1] << (limit - $1)) }
            while kraft > 1 << limit {
                count[limit] -= 1
                if let l = (1..<limit).reversed().first(where: { count[$0] > 0 }) {
                    count[l] -= 1
                    count[l + 1] += 2
                }
                kraft -= 1
            }
        }
        // The least frequent symbols take the longest codes.
        var leaf = 0
        for l in stride(from: limit, through: 1, by: -1) {
            for _ in 0..<count[l] { lengths[used[leaf]] = UInt8(l); leaf += 1 }
        }
        return lengths
    }

    /// Canonical codes for `lengths` (RFC 1951 §3.2.2), bit-reversed for LSB-first output.
    static func canonicalCodes(_ lengths: [UInt8]) -> [UInt32] {
        var perLength = [UInt32](repeating: 0, count: 16)
        for l in lengths where l > 0 { perLength[Int(l)] += 1 }
        var next = [UInt32](repeating: 0, count: 16)
        var code: UInt32 = 0
        for l in 1..<16 {
            code = (code + perLength[l - 1]) << 1
            next[l] = code
        }
        return lengths.map { l in
            guard l > 0 else { return 0 }
            let c = next[Int(l)]
            next[Int(l)] += 1
            // Reverse all 32 bits (halves, bytes, nibbles, pairs, bits swapped), then keep the top `l`.
            var r = c << 16 | c >> 16
            r = (r & 0x00FF_00FF) << 8 | (r >> 8) & 0x00FF_00FF
            r = (r & 0x0F0F_0F0F) << 4 | (r >> 4) & 0x0F0F_0F0F
            r = (r & 0x3333_3333) << 2 | (r >> 2) & 0x3333_3333
            r = (r & 0x5555_5555) << 1 | (r >> 1) & 0x5555_5555
            return r >> (32 - UInt32(l))
        }
    }

    /// A dynamic block's header after BTYPE: HLIT, HDIST, HCLEN, the code-length code and the run-length coded
    /// code lengths (RFC 1951 §3.2.7).
    private struct HeaderCodes {
        static let order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
        let hlit: Int, hdist: Int, hclen: Int
        /// Code-length symbols with their extra bits.
        var symbols: [(symbol: Int, extra: UInt32, extraBits: Int)] = []
        let clLengths: [UInt8]
        let clCodes: [UInt32]

        init(litLengths: [UInt8], distLengths: [UInt8]) {
            hlit = max(257, (litLengths.lastIndex { $0 > 0 } ?? 0) + 1)
            hdist = max(1, (distLengths.lastIndex { $0 > 0 } ?? 0) + 1)
            let all = Array(litLengths[..<hlit]) + Array(distLengths[..<hdist])
            var i = 0
            while i < all.count {
                let v = all[i]
                var r = 1
                while i + r < all.count && all[i + r] == v { r += 1 }
                i += r
                if v == 0 {
                    while r >= 11 { let k = min(r, 138); symbols.append((18, UInt32(k - 11), 7)); r -= k }
                    if r >= 3 { symbols.append((17, UInt32(r - 3), 3)); r = 0 }
                } else {
                    symbols.append((Int(v), 0, 0)); r -= 1
                    while r >= 3 { let k = min(r, 6); symbols.append((16, UInt32(k - 3), 2)); r -= k }
                }
                for _ in 0..<r { symbols.append((Int(v), 0, 0)) }
            }
            var freq = [UInt32](repeating: 0, count: 19)
            for s in symbols { freq[s.symbol] += 1 }
            let clLengths = RunLengthDeflate.huffmanLengths(freq, limit: 7)
            self.clLengths = clLengths
            clCodes = RunLengthDeflate.canonicalCodes(clLengths)
            hclen = max(4, (HeaderCodes.order.lastIndex { clLengths[$0] > 0 } ?? 0) + 1)
        }

        /// Bits of the header after BFINAL and BTYPE.
        var bitCount: Int {
            14 + 3 * hclen + symbols.reduce(0) { $0 + Int(clLengths[$1.symbol]) + $1.extraBits }
        }

        func write(_ w: inout BitWriter) {
            w.put(UInt64(hlit - 257), 5)
            w.put(UInt64(hdist - 1), 5)
            w.put(UInt64(hclen - 4), 4)
            for k in 0..<hclen { w.put(UInt64(clLengths[HeaderCodes.order[k]]), 3) }
            for s in symbols {
                w.put(UInt64(clCodes[s.symbol]), Int(clLengths[s.symbol]))
                if s.extraBits > 0 { w.put(UInt64(s.extra), s.extraBits) }
            }
        }
    }

    /// LSB-first bits into memory sized beforehand (plus 8 bytes of slack: every `put` stores a whole word).
    private struct BitWriter {
        let start: UnsafeMutableRawPointer
        var p: UnsafeMutableRawPointer
        var acc: UInt64 = 0
        /// Bits in `acc` not yet past `p`: fewer than 8 between calls.
        var filled = 0

        init(_ start: UnsafeMutableRawPointer) { self.start = start; p = start }

        /// Appends the low `count` (≤ 56) bits of `bits`. Branch-free: stores the word, then moves past the whole bytes.
        @inline(__always)
        mutating func put(_ bits: UInt64, _ count: Int) {
            acc |= bits &<< UInt64(filled)
            filled &+= count
            p.storeBytes(of: acc.littleEndian, as: UInt64.self)
            let bytes = filled &>> 3
            p += bytes
            acc &>>= UInt64(bytes &<< 3)
            filled &= 7
        }

        /// Returns the bytes written, the last partial one included.
        mutating func finish() -> Int {
            (p - start) + (filled + 7) / 8
        }
    }
}
