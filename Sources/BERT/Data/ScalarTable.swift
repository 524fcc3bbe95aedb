import Foundation
import Synchronization

/// What BERT's normalizer and pre-tokenizer do with one Unicode scalar, precomputed per mode.
///
/// This mirrors Hugging Face `tokenizers`' `BertNormalizer` + `BertPreTokenizer` (which in turn follow
/// Google's `tokenization.py`), applied one code point at a time:
/// 1. clean text: U+0000, U+FFFD and "control" characters are dropped; `\t \n \r` and `White_Space`
///    characters become a word break;
/// 2. CJK ideographs (the code-point ranges of `_is_chinese_char`, with HF's ranges) stand alone as words;
/// 3. when lower-casing: NFD, drop non-spacing marks (Mn), then lower-case each code point (full mapping,
///    like Rust `char::to_lowercase` / Python `str.lower()` per code point; no final-sigma context);
/// 4. punctuation (ASCII 33–47, 58–64, 91–96, 123–126 and Unicode P*) stands alone as a word.
///
/// HF takes the categories for "control" (Cc, Cf, Co), Mn and P* from the `unicode_categories` crate,
/// whose tables are Unicode 8.0: characters assigned later never count as control, mark or punctuation.
/// We reproduce that with each scalar's `age`. Whitespace and lower-casing come from Rust's standard
/// library, which follows current Unicode, as Swift does.
///
/// An entry packs: bit 31 = CJK (the outputs form a word of their own), bit 30 = word break,
/// bits 27–29 = output count, bits 0–26 = offset of the outputs in `pool`. An output is a scalar value,
/// with bit 31 set when it is punctuation. A dropped scalar has no outputs and no flags.
final class ScalarTable: @unchecked Sendable {
    static let cjkFlag: UInt32 = 1 << 31
    static let breakFlag: UInt32 = 1 << 30
    static let punctFlag: UInt32 = 1 << 31

    /// The Unicode version of HF's category tables (see above).
    static let categoryVersion = (major: 8, minor: 0)

    static let cased = ScalarTable(lowercase: false)
    static let uncased = ScalarTable(lowercase: true)

    let lowercase: Bool
    /// `[65536]` entries for the Basic Multilingual Plane, filled a block of `blockSize` at a time.
    private let bmp: UnsafeMutablePointer<UInt32>
    /// Outputs referenced by `bmp`: room for `maxOutputs` per scalar, so a block's outputs never move.
    private let pool: UnsafeMutablePointer<UInt32>
    /// Outputs in `pool` so far (under `building`).
    private var poolCount = 0
    /// Bit `b % 64` of word `b / 64` is set once block `b` of `bmp` is filled (released after its entries and
    /// outputs are written).
    private let ready = InlineArray<4, Atomic<UInt64>> { _ in Atomic(0) }
    /// Serializes building blocks.
    private let building = Mutex(())
    /// `[128]` for ASCII: 0xFFFF_FFFF drop, 0xFFFF_FFFE break, else the output (with `punctFlag`).
    let ascii: UnsafeMutablePointer<UInt32>

    static let asciiDrop: UInt32 = 0xFFFF_FFFF
    static let asciiBreak: UInt32 = 0xFFFF_FFFE
    /// 256 blocks of the plane, one bit of `ready` each.
    static let blockSize = 256
    /// The most outputs one scalar has (an entry's count field is 3 bits).
    static let maxOutputs = 7

    init(lowercase: Bool) {
        self.lowercase = lowercase
        bmp = .allocate(capacity: 65536)
        // Untouched pages of the pool are never faulted in: English text fills two or three blocks of it.
        pool = .allocate(capacity: 65536 * ScalarTable.maxOutputs)
        ascii = .allocate(capacity: 128)
        for b in 0..<128 {
            let c = ScalarTable.classify(UInt32(b), lowercase: lowercase)
            if c.isBreak { ascii[b] = ScalarTable.asciiBreak }
            else if c.outputs.isEmpty { ascii[b] = ScalarTable.asciiDrop }
            else { precondition(c.outputs.count == 1); ascii[b] = c.outputs[0] }
        }
    }

