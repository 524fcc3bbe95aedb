/// HTML and extension tags in wikitext, handled as WikiExtractor handles them.
extension WikitextCleaner {
    /// Tags whose markup goes but whose content stays.
    static let unwrappedTags: Set<String> = ["abbr", "b", "bdi", "big", "blockquote", "cite", "div", "em", "font", "hiero",
                                             "i", "kbd", "nowiki", "plaintext", "poem", "s", "section", "span", "strike",
                                             "strong", "sub", "sup", "tt", "u", "var"]
    /// Tags dropped with everything inside them (references, galleries, HTML tables and lists, small print, …).
    static let droppedElements: Set<String> = ["gallery", "timeline", "noinclude", "pre", "table", "tr", "td", "th",
                                               "caption", "form", "input", "select", "option", "textarea", "ul", "li",
                                               "ol", "dl", "dt", "dd", "menu", "dir", "ref", "references", "img",
                                               "imagemap", "source", "small", "inputbox", "includeonly", "categorytree"]
    /// Tags that are dropped when written self-closing (`<ref name="x" />`); `nobr` always.
    static let selfClosingDropped: Set<String> = ["nobr", "ref", "references", "nowiki", "templatestyles", "section"]
    /// Tags that separate words (`<br>`, `<hr>`) and blocks (`<p>`, `<center>`, `<h1>`…`<h4>`): a space or a newline
    /// where the neighbours would otherwise run together.
    static let wordBreakTags: Set<String> = ["br", "hr"]
    static let blockBreakTags: Set<String> = ["p", "center", "h1", "h2", "h3", "h4"]

    /// A tag found in the text.
    struct Tag {
        var name: String
        var closing: Bool
        var selfClosing: Bool
        /// The index just after its `>`.
        var end: Int
    }

    /// The tag starting at `start` (a `<`): optional spaces and `/`, a name starting with a letter and ending at a
    /// non-word character, attributes (quoted values may hold `>`), `>`. Nil when there is none.
    static func tag(in text: [UInt8], at start: Int) -> Tag? {
        var j = start + 1
        while j < text.count, text[j] == 0x20 { j += 1 }
        let closing = j < text.count && text[j] == UInt8(ascii: "/")
        if closing { j += 1; while j < text.count, text[j] == 0x20 { j += 1 } }
        let nameStart = j
        guard j < text.count, (text[j] | 0x20) >= 0x61, (text[j] | 0x20) <= 0x7A else { return nil }
        while j < text.count, HTMLEntities.isWordByte(text[j]) { j += 1 }
        let name = String(decoding: text[nameStart..<j], as: UTF8.self).lowercased()
        var quote: UInt8 = 0
        while j < text.count {
            let c = text[j]
            if quote != 0 { if c == quote { quote = 0 } }
            else if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") { quote = c }
            else if c == UInt8(ascii: ">") {
                var k = j - 1
                while k > nameStart, isSpace(text[k]) { k -= 1 }
                return Tag(name: name, closing: closing, selfClosing: text[k] == UInt8(ascii: "/"), end: j + 1)
            } else if c == UInt8(ascii: "<") { return nil }
            j += 1
        }
        return nil
    }

    /// All tag handling before character references are decoded: breaks, dropped self-closing tags, unwrapped
    /// tags, then dropped elements with their content. A dropped element never closed loses only its opening tag.
    static func stripTags(_ text: [UInt8]) -> [UInt8] {
        guard text.contains(UInt8(ascii: "<")) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            guard text[i] == UInt8(ascii: "<"), let t = tag(in: text, at: i) else { out.append(text[i]); i += 1; continue }
            let isBlock = blockBreakTags.contains(t.name)
            if wordBreakTags.contains(t.name) || isBlock {
                let before = i == 0 || isSpace(text[i - 1]), after = t.end == text.count || isSpace(text[t.end])
                if !(before || after) { out.append(isBlock ? 0x0A : 0x20) }
            } else if !(t.selfClosing && selfClosingDropped.contains(t.name)) && !(t.name == "nobr")
                        && !unwrappedTags.contains(t.name) {
                out.append(contentsOf: text[i..<t.end])
            }
            i = t.end
        }
        return dropElements(out)
    }

    /// `<name …> … </name>` of the dropped elements removed with their content (same-name nesting counted).
    static func dropElements(_ text: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            guard text[i] == UInt8(ascii: "<"), let t = tag(in: text, at: i), droppedElements.contains(t.name) else {
                out.append(text[i]); i += 1; continue
            }
            i = t.end
            guard !t.closing, !t.selfClosing else { continue }
            var depth = 1, j = t.end
            while j < text.count {
                if text[j] == UInt8(ascii: "<"), let inner = tag(in: text, at: j) {
                    j = inner.end
                    if inner.name == t.name && !inner.selfClosing {
                        depth += inner.closing ? -1 : 1
                        if depth == 0 { i = j; break }
                    }
                } else { j += 1 }
            }
        }
        return out
    }

    /// `<math>…</math>` → `formula_1`, `formula_2`, … and `<code>…</code>` → `codice_1`, … (numbered per page, in
    /// order; a repeat of an earlier element, character for character, takes the earlier one's number), as
    /// WikiExtractor writes them; `<<` and `>>` become « and ».
    static func numberPlaceholders(_ text: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var counts: [String: Int] = [:]
        var numbers: [ArraySlice<UInt8>: Int] = [:]
        let placeholders = ["math": "formula", "code": "codice"]
        var i = 0
        scan: while i < text.count {
            if text[i] == UInt8(ascii: "<"), let t = tag(in: text, at: i), !t.closing, let word = placeholders[t.name] {
                var j = t.end
                while j < text.count {
                    if text[j] == UInt8(ascii: "<"), let close = tag(in: text, at: j), close.closing, close.name == t.name {
                        counts[word, default: 0] += 1
                        let number = numbers[text[i..<close.end], default: counts[word]!]
                        numbers[text[i..<close.end]] = number
                        out.append(contentsOf: "\(word)_\(number)".utf8)
                        i = close.end
                        continue scan
                    }
                    j += 1
                }
            }
            if text.hasPrefix("<<", at: i) { out.append(contentsOf: "«".utf8); i += 2; continue }
            if text.hasPrefix(">>", at: i) { out.append(contentsOf: "»".utf8); i += 2; continue }
            out.append(text[i]); i += 1
        }
        return out
    }
}
