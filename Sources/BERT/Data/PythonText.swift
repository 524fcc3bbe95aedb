/// Python 3's string rules where the SQuAD and GLUE references depend on them.
///
/// Python strings are sequences of code points and compare code point by code point; Swift's `String`
/// works on grapheme clusters and compares by canonical equivalence ("e\u{301}" == "é"). Everything that
/// must give the reference's answer therefore works on `[Unicode.Scalar]` with the rules below.
enum PythonText {
    /// `str.isspace()` (what `str.split()` and `str.strip()` split on): Unicode White_Space plus the
    /// information separators U+001C–U+001F, which Python also counts.
    @inline(__always)
    static func isWhitespace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// `str.split()` with no arguments: runs of whitespace separate, none are empty.
    static func split(_ text: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for c in text {
            if isWhitespace(c) {
                if !current.isEmpty { words.append(current); current.removeAll(keepingCapacity: true) }
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// `" ".join(text.split())`.
    static func collapseWhitespace(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        joined(split(text), separator: " ")
    }

    /// `separator.join(parts)`.
    static func joined(_ parts: [[Unicode.Scalar]], separator: Unicode.Scalar) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        for (i, part) in parts.enumerated() {
            if i > 0 { out.append(separator) }
            out.append(contentsOf: part)
        }
        return out
    }

    /// `str.strip()`.
    static func strip(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard let first = text.firstIndex(where: { !isWhitespace($0) }) else { return [] }
        let last = text.lastIndex(where: { !isWhitespace($0) })!
        return Array(text[first...last])
    }

    /// `str.lower()`: the full lower-case mapping of each code point, with capital sigma becoming final
    /// sigma (ς) at the end of a word (Unicode's Final_Sigma context, as CPython applies it).
    static func lowercased(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        for (i, c) in text.enumerated() {
            if c.value < 0x80 {
                out.append(c.value >= 0x41 && c.value <= 0x5A ? Unicode.Scalar(c.value + 32)! : c)
            } else if c.value == 0x3A3 {
                out.append(isFinalSigma(text, at: i) ? "\u{3C2}" : "\u{3C3}")
            } else {
                out.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return out
    }

    /// `\p{cased} \p{case-ignorable}* Σ !(\p{case-ignorable}* \p{cased})`.
    private static func isFinalSigma(_ text: [Unicode.Scalar], at i: Int) -> Bool {
        var j = i - 1
        while j >= 0 && text[j].properties.isCaseIgnorable { j -= 1 }
        guard j >= 0 && text[j].properties.isCased else { return false }
        j = i + 1
        while j < text.count && text[j].properties.isCaseIgnorable { j += 1 }
        return j == text.count || !text[j].properties.isCased
    }

    /// A word character of Python's `re` for `str` patterns (`\w`, and so `\b`): letters (Lu Ll Lt Lm Lo),
    /// anything with a numeric value, and `_`.
    @inline(__always)
    static func isWordCharacter(_ c: Unicode.Scalar) -> Bool {
        if c.value < 0x80 {
            let v = c.value
            return (v >= 0x30 && v <= 0x39) || (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A) || v == 0x5F
        }
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return c.properties.numericType != nil
        }
    }

    /// `string.punctuation`: the 32 ASCII punctuation characters.
    @inline(__always)
    static func isASCIIPunctuation(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x21...0x2F, 0x3A...0x40, 0x5B...0x60, 0x7B...0x7E: return true
        default: return false
        }
    }

    /// `s.replace(old, new)`: every non-overlapping occurrence, left to right.
    static func replace(_ s: [Unicode.Scalar], _ old: [Unicode.Scalar], with new: [Unicode.Scalar]) -> [Unicode.Scalar] {
        precondition(!old.isEmpty)
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count)
        var i = 0
        while i < s.count {
            if i + old.count <= s.count && s[i..<(i + old.count)].elementsEqual(old) {
                out.append(contentsOf: new)
                i += old.count
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return out
    }

    /// `s.find(sub)`: the first index of `sub` in `s`, or nil (Python's -1). An empty `sub` is found at 0.
    static func find(_ s: [Unicode.Scalar], _ sub: [Unicode.Scalar]) -> Int? {
        if sub.isEmpty { return 0 }
        if sub.count > s.count { return nil }
        let first = sub[0]
        for i in 0...(s.count - sub.count) where s[i] == first {
            if s[i..<(i + sub.count)].elementsEqual(sub) { return i }
        }
        return nil
    }

    /// A JSON string literal as Python's `json.dumps` writes it (`ensure_ascii=True`): `\"`, `\\`, `\n`,
    /// `\r`, `\t`, `\b`, `\f`, other control characters and every non-ASCII code point as `\uXXXX`
    /// (UTF-16 surrogate pairs above U+FFFF).
    static func jsonLiteral(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if c.value >= 0x20 && c.value < 0x7F {
                    out.unicodeScalars.append(c)
                } else if c.value <= 0xFFFF {
                    out += hex4(c.value)
                } else {
                    let v = c.value - 0x10000
                    out += hex4(0xD800 + (v >> 10)) + hex4(0xDC00 + (v & 0x3FF))
                }
            }
        }
        return out + "\""
    }

    private static func hex4(_ v: UInt32) -> String {
        let digits = String(v, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
    }

    /// A float as Python's `repr` writes it (shortest round-trip digits; `1e-05`, `1e+16`, `0.5`).
    static func floatLiteral(_ x: Double) -> String {
        if x.isNaN { return "NaN" }
        if x.isInfinite { return x < 0 ? "-Infinity" : "Infinity" }
        return x.description
    }
}

extension Array where Element == Unicode.Scalar {
    /// The scalars as a `String`.
    var string: String { var s = String.UnicodeScalarView(); s.append(contentsOf: self); return String(s) }
}