    deinit {
        bmp.deallocate(); pool.deallocate(); ascii.deallocate()
    }

    /// The entry for any scalar (the BMP from the table, the rest computed).
    @inline(__always)
    func lookup(_ scalar: UInt32, astral: inout [UInt32]) -> (flags: UInt32, outputs: UnsafePointer<UInt32>?, count: Int) {
        if scalar < 65536 {
            let block = Int(scalar) / ScalarTable.blockSize
            if ready[block >> 6].load(ordering: .acquiring) & (1 << UInt64(block & 63)) == 0 { fill(block: block) }
            let e = bmp[Int(scalar)]
            return (e & (ScalarTable.cjkFlag | ScalarTable.breakFlag), UnsafePointer(pool + Int(e & 0x07FF_FFFF)),
                    Int((e >> 27) & 7))
        }
        let c = ScalarTable.classify(scalar, lowercase: lowercase)
        astral.removeAll(keepingCapacity: true)
        astral.append(contentsOf: c.outputs)
        var flags: UInt32 = 0
        if c.cjk { flags |= ScalarTable.cjkFlag }
        if c.isBreak { flags |= ScalarTable.breakFlag }
        return (flags, nil, c.outputs.count)
    }

    /// Classifies the scalars of one block of the plane, the first time any of them is looked up. Classifying
    /// all 65536 (each with a canonical decomposition through Foundation) took ≈ 0.1 s of CPU at every start-up,
    /// most of it for scripts a given corpus never shows.
    @inline(never)
    private func fill(block: Int) {
        building.withLock { _ in
            guard ready[block >> 6].load(ordering: .relaxed) & (1 << UInt64(block & 63)) == 0 else { return }
            for cp in (block * ScalarTable.blockSize)..<((block + 1) * ScalarTable.blockSize) {
                let c = ScalarTable.classify(UInt32(cp), lowercase: lowercase)
                precondition(c.outputs.count <= ScalarTable.maxOutputs)
                var e = UInt32(poolCount) | (UInt32(c.outputs.count) << 27)
                if c.cjk { e |= ScalarTable.cjkFlag }
                if c.isBreak { e |= ScalarTable.breakFlag }
                bmp[cp] = e
                for o in c.outputs { pool[poolCount] = o; poolCount += 1 }
            }
            ready[block >> 6].bitwiseOr(1 << UInt64(block & 63), ordering: .releasing)
        }
    }

    // MARK: - The rules, one scalar at a time (the reference the tables are built from)

    struct Classification {
        var cjk = false
        var isBreak = false
        /// Scalars the input becomes, each with `punctFlag` when it is punctuation.
        var outputs: [UInt32] = []
    }

    static func classify(_ value: UInt32, lowercase: Bool) -> Classification {
        var result = Classification()
        guard let scalar = Unicode.Scalar(value) else { return result }      // a surrogate: dropped
        if value == 0 || value == 0xFFFD || isControl(scalar) { return result }
        if isWhitespace(scalar) { result.isBreak = true; return result }
        result.cjk = isChineseChar(value)
        var mapped: [Unicode.Scalar] = [scalar]
        if lowercase {
            // HF's order: strip accents (NFD, drop Mn), then lower-case.
            mapped = canonicalDecomposition(scalar).filter { !isNonspacingMark($0) }
            mapped = mapped.flatMap { lowercased($0) }
        }
        result.outputs = mapped.map { isPunctuation($0) ? ($0.value | punctFlag) : $0.value }
        return result
    }

    /// Assigned by `categoryVersion` (HF's category tables).
    static func isLegacyAssigned(_ s: Unicode.Scalar) -> Bool {
        guard let age = s.properties.age else { return false }
        return age.major < categoryVersion.major
            || (age.major == categoryVersion.major && age.minor <= categoryVersion.minor)
    }

