import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The text layouts `bert prepare` reads.
public enum CorpusFormat: String, CaseIterable, Sendable, Codable {
    /// Google's: one sentence per line, a blank line between documents.
    case google
    /// NVIDIA's formatted Wikipedia/BookCorpus: one document per line; sentences found by `SentenceSegmenter`.
    case nvidia
    /// WikiExtractor output: `<doc …>` title, paragraphs `</doc>`; the title line is dropped, paragraphs are
    /// split into sentences by `SentenceSegmenter`.
    case wikiextractor
    /// A MediaWiki XML export (a Wikipedia dump, plain or bzip2): its articles cleaned as WikiExtractor cleans them,
    /// then laid out as NVIDIA's formatting does (paragraphs joined, title dropped) and split by `SentenceSegmenter`.
    case wikipediaXML = "wikipedia-xml"
    /// Decided per file from its start: bzip2 or a MediaWiki export → wikipedia-xml; `<doc ` →
    /// wikiextractor; a blank line among the first lines → google; otherwise nvidia.
    case auto
}

/// Reads documents (lists of sentences, as raw text) from text files, streaming line by line.
public enum CorpusReader {
    /// Expands files, directories (all regular files below, recursively) and glob patterns into a sorted,
    /// de-duplicated file list. Hidden files (`.name`) in directories are skipped.
    /// - Throws: `ShardError` when a pattern matches nothing.
    public static func expand(_ inputs: [String]) throws -> [String] {
        var files: [String] = []
        let fm = FileManager.default
        for input in inputs {
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: input, isDirectory: &isDir) {
                if isDir.boolValue {
                    guard let e = fm.enumerator(atPath: input) else { continue }
                    var found: [String] = []
                    while let rel = e.nextObject() as? String {
                        let full = (input as NSString).appendingPathComponent(rel)
                        if (rel as NSString).lastPathComponent.hasPrefix(".") { continue }
                        var d: ObjCBool = false
                        if fm.fileExists(atPath: full, isDirectory: &d), !d.boolValue { found.append(full) }
                    }
                    files += found.sorted()
                } else {
                    files.append(input)
                }
                continue
            }
            var g = glob_t()
            defer { globfree(&g) }
            if glob(input, 0, nil, &g) == 0 {
                var found: [String] = []
                for k in 0..<Int(g.gl_pathc) {
                    if let p = g.gl_pathv[k], let s = String(validatingCString: p) { found.append(s) }
                }
                files += found.sorted()
            } else {
                throw ShardError("\(input): no such file, directory or matching glob; check --input")
            }
        }
        var seen = Set<String>()
        return files.filter { seen.insert($0).inserted }
    }

    /// Decides the format of a file from its first 64 KiB.
    public static func detectFormat(path: String) -> CorpusFormat {
        // A bzip2 file can only be a dump (it is read as one, so a damaged one is reported as such).
        if DumpByteReader.isBzip2(path: path) || WikipediaDumpReader.isMediaWikiExport(path: path) { return .wikipediaXML }
        guard let h = FileHandle(forReadingAtPath: path) else { return .google }
        defer { try? h.close() }
        let data = (try? h.read(upToCount: 65_536)) ?? Data()
        let text = String(decoding: data, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if let first = lines.first(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }),
           first.hasPrefix("<doc ") || first.hasPrefix("<doc>") { return .wikiextractor }
        // A blank line between non-blank lines (the last line may be cut by the 64 KiB window).
        let inner = lines.dropLast()
        var sawText = false
        for l in inner {
            if l.trimmingCharacters(in: .whitespaces).isEmpty { if sawText { return .google } }
            else { sawText = true }
        }
        return .nvidia
    }

    /// Calls `body` with every non-empty document of `path` (its sentences, trimmed, non-empty).
    /// - Parameters:
    ///   - threads: threads that clean a Wikipedia dump's pages (the documents' order does not depend on it).
    /// - Throws: `ShardError` when the file cannot be opened, `BertError.invalidInput` for a damaged dump; rethrows
    ///   `body`'s errors.
    public static func forEachDocument(path: String, format: CorpusFormat, threads: Int = 1,
                                       _ body: ([String]) throws -> Void) throws {
        let format = format == .auto ? detectFormat(path: path) : format
        if format == .wikipediaXML {
            try WikipediaExtraction.forEachArticle(path: path, threads: threads) { article in
                let document = SentenceSegmenter.split(article.paragraphs.joined(separator: " "))
                if !document.isEmpty { try body(document) }
            }
            return
        }
        guard let fp = fopen(path, "r") else { throw ShardError("\(path): cannot open the input file; check --input") }
        defer { fclose(fp) }
        var linePtr: UnsafeMutablePointer<CChar>? = nil
        var cap = 0
        defer { free(linePtr) }
        var document: [String] = []
        var afterDocTag = false
        func flush() throws {
            if !document.isEmpty { try body(document) }
            document.removeAll(keepingCapacity: true)
        }
        while true {
            let len = getline(&linePtr, &cap, fp)
            if len < 0 { break }
            let raw = UnsafeBufferPointer(start: UnsafeRawPointer(linePtr!).assumingMemoryBound(to: UInt8.self), count: len)
            var lo = 0, hi = len
            while lo < hi && SentenceSegmenter.isSpace(raw[lo]) { lo += 1 }
            while hi > lo && SentenceSegmenter.isSpace(raw[hi - 1]) { hi -= 1 }
            let line = UnsafeBufferPointer(rebasing: raw[lo..<hi])
            switch format {
            case .google, .auto, .wikipediaXML:
                if line.isEmpty { try flush() } else { document.append(String(decoding: line, as: UTF8.self)) }
            case .nvidia:
                if !line.isEmpty {
                    SentenceSegmenter.split(bytes: line, into: &document)
                    try flush()
                }
            case .wikiextractor:
                if line.isEmpty { continue }
                if line.starts(with: "<doc".utf8) && (line.count == 4 || line[4] == 0x20 || line[4] == 0x3E) {
                    try flush(); afterDocTag = true; continue
                }
                if line.elementsEqual("</doc>".utf8) { try flush(); afterDocTag = false; continue }
                if afterDocTag { afterDocTag = false; continue }   // the title line
                SentenceSegmenter.split(bytes: line, into: &document)
            }
        }
        try flush()
    }
}
