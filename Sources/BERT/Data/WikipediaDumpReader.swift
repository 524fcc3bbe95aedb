import Foundation

/// One article of a MediaWiki XML export: the fields WikiExtractor keeps, the wikitext with XML's own escapes undone.
public struct WikipediaPage: Sendable, Equatable {
    public var id: String
    public var title: String
    /// The raw wikitext of the page's (last) revision, as UTF-8.
    public var wikitext: [UInt8]
}

/// Streams the articles out of a MediaWiki XML export (`pages-articles.xml`, plain or bzip2, multistream too) in
/// constant memory: the buffer holds at most the page being read. Articles are WikiExtractor's: namespace 0, not a
/// redirect, a page id not equal to the one before. The export is split on its `<page>` elements with plain byte
/// searches (a dump's layout is fixed: one element per line, text escaped), not by a general XML parser.
public final class WikipediaDumpReader {
    private let path: String
    private let bytes: DumpByteReader
    private var buffer: [UInt8] = []
    private var cursor = 0
    private var ended = false
    private var lastId = ""
    private var lastTitle = ""
    /// The wiki's URL prefix for `?curid=` links, from `<siteinfo><base>` (`https://en.wikipedia.org/wiki`); empty
    /// when the export has no site information. Known once the first article is read.
    public private(set) var urlBase = ""
    /// Bytes of the file read so far (compressed bytes for bzip2).
    public var fileBytesRead: Int { bytes.fileBytesRead }

    /// - Throws: `BertError.io` when the file cannot be opened.
    public init(path: String) throws {
        self.path = path
        bytes = try DumpByteReader(path: path)
    }

    /// True when the file (plain or bzip2) starts like a MediaWiki XML export.
    public static func isMediaWikiExport(path: String) -> Bool {
        guard let reader = try? DumpByteReader(path: path) else { return false }
        var head: [UInt8] = []
        while head.count < 4096, (try? reader.read(appendingTo: &head)) == true {}
        return String(decoding: head.prefix(4096), as: UTF8.self).contains("<mediawiki")
    }

    /// The next article, or nil after the last one.
    /// - Throws: `BertError.invalidInput` when the export ends inside a page or before `</mediawiki>` (a cut file),
    ///   or when its bzip2 data is corrupt or truncated.
    public func next() throws -> WikipediaPage? {
        while let page = try nextPage() {
            if let article = article(from: page) { return article }
        }
        return nil
    }

    /// The bytes of the next `<page>…</page>` element, or nil at the end of the export.
    private func nextPage() throws -> ArraySlice<UInt8>? {
        while true {
            if let open = find("<page>", from: cursor) {
                if urlBase.isEmpty, lastId.isEmpty, let base = element("base", in: buffer[cursor..<open]) {
                    urlBase = String(base[..<(base.lastIndex(of: "/") ?? base.endIndex)])
                }
                if let close = find("</page>", from: open) {
                    cursor = close + 7
                    return buffer[open..<close]
                }
            } else if find("</mediawiki>", from: cursor) != nil {
                return nil
            }
            if cursor > 1 << 20 {
                buffer.removeSubrange(..<cursor)
                cursor = 0
            }
            if try !bytes.read(appendingTo: &buffer) {
                let after = lastTitle.isEmpty ? "at its first page" : "after the page \"\(lastTitle)\" (id \(lastId))"
                if find("<page>", from: cursor) != nil {
                    throw BertError.invalidInput("\(path): the XML ends inside a <page> element \(after): the dump is cut short; "
                                                 + "download it again")
                }
                throw BertError.invalidInput("\(path): the XML ends before </mediawiki> \(after): the dump is cut short; "
                                             + "download it again")
            }
        }
    }

    /// The page as an article, or nil for other namespaces, redirects and a repeated id.
    private func article(from page: ArraySlice<UInt8>) -> WikipediaPage? {
        let title = element("title", in: page).map(Self.unescapeXML) ?? ""
        let id = element("id", in: page) ?? ""
        defer { lastTitle = title }
        guard element("ns", in: page) == "0", find("<redirect", in: page) == nil, id != lastId else { return nil }
        lastId = id
        var text: [UInt8] = []
        if let open = find("<text", in: page), let gt = page[open...].firstIndex(of: UInt8(ascii: ">")),
           page[gt - 1] != UInt8(ascii: "/") {
            let close = find("</text>", in: page[(gt + 1)...]) ?? page.endIndex
            HTMLEntities.decode(page[(gt + 1)..<close], into: &text)
        }
        return WikipediaPage(id: id, title: title, wikitext: text)
    }

    /// The text of the first `<name>…</name>` in `bytes`, still escaped.
    private func element(_ name: String, in bytes: ArraySlice<UInt8>) -> String? {
        guard let open = find("<\(name)>", in: bytes) else { return nil }
        let start = open + name.utf8.count + 2
        guard let close = find("</\(name)>", in: bytes[start...]) else { return nil }
        return String(decoding: bytes[start..<close], as: UTF8.self)
    }

    private func find(_ needle: String, from start: Int) -> Int? { find(needle, in: buffer[start...]) }

    /// The index of the first occurrence of `needle` in `haystack`.
    private func find(_ needle: String, in haystack: ArraySlice<UInt8>) -> Int? {
        let n = Array(needle.utf8)
        guard haystack.count >= n.count else { return nil }
        var i = haystack.startIndex
        let last = haystack.endIndex - n.count
        while i <= last {
            guard let j = haystack[i...last].firstIndex(of: n[0]) else { return nil }
            if haystack[j..<(j + n.count)].elementsEqual(n) { return j }
            i = j + 1
        }
        return nil
    }

    /// XML's escapes undone (a title: `AT&amp;T` → `AT&T`).
    static func unescapeXML(_ text: String) -> String {
        var out: [UInt8] = []
        HTMLEntities.decode(Array(text.utf8)[...], into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