    /// Characters whose general category changed after Unicode 8.0, with their 8.0 category
    /// (found by `bench/unicode_sweep.py`, which runs every code point through both tokenizers).
    static let legacyCategories: [UInt32: Unicode.GeneralCategory] = [
        0x166D: .otherPunctuation,   // CANADIAN SYLLABICS CHI SIGN, So since 12.0
        0x111C9: .otherPunctuation,  // SHARADA SANDHI MARK, Mn since 13.0
        0x1734: .nonspacingMark,     // HANUNOO SIGN PAMUDPOD, Mc since 14.0
        0x1171E: .nonspacingMark,    // AHOM CONSONANT SIGN MEDIAL RA, Mc since 14.0
        0x1885: .otherLetter,        // MONGOLIAN LETTER ALI GALI BALUDA, Mn since 9.0
        0x1886: .otherLetter,        // MONGOLIAN LETTER ALI GALI THREE BALUDA, Mn since 9.0
        0xA9BD: .spacingMark,        // JAVANESE CONSONANT SIGN KERET, Mn since 12.0
    ]

    /// The general category as HF's tables (Unicode 8.0) have it.
    static func legacyCategory(_ s: Unicode.Scalar) -> Unicode.GeneralCategory {
        legacyCategories[s.value] ?? s.properties.generalCategory
    }

    /// `\t \n \r` are whitespace, not control; otherwise Cc, Cf and Co (as of Unicode 8.0).
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch legacyCategory(s) {
        case .control: return true
        case .format, .privateUse: return isLegacyAssigned(s)
        default: return false
        }
    }

    /// `\t \n \r` and the Unicode `White_Space` property (Rust `char::is_whitespace`).
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" || s == " " { return true }
        return s.properties.isWhitespace
    }

    /// ASCII punctuation (33–47, 58–64, 91–96, 123–126) or Unicode P* (as of Unicode 8.0).
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) {
            return true
        }
        if v < 128 { return false }
        switch legacyCategory(s) {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return isLegacyAssigned(s)
        default:
            return false
        }
    }

    static func isNonspacingMark(_ s: Unicode.Scalar) -> Bool {
        legacyCategory(s) == .nonspacingMark && isLegacyAssigned(s)
    }

    /// Google's `_is_chinese_char` ranges as HF `tokenizers` has them (its fifth range starts at U+2B920,
    /// not U+2B820 as in Google's code; we follow HF, the reference we are tested against).
    static func isChineseChar(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v)
            || (0x2B920...0x2CEAF).contains(v) || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }

    /// NFD of one scalar (full canonical decomposition, Hangul included).
    static func canonicalDecomposition(_ s: Unicode.Scalar) -> [Unicode.Scalar] {
        if s.value < 0xC0 || undecomposable.contains(where: { $0.contains(s.value) }) { return [s] }
        if hangulSyllables.contains(s.value) {
            // Unicode §3.12: a syllable is leading consonant, vowel and (unless index % 28 is 0) trailing consonant.
            let index = s.value - hangulSyllables.lowerBound
            let jamo = [0x1100 + index / 588, 0x1161 + index % 588 / 28] + (index % 28 == 0 ? [] : [0x11A7 + index % 28])
            return jamo.map { Unicode.Scalar($0)! }
        }
        let d = String(Character(s)).decomposedStringWithCanonicalMapping
        return Array(d.unicodeScalars)
    }

    /// Blocks of the BMP no canonical decomposition starts from (CJK Extension A, CJK Unified Ideographs, Yi, private
    /// use): their NFD is themselves, without asking Foundation — which is most of building a table.
    static let undecomposable: [ClosedRange<UInt32>] = [0x3400...0x4DBF, 0x4E00...0x9FFF, 0xA000...0xA4CF, 0xE000...0xF8FF]
    static let hangulSyllables: ClosedRange<UInt32> = 0xAC00...0xD7A3

    /// Full lower-case mapping of one scalar (no context).
    static func lowercased(_ s: Unicode.Scalar) -> [Unicode.Scalar] {
        if s.value < 128 {
            return (65...90).contains(s.value) ? [Unicode.Scalar(s.value + 32)!] : [s]
        }
        if !s.properties.changesWhenLowercased { return [s] }
        return Array(s.properties.lowercaseMapping.unicodeScalars)
    }
}
