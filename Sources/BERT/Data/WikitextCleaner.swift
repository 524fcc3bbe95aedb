/// Wikitext → plain paragraphs, with the semantics of WikiExtractor (the `wikiextractor` package, as NVIDIA's and
/// MLPerf's BERT data preparation run it, templates of the dump unexpanded): templates, tables, references,
/// categories, files and images, lists and comments dropped; link text kept; bold and italic markup stripped (italic
/// becomes "quoted", as WikiExtractor writes it); HTML tags stripped (the contents of `<ref>`, `<small>`, `<gallery>`
/// and the like dropped); character references decoded; `<math>` becomes `formula_N` and `<code>` `codice_N`;
/// section titles kept when a paragraph follows them. Works on UTF-8 bytes: every delimiter is ASCII.
///
/// Where the input is malformed it degrades instead of failing, as MediaWiki does: a `{{` with no `}}` loses only
/// its braces (the text after it stays), an unclosed `<!--` hides the rest of the page, an unclosed table or link
/// stays as text (and a line that starts with table markup is dropped).
public enum WikitextCleaner {
    /// The article's paragraphs (section titles among them, ending in "."), in order, no blank ones.
    public static func paragraphs(_ wikitext: [UInt8]) -> [String] {
        var text = dropComments(wikitext)
        text = dropTemplates(text)
        text = dropNested(text, open: Array("{|".utf8), close: Array("|}".utf8))
        text = replaceExternalLinks(text)
        text = replaceInternalLinks(text)
        text = dropMagicWords(text)
        text = stripEmphasis(text)
        text = stripTags(text)
        var decoded: [UInt8] = []
        decoded.reserveCapacity(text.count)
        HTMLEntities.decode(text[...], into: &decoded)
        text = numberPlaceholders(decoded)
        return compact(tidy(text))
    }

    // MARK: - Comments, templates, tables

