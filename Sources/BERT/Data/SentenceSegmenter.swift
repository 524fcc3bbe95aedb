/// Rule-based sentence splitting for NVIDIA-formatted and WikiExtractor text (NVIDIA's bertPrep uses NLTK's
/// punkt for this step; these rules cover the common cases without a trained model).
///
/// A sentence ends after `.`, `?` or `!` (repeats allowed, e.g. `?!`, `...`), optionally followed by closing
/// quotes or brackets, when whitespace follows and the next sentence starts with a capital letter, a digit or
/// an opening quote/bracket. A period does not end a sentence after a known abbreviation (`Mr.`, `Dr.`, `St.`,
/// `Jan.`, `etc.`, …), after a single letter (initials: `J. R. R. Tolkien`), or after a dotted acronym of short
/// letter groups (`U.S.`, `e.g.`, `i.e.`, `a.m.`).
public enum SentenceSegmenter {
    /// Lower-cased abbreviations (without their final period) that never end a sentence.
    public static let abbreviations: Set<String> = [
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "u.s", "u.k", "u.n",
        "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
        "no", "nos", "vol", "vols", "fig", "figs", "inc", "ltd", "co", "corp", "mt", "ft", "gen", "col", "lt",
        "sgt", "capt", "cmdr", "adm", "gov", "sen", "rep", "rev", "hon", "pres", "approx", "ca", "cf", "al",
        "ed", "eds", "est", "dept", "univ", "bros", "ave", "blvd", "rd", "pp", "op", "ch", "sec", "viz", "jr",
    ]

    /// Splits `text` into sentences, each trimmed of surrounding whitespace; empty pieces are dropped.
    public static func split(_ text: String) -> [String] {
        var out: [String] = []
        var text = text
        text.withUTF8 { split(bytes: $0, into: &out) }
        return out
    }

    static func split(bytes b: UnsafeBufferPointer<UInt8>, into out: inout [String]) {
        let n = b.count
        var start = 0
        var i = 0
        func emit(_ lo: Int, _ hi: Int) {
            var lo = lo, hi = hi
            while lo < hi && isSpace(b[lo]) { lo += 1 }
            while hi > lo && isSpace(b[hi - 1]) { hi -= 1 }
            if hi > lo { out.append(String(decoding: UnsafeBufferPointer(rebasing: b[lo..<hi]), as: UTF8.self)) }
        }
        while i < n {
            let c = b[i]
            guard c == 0x2E || c == 0x3F || c == 0x21 else { i += 1; continue }   // . ? !
            var j = i + 1
            while j < n && (b[j] == 0x2E || b[j] == 0x3F || b[j] == 0x21) { j += 1 }
            // Closing quotes and brackets: " ' ) ] and ” ’ (E2 80 9D / E2 80 99).
            while j < n {
                if b[j] == 0x22 || b[j] == 0x27 || b[j] == 0x29 || b[j] == 0x5D { j += 1; continue }
                if j + 2 < n && b[j] == 0xE2 && b[j + 1] == 0x80 && (b[j + 2] == 0x9D || b[j + 2] == 0x99) { j += 3; continue }
                break
            }
            guard j < n && isSpace(b[j]) else { i = j; continue }
            var k = j
            while k < n && isSpace(b[k]) { k += 1 }
            if k < n && startsSentence(b, k) && !(c == 0x2E && j == i + 1 && isAbbreviation(b, wordEnd: i, floor: start)) {
                emit(start, j)
                start = k
                i = k
                continue
            }
            i = j
        }
        emit(start, n)
    }

    @inline(__always)
    static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D }

    /// A capital letter, a digit, or an opening quote/bracket at `k`.
    static func startsSentence(_ b: UnsafeBufferPointer<UInt8>, _ k: Int) -> Bool {
        let c = b[k]
        if (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) { return true }
        if c == 0x22 || c == 0x27 || c == 0x28 || c == 0x5B { return true }
        if c < 0x80 { return false }
        // “ ‘ (E2 80 9C / E2 80 98)
        if k + 2 < b.count && c == 0xE2 && b[k + 1] == 0x80 && (b[k + 2] == 0x9C || b[k + 2] == 0x98) { return true }
        // A non-ASCII upper-case letter: decode one scalar.
        var it = UnsafeBufferPointer(rebasing: b[k..<min(b.count, k + 4)]).makeIterator()
        var decoder = UTF8()
        if case .scalarValue(let s) = decoder.decode(&it) { return s.properties.isUppercase }
        return false
    }

    /// Whether the word that ends just before the period at `wordEnd` is an abbreviation.
    static func isAbbreviation(_ b: UnsafeBufferPointer<UInt8>, wordEnd: Int, floor: Int) -> Bool {
        var lo = wordEnd
        while lo > floor && !isSpace(b[lo - 1]) { lo -= 1 }
        while lo < wordEnd && (b[lo] == 0x28 || b[lo] == 0x22 || b[lo] == 0x27 || b[lo] == 0x5B) { lo += 1 }
        let len = wordEnd - lo
        guard len > 0 && len <= 8 else { return false }
        var word = [UInt8](); word.reserveCapacity(len)
        var allLetterGroupsShort = true
        var group = 0
        for p in lo..<wordEnd {
            var c = b[p]
            if c >= 0x41 && c <= 0x5A { c += 0x20 }
            word.append(c)
            if c == 0x2E { if group == 0 || group > 2 { allLetterGroupsShort = false }; group = 0 }
            else if c >= 0x61 && c <= 0x7A { group += 1 }
            else { allLetterGroupsShort = false }
        }
        if group == 0 || group > 2 { allLetterGroupsShort = false }
        // A single letter (an initial).
        if len == 1 && word[0] >= 0x61 && word[0] <= 0x7A { return true }
        // Dotted acronyms of short letter groups: U.S, e.g, a.m, U.S.A
        if allLetterGroupsShort && word.contains(0x2E) { return true }
        return abbreviations.contains(String(decoding: word, as: UTF8.self))
    }
}
