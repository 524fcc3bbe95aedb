import CHDF5
import Foundation
import Testing
@testable import BERT

/// `RunLengthDeflate` against zlib's inflater (the one HDF5's gzip filter uses): every stream must inflate to its input.
@Suite struct RunLengthDeflateTests {
    /// zlib's `uncompress` of `stream`, expecting `count` bytes.
    static func inflate(_ stream: [UInt8], count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: max(count, 1))
        var length = uLong(out.count)
        let status = stream.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { uncompress($0.baseAddress, &length, s.baseAddress, uLong(s.count)) }
        }
        guard status == Z_OK, Int(length) == count else { return nil }
        return Array(out.prefix(count))
    }

    static func compress(_ input: [UInt8], scratch: RunLengthDeflate.Scratch = .init()) -> [UInt8] {
        input.withUnsafeBytes { RunLengthDeflate.compress($0, scratch: scratch, adler32: ChunkCompressor.adler32) }
    }

    /// Inputs that reach every branch: empty, one byte, runs at and around the 3- and 258-byte limits, long runs that
    /// need several matches, a shortest run at each offset of the eight-byte scan, random bytes (stored), skewed bytes whose code needs the 15-bit limit, and chunks laid out
    /// like a shard's int32 token ids and masks.
    static var cases: [(name: String, bytes: [UInt8])] {
        var rng = DataRandom(seed: 21)
        var out: [(String, [UInt8])] = [("empty", []), ("one byte", [7]), ("two equal", [9, 9]), ("three equal", [4, 4, 4])]
        for run in [2, 3, 4, 257, 258, 259, 260, 516, 517, 5000] {
            out.append(("run \(run)", [1] + [UInt8](repeating: 0, count: run) + [2, 2, 2, 3]))
        }
        // A run just long enough (three repeats) at every place within and across eight-byte words.
        for offset in 1..<12 {
            var bytes = (0..<20).map { UInt8($0 * 7 + 1) }
            for k in offset..<(offset + 3) { bytes[k] = bytes[offset - 1] }
            out.append(("three repeats at \(offset)", bytes))
        }
        out.append(("random", (0..<70_000).map { _ in UInt8(rng.int(0, 255)) }))
        // Fibonacci frequencies, shuffled: an unlimited Huffman code for them would be 23 bits deep.
        var skewed: [UInt8] = []
        var f = (1, 1)
        for symbol in 0..<24 {
            skewed += [UInt8](repeating: UInt8(symbol * 10), count: f.0)
            f = (f.1, f.0 + f.1)
        }
        rng.shuffle(&skewed)
        out.append(("skewed", skewed))
        var ids = [UInt8](), mask = [UInt8]()
        for _ in 0..<256 {
            let n = rng.int(20, 128)
            for k in 0..<128 {
                let id = k < n ? UInt32(rng.int(0, 30521)) : 0
                ids += withUnsafeBytes(of: id.littleEndian) { Array($0) }
                mask.append(k < n ? 1 : 0)
            }
        }
        out.append(("token ids", ids))
        out.append(("mask", mask))
        return out
    }

    @Test func everyStreamInflatesToItsInput() throws {
        let scratch = RunLengthDeflate.Scratch()   // shared: a smaller chunk after a larger one reuses the buffers
        for (name, bytes) in Self.cases {
            let stream = Self.compress(bytes, scratch: scratch)
            #expect(Self.inflate(stream, count: bytes.count) == bytes, "\(name): \(bytes.count) bytes → \(stream.count)")
        }
    }

    /// Runs become matches and a shard's chunks shrink as they should; bytes that would not shrink are stored whole
    /// (five bytes of block header per 64 KiB, plus the zlib header and checksum).
    @Test func sizesAreThoseOfRunsAndStoredBlocks() {
        let cases = Dictionary(uniqueKeysWithValues: Self.cases.map { ($0.name, $0.bytes) })
        #expect(Self.compress(cases["run 5000"]!).count < 40)
        #expect(Self.compress(cases["mask"]!).count < 1024)   // 32 KiB of runs of rows' lengths
        let ids = cases["token ids"]!
        #expect(Self.compress(ids).count < ids.count / 2)
        let random = cases["random"]!
        #expect(Self.compress(random).count == 2 + random.count + 2 * 5 + 4)
        #expect(Self.compress([]).count == 2 + 5 + 4)
    }

    /// Code lengths: a complete prefix code (Kraft sum exactly one) within the limit, shortest for the most frequent.
    @Test(arguments: [7, 15])
    func huffmanLengthsAreCompleteAndLimited(limit: Int) {
        var rng = DataRandom(seed: 3)
        // A 7-bit code has room for 128 symbols: the code-length alphabet has 19.
        let symbols = limit == 7 ? 19 : 286
        var frequencies: [[UInt32]] = [[0, 0, 5], [1, 1], (0..<19).map { UInt32(1 << min($0, 30)) }]
        frequencies.append((0..<symbols).map { _ in UInt32(rng.int(0, 3) == 0 ? 0 : rng.int(1, 100_000)) })
        frequencies.append((0..<symbols).map { UInt32(1) << UInt32(min($0 / 9, 31)) })
        for freq in frequencies {
            let lengths = RunLengthDeflate.huffmanLengths(freq, limit: limit)
            let used = lengths.indices.filter { lengths[$0] > 0 }
            #expect(used.allSatisfy { lengths[$0] <= limit })
            #expect(freq.indices.allSatisfy { freq[$0] == 0 || lengths[$0] > 0 })
            let kraft = used.reduce(0.0) { $0 + pow(2.0, -Double(lengths[$1])) }
            #expect(kraft == 1, "\(freq.prefix(8))… → \(lengths.prefix(8))…")
            for a in used { for b in used where freq[a] > freq[b] { #expect(lengths[a] <= lengths[b]) } }
        }
    }
}