    /// `<!-- … -->` removed; an unclosed one hides the rest (as MediaWiki renders it).
    static func dropComments(_ text: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            if text[i] == UInt8(ascii: "<"), text.hasPrefix("<!--", at: i) {
                guard let close = text.firstRange(of: "-->", from: i + 4) else { break }
                i = close.upperBound
                continue
            }
            out.append(text[i]); i += 1
        }
        return out
    }

    /// Every `{{ … }}` (nested ones inside it too) removed: the dump's templates are not expanded, so a template
    /// leaves nothing, as WikiExtractor's expansion of an undefined template leaves nothing. An opening `{{` with no
    /// closing `}}` loses its braces and the text after it is kept; a stray `}}` stays (a line ending in it is
    /// dropped later, with table residue).
    static func dropTemplates(_ text: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            guard text[i] == UInt8(ascii: "{"), i + 1 < text.count, text[i + 1] == UInt8(ascii: "{") else {
                out.append(text[i]); i += 1; continue
            }
            var depth = 0, j = i
            while j + 1 < text.count {
                if text[j] == UInt8(ascii: "{") && text[j + 1] == UInt8(ascii: "{") { depth += 1; j += 2 }
                else if text[j] == UInt8(ascii: "}") && text[j + 1] == UInt8(ascii: "}") {
                    depth -= 1; j += 2
                    if depth == 0 { break }
                } else { j += 1 }
            }
            i = depth == 0 ? j : i + 2   // unclosed: drop the braces only, go on after them
        }
        return out
    }

    /// Balanced `open … close` spans (nested ones inside them too) removed; an `open` never closed stays.
    static func dropNested(_ text: [UInt8], open: [UInt8], close: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = 0
        outer: while i < text.count {
            guard text.hasPrefix(open, at: i) else { out.append(text[i]); i += 1; continue }
            var depth = 0, j = i
            while j < text.count {
                if text.hasPrefix(open, at: j) { depth += 1; j += open.count }
                else if text.hasPrefix(close, at: j) {
                    depth -= 1; j += close.count
                    if depth == 0 { i = j; continue outer }
                } else { j += 1 }
            }
            out.append(contentsOf: open); i += open.count
        }
        return out
    }

    // MARK: - Links

    /// URL schemes of bracketed external links (MediaWiki's `$wgUrlProtocols`), lower case.
    static let urlProtocols = ["bitcoin:", "ftp://", "ftps://", "geo:", "git://", "gopher://", "http://", "https://",
                               "irc://", "ircs://", "magnet:", "mailto:", "mms://", "news:", "nntp://", "redis://",
                               "sftp://", "sip:", "sips:", "sms:", "ssh://", "svn://", "tel:", "telnet://", "urn:",
                               "worldwind://", "xmpp:", "//"].map { Array($0.utf8) }

    /// `[URL label]` → `label`, `[URL]` → nothing; a bare URL stays.
    static func replaceExternalLinks(_ text: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            if text[i] == UInt8(ascii: "["), let (label, end) = externalLink(text, at: i) {
                out.append(contentsOf: label)
                i = end
                continue
            }
            out.append(text[i]); i += 1
        }
        return out
    }

    /// The label and end of a bracketed external link starting at `start`, or nil.
    private static func externalLink(_ text: [UInt8], at start: Int) -> (ArraySlice<UInt8>, Int)? {
        let from = start + 1
        guard let scheme = urlProtocols.first(where: { text.hasPrefix($0, at: from, caseInsensitive: true) }) else { return nil }
        var j = from + scheme.count
        let urlStart = j
        while j < text.count, isURLByte(text[j]) { j += 1 }
        guard j > urlStart else { return nil }
        while j < text.count, isSpace(text[j]) { j += 1 }
        let labelStart = j
        while j < text.count, text[j] != UInt8(ascii: "]") {
            if text[j] < 0x20 && text[j] != 0x09 { return nil }   // a link's label stays on its line
            j += 1
        }
        guard j < text.count else { return nil }
        return (text[labelStart..<j], j + 1)
    }

    /// Namespaces whose links keep their text (WikiExtractor's accepted ones: Wikipedia itself and Wiktionary).
    static let keptLinkPrefixes: Set<String> = ["w", "wiktionary", "wikt"]

    /// `[[Target|label]]trail` → `label` + `trail` (`[[Target]]s` → `Targets`); a link whose target has a
    /// namespace or language prefix (`File:`, `Category:`, `fr:`) leaves nothing, with its caption.
    static func replaceInternalLinks(_ text: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            guard text.hasPrefix("[[", at: i), let end = matchingClose(text, from: i) else {
                out.append(text[i]); i += 1; continue
            }
            let inner = text[(i + 2)..<(end - 2)]
            out.append(contentsOf: linkText(inner))
            i = end
            while i < text.count, let (isWord, length) = wordCharacter(text, at: i), isWord {   // the trail
                out.append(contentsOf: text[i..<(i + length)]); i += length
            }
        }
        return out
    }

    /// The end (after `]]`) of the balanced `[[ … ]]` starting at `start`, or nil when it never closes.
    private static func matchingClose(_ text: [UInt8], from start: Int) -> Int? {
        var depth = 0, j = start
        while j + 1 < text.count {
            if text[j] == UInt8(ascii: "[") && text[j + 1] == UInt8(ascii: "[") { depth += 1; j += 2 }
            else if text[j] == UInt8(ascii: "]") && text[j + 1] == UInt8(ascii: "]") {
                depth -= 1; j += 2
                if depth == 0 { return j }
            } else { j += 1 }
        }
        return nil
    }

    /// The visible text of a link's inside: after its last top-level `|`, or the target itself.
    private static func linkText(_ inner: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        let firstPipe = inner.firstIndex(of: UInt8(ascii: "|"))
        var target = inner[..<(firstPipe ?? inner.endIndex)]
        while let last = target.last, isSpace(last) { target = target.dropLast() }
        if let colon = target.firstIndex(of: UInt8(ascii: ":")) {
            if colon > target.startIndex {
                if !keptLinkPrefixes.contains(String(decoding: target[..<colon], as: UTF8.self)) { return [] }
            } else if let second = target[(colon + 1)...].firstIndex(of: UInt8(ascii: ":")), second > colon + 1,
                      !keptLinkPrefixes.contains(String(decoding: target[(colon + 1)..<second], as: UTF8.self)) {
                return []
            }
        }
        guard let firstPipe else { return inner }
        // The label follows the last `|` outside nested links (a caption may hold links of its own).
        var pipe = firstPipe, j = firstPipe + 1, depth = 0
        while j < inner.endIndex {
            if inner[j] == UInt8(ascii: "["), j + 1 < inner.endIndex, inner[j + 1] == UInt8(ascii: "[") { depth += 1; j += 2; continue }
            if inner[j] == UInt8(ascii: "]"), j + 1 < inner.endIndex, inner[j + 1] == UInt8(ascii: "]") { depth = max(0, depth - 1); j += 2; continue }
            if inner[j] == UInt8(ascii: "|") && depth == 0 { pipe = j }
            j += 1
        }
        return trimmed(inner[(pipe + 1)...])
    }

    /// Behaviour switches (`__NOTOC__`, `__TOC__`, …) removed.
    static let magicWords = ["__NOTOC__", "__FORCETOC__", "__TOC__", "__NEWSECTIONLINK__", "__NONEWSECTIONLINK__",
                             "__NOGALLERY__", "__HIDDENCAT__", "__NOCONTENTCONVERT__", "__NOCC__", "__NOTITLECONVERT__",
                             "__NOTC__", "__START__", "__END__", "__INDEX__", "__NOINDEX__", "__STATICREDIRECT__",
                             "__DISAMBIG__", "__NOEDITSECTION__"].map { Array($0.utf8) }

    static func dropMagicWords(_ text: [UInt8]) -> [UInt8] {
        guard text.firstRange(of: "__", from: 0) != nil else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            if text[i] == UInt8(ascii: "_"), let word = magicWords.first(where: { text.hasPrefix($0, at: i) }) {
                i += word.count; continue
            }
            out.append(text[i]); i += 1
        }
        return out
    }

    // MARK: - Emphasis

    /// Bold and italic as WikiExtractor strips them, in its order, within a line: `'''''x'''''` and `'''x'''` → x,
    /// `''"x"''` → "x", `''x''` → "x", `""x""` → "x"; then a leftover `'''` goes and a leftover `''` becomes `"`.
    static func stripEmphasis(_ text: [UInt8]) -> [UInt8] {
        guard text.firstRange(of: "''", from: 0) != nil || text.firstRange(of: "\"\"", from: 0) != nil else { return text }
        var t = text
        t = replacePairs(t, delimiter: "'''''", prefix: "", suffix: "")
        t = replacePairs(t, delimiter: "'''", prefix: "", suffix: "")
        t = replacePairs(t, open: "''\"", close: "\"''", prefix: "\"", suffix: "\"", innerExcludes: UInt8(ascii: "\""))
        t = replacePairs(t, delimiter: "''", prefix: "\"", suffix: "\"")
        t = replacePairs(t, open: "\"\"", close: "\"\"", prefix: "\"", suffix: "\"", innerExcludes: UInt8(ascii: "\""))
        t = replaceAll(t, "'''", with: "")
        return replaceAll(t, "''", with: "\"")
    }

    private static func replacePairs(_ text: [UInt8], delimiter: String, prefix: String, suffix: String) -> [UInt8] {
        replacePairs(text, open: delimiter, close: delimiter, prefix: prefix, suffix: suffix, innerExcludes: nil)
    }

    /// Leftmost, shortest `open … close` pairs → `prefix … suffix`, as a lazy regex substitution does. Without
    /// `innerExcludes` a pair stays on one line (`.` does not match a newline); with it, the inside may not hold
    /// that byte (and may span lines).
    private static func replacePairs(_ text: [UInt8], open: String, close: String, prefix: String, suffix: String,
                                     innerExcludes: UInt8?) -> [UInt8] {
        let o = Array(open.utf8), c = Array(close.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = 0
        scan: while i < text.count {
            if text.hasPrefix(o, at: i) {
                var j = i + o.count
                while j < text.count {
                    if text.hasPrefix(c, at: j) {
                        out.append(contentsOf: prefix.utf8)
                        out.append(contentsOf: text[(i + o.count)..<j])
                        out.append(contentsOf: suffix.utf8)
                        i = j + c.count
                        continue scan
                    }
                    if innerExcludes.map({ text[j] == $0 }) ?? (text[j] == 0x0A) { break }
                    j += 1
                }
            }
            out.append(text[i]); i += 1
        }
        return out
    }

    // MARK: - Small byte helpers

    static func replaceAll(_ text: [UInt8], _ target: String, with replacement: String) -> [UInt8] {
        let t = Array(target.utf8)
        guard text.firstRange(of: target, from: 0) != nil else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            if text.hasPrefix(t, at: i) { out.append(contentsOf: replacement.utf8); i += t.count }
            else { out.append(text[i]); i += 1 }
        }
        return out
    }

    static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == 0x0B || c == 0x0C }

    /// Bytes a URL may hold in a bracketed link: none of `[ ] < > "`, controls, space, DEL.
    private static func isURLByte(_ c: UInt8) -> Bool {
        c > 0x20 && c != 0x7F && c != UInt8(ascii: "[") && c != UInt8(ascii: "]") && c != UInt8(ascii: "<")
            && c != UInt8(ascii: ">") && c != UInt8(ascii: "\"")
    }

    /// Whether the character at `i` is a word character (a letter, digit or `_`, as a Unicode `\w`), and its length.
    static func wordCharacter(_ text: [UInt8], at i: Int) -> (Bool, Int)? {
        guard i < text.count else { return nil }
        let c = text[i]
        if c < 0x80 { return (HTMLEntities.isWordByte(c), 1) }
        let length = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1
        guard i + length <= text.count,
              let scalar = String(decoding: text[i..<(i + length)], as: UTF8.self).unicodeScalars.first else { return (false, 1) }
        let p = scalar.properties
        return (p.isAlphabetic || p.numericType != nil, length)
    }

    static func trimmed(_ s: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var s = s
        while let f = s.first, isSpace(f) { s = s.dropFirst() }
        while let l = s.last, isSpace(l) { s = s.dropLast() }
        return s
    }
}

extension Array where Element == UInt8 {
    /// Whether `prefix` occurs at `index` (ASCII letters compared without case when asked).
    func hasPrefix(_ prefix: [UInt8], at index: Int, caseInsensitive: Bool = false) -> Bool {
        guard index >= 0, index + prefix.count <= count else { return false }
        for k in 0..<prefix.count {
            var a = self[index + k]
            if caseInsensitive, a >= 0x41, a <= 0x5A { a += 0x20 }
            if a != prefix[k] { return false }
        }
        return true
    }

    func hasPrefix(_ prefix: String, at index: Int) -> Bool {
        guard index >= 0, index < count, self[index] == prefix.utf8.first else { return false }
        var k = index
        for c in prefix.utf8 {
            guard k < count, self[k] == c else { return false }
            k += 1
        }
        return true
    }

    /// The first occurrence of `needle` at or after `from`.
    func firstRange(of needle: String, from: Int) -> Range<Int>? {
        let n = Array(needle.utf8)
        var i = from
        while i + n.count <= count {
            guard let j = self[i...].firstIndex(of: n[0]) else { return nil }
            if hasPrefix(n, at: j) { return j..<(j + n.count) }
            i = j + 1
        }
        return nil
    }
}
