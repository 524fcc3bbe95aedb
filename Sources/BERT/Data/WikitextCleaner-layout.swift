/// Spacing, punctuation and the line layout of an article, as WikiExtractor finishes its text.
extension WikitextCleaner {
    /// Tabs to spaces, runs of spaces to one, four or more dots to `...`, no space before `, : . ) ] »` nor after
    /// `[ ( «`, lines of punctuation only removed, `,,` → `,` and `,.` → `.`.
    static func tidy(_ text: [UInt8]) -> [UInt8] {
        var t: [UInt8] = []
        t.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            let c = text[i] == 0x09 ? 0x20 : text[i]
            if c == 0x20, t.last == 0x20 { i += 1; continue }
            if c == UInt8(ascii: "."), text.hasPrefix("....", at: i) {
                while i < text.count, text[i] == UInt8(ascii: ".") { i += 1 }
                t.append(contentsOf: "...".utf8)
                continue
            }
            t.append(c); i += 1
        }
        let closers = ["," , ":", ".", ")", "]", "»"].map { Array($0.utf8) }
        var spaced: [UInt8] = []
        spaced.reserveCapacity(t.count)
        for k in t.indices where !(t[k] == 0x20 && closers.contains(where: { t.hasPrefix($0, at: k + 1) })) {
            spaced.append(t[k])
        }
        var opened: [UInt8] = []
        opened.reserveCapacity(spaced.count)
        for k in spaced.indices {
            if spaced[k] == 0x20, k > 0,
               spaced[k - 1] == UInt8(ascii: "[") || spaced[k - 1] == UInt8(ascii: "(") || spaced.hasPrefix("«", at: k - 2) { continue }
            opened.append(spaced[k])
        }
        let lines = dropPunctuationLines(opened)
        return replaceAll(replaceAll(lines, ",,", with: ","), ",.", with: ".")
    }

    /// Removes a line with no word character (and at least one character) between two newlines; like the regex
    /// substitution it mirrors (`\n\W+?\n` → `\n`), the newline that closes a removed line cannot open the next match.
    private static func dropPunctuationLines(_ text: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var start = 0, previousRemoved = false
        while start <= text.count {
            let end = text[start...].firstIndex(of: 0x0A) ?? text.count
            let line = text[start..<end]
            let removable = start > 0 && end < text.count && !previousRemoved && !hasWordCharacter(line, in: text)
            if !removable {
                out.append(contentsOf: line)
                if end < text.count { out.append(0x0A) }
            }
            previousRemoved = removable && !line.isEmpty
            start = end + 1
        }
        return out
    }

    private static func hasWordCharacter(_ line: ArraySlice<UInt8>, in text: [UInt8]) -> Bool {
        var i = line.startIndex
        while i < line.endIndex {
            guard let (isWord, length) = wordCharacter(text, at: i) else { return false }
            if isWord { return true }
            i += length
        }
        return false
    }

    /// The article's paragraphs from its tidied lines: section titles (with a `.` added unless they end in `!` or
    /// `?`) kept only when a paragraph follows, list items and table residue dropped, indents unindented, lines that
    /// are only a parenthesis or only dots and dashes dropped.
    static func compact(_ text: [UInt8]) -> [String] {
        var page: [String] = []
        var headers: [(level: Int, title: String)] = []
        var emptySection = false
        for lineBytes in text.split(separator: 0x0A, omittingEmptySubsequences: true) {
            let line = String(decoding: lineBytes, as: UTF8.self)
            guard !line.allSatisfy(\.isWhitespace) else { continue }
            if let (level, title) = sectionTitle(lineBytes) {
                headers = headers.filter { $0.level < level }
                if !title.isEmpty { headers.append((level, title.last == "!" || title.last == "?" ? title : title + ".")) }
                emptySection = true
                continue
            }
            let first = line.first!, last = line.last!
            if line.hasPrefix("++") {
                let title = String(line.dropFirst(2).dropLast(2))
                if !title.isEmpty { page.append(title.last == "!" || title.last == "?" ? title : title + ".") }
            } else if first == ":" {
                page.append(String(line.drop { $0 == ":" }))
            } else if "*#;".contains(first) || "{|".contains(first) || last == "}" {
                continue
            } else if (first == "(" && last == ")") || line.allSatisfy({ $0 == "." || $0 == "-" }) {
                continue
            } else if !headers.isEmpty {
                page += headers.map(\.title)
                headers.removeAll()
                page.append(line)
                emptySection = false
            } else if !emptySection {
                page.append(line)
            }
        }
        return page
    }

    /// `== Title ==` at the start of a line (two or more `=`, the same number closing): its level and title.
    static func sectionTitle(_ line: ArraySlice<UInt8>) -> (Int, String)? {
        var run = 0
        while line.startIndex + run < line.endIndex, line[line.startIndex + run] == UInt8(ascii: "=") { run += 1 }
        guard run >= 2 else { return nil }
        for level in stride(from: run, through: 2, by: -1) {
            var titleStart = line.startIndex + level
            while titleStart < line.endIndex, isSpace(line[titleStart]) { titleStart += 1 }
            let closing = [UInt8](repeating: UInt8(ascii: "="), count: level)
            var k = titleStart
            while k + level <= line.endIndex {
                if line[k..<(k + level)].elementsEqual(closing) {
                    return (level, String(decoding: trimmed(line[titleStart..<k]), as: UTF8.self))
                }
                k += 1
            }
        }
        return nil
    }
}
