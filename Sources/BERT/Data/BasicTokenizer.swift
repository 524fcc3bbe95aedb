/// BERT's basic tokenizer: clean the text, isolate CJK ideographs, optionally lower-case and strip
/// accents, split on whitespace and punctuation (Google's `BasicTokenizer`; HF's `BertNormalizer` +
/// `BertPreTokenizer`). The per-scalar rules live in `ScalarTable`.
///
/// It works on UTF-8 bytes and produces words as scalar values in a caller's buffer, so the hot path
/// builds no strings. Invalid UTF-8 decodes to U+FFFD, which cleaning drops.
struct BasicTokenizer: Sendable {
    let lowercase: Bool
    let table: ScalarTable
    /// Tokens matched in the raw text and never split (HF's special tokens): UTF-8 bytes and id.
    let specials: [SpecialToken]

    struct SpecialToken: Sendable {
        let bytes: [UInt8]
        let id: Int32
    }

    init(lowercase: Bool, specials: [SpecialToken] = []) {
        self.lowercase = lowercase
        self.table = lowercase ? ScalarTable.uncased : ScalarTable.cased
        self.specials = specials
    }

    /// The words of `text` as strings (for tests and tools; the tokenizer uses `split`).
    func tokenize(_ text: String) -> [String] {
        var words: [String] = []
        var text = text
        let capacity = 1 << 16
        let word = UnsafeMutablePointer<UInt32>.allocate(capacity: capacity)
        defer { word.deallocate() }
        var astral: [UInt32] = []
        text.withUTF8 { bytes in
            split(bytes, word: word, wordCapacity: capacity, astral: &astral, onWord: { stored, _ in
                var s = String.UnicodeScalarView()
                for i in 0..<stored { s.append(Unicode.Scalar(word[i])!) }
                words.append(String(s))
            }, onSpecial: { id in
                words.append(String(decoding: specials.first { $0.id == id }!.bytes, as: UTF8.self))
            })
        }
        return words
    }

    /// Splits UTF-8 text into words.
    /// - Parameters:
    ///   - bytes: the text.
    ///   - word: a buffer the current word's scalars are written to (`wordCapacity` of them at most).
    ///   - onWord: called with (scalars stored in `word`, the word's full length in scalars) for each word;
    ///     the full length exceeds the stored count only when the word is longer than `wordCapacity`.
    ///   - onSpecial: called with the id of each special token found in the raw text.
    @inline(__always)
    func split(_ bytes: UnsafeBufferPointer<UInt8>, word: UnsafeMutablePointer<UInt32>, wordCapacity: Int,
               astral: inout [UInt32],
               onWord: (Int, Int) -> Void, onSpecial: (Int32) -> Void) {
        guard let base = bytes.baseAddress else { return }
        let n = bytes.count
        let ascii = table.ascii
        let punctFlag = ScalarTable.punctFlag
        var length = 0
        var i = 0

        @inline(__always) func flush() {
            if length > 0 { onWord(min(length, wordCapacity), length); length = 0 }
        }
        @inline(__always) func append(_ v: UInt32) {
            if length < wordCapacity { word[length] = v }
            length += 1
        }
        @inline(__always) func output(_ o: UInt32) {
            if o & punctFlag != 0 {
                flush()
                word[0] = o & ~punctFlag
                onWord(1, 1)
            } else {
                append(o)
            }
        }

        while i < n {
            let b = base[i]
            if b < 0x80 {
                if b == 0x5B && !specials.isEmpty, let special = matchSpecial(base, i, n) {
                    flush()
                    onSpecial(special.id)
                    i += special.bytes.count
                    continue
                }
                i += 1
                let o = ascii[Int(b)]
                if o == ScalarTable.asciiBreak { flush() }
                else if o != ScalarTable.asciiDrop { output(o) }
                continue
            }
            // Decode one scalar; an invalid sequence becomes U+FFFD and consumes one byte.
            var scalar: UInt32 = 0xFFFD
            var size = 1
            if b >= 0xC2 && b <= 0xDF {
                if i + 1 < n, base[i + 1] & 0xC0 == 0x80 {
                    scalar = (UInt32(b & 0x1F) << 6) | UInt32(base[i + 1] & 0x3F); size = 2
                }
            } else if b >= 0xE0 && b <= 0xEF {
                if i + 2 < n, base[i + 1] & 0xC0 == 0x80, base[i + 2] & 0xC0 == 0x80 {
                    let v = (UInt32(b & 0x0F) << 12) | (UInt32(base[i + 1] & 0x3F) << 6) | UInt32(base[i + 2] & 0x3F)
                    if v >= 0x800 && !(0xD800...0xDFFF).contains(v) { scalar = v; size = 3 }
                }
            } else if b >= 0xF0 && b <= 0xF4 {
                if i + 3 < n, base[i + 1] & 0xC0 == 0x80, base[i + 2] & 0xC0 == 0x80, base[i + 3] & 0xC0 == 0x80 {
                    let v = (UInt32(b & 0x07) << 18) | (UInt32(base[i + 1] & 0x3F) << 12)
                        | (UInt32(base[i + 2] & 0x3F) << 6) | UInt32(base[i + 3] & 0x3F)
                    if v >= 0x10000 && v <= 0x10FFFF { scalar = v; size = 4 }
                }
            }
            i += size
            let entry = table.lookup(scalar, astral: &astral)
            if entry.flags & ScalarTable.breakFlag != 0 { flush(); continue }
            let cjk = entry.flags & ScalarTable.cjkFlag != 0
            if cjk { flush() }
            if let outputs = entry.outputs {
                for k in 0..<entry.count { output(outputs[k]) }
            } else {
                for k in 0..<entry.count { output(astral[k]) }
            }
            if cjk { flush() }
        }
        flush()
    }

    @inline(__always)
    private func matchSpecial(_ base: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> SpecialToken? {
        var best: SpecialToken? = nil
        for special in specials where special.bytes.count <= n - i {
            if let b = best, b.bytes.count >= special.bytes.count { continue }
            var k = 0
            let count = special.bytes.count
            special.bytes.withUnsafeBufferPointer { s in
                while k < count && s[k] == base[i + k] { k += 1 }
            }
            if k == count { best = special }
        }
        return best
    }
}
