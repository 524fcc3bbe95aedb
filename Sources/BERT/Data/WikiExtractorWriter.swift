import Foundation

/// Writes articles in WikiExtractor's output layout, for pipelines that keep extraction as a separate step:
/// `<dir>/AA/wiki_00`, `wiki_01`, … `wiki_99`, then `AB/…`, each file holding whole articles up to a size limit, each
/// article as
///
///     <doc id="12" url="https://en.wikipedia.org/wiki?curid=12" title="Anarchism">
///     Anarchism
///
///     First paragraph.
///     Second paragraph.
///
///     </doc>
///
/// with `&`, `<`, `>` escaped in the text (WikiExtractor's default `--html-safe`). The whole directory is written
/// under a hidden temporary name beside it and renamed at the end, so a failed run leaves nothing that looks finished.
public enum WikiExtractorWriter {
    public struct Summary: Sendable {
        public var articles = 0
        public var files = 0
        public var bytes = 0
    }

    /// Extracts the dump at `dump` into the new directory `directory`.
    /// - Parameters:
    ///   - maxFileBytes: a file is closed before an article would take it past this size (0: one article a file).
    /// - Throws: `BertError.invalidInput` when `directory` exists and is not empty, or the dump is damaged (then
    ///   nothing is left behind); `BertError.io` on write errors.
    public static func extract(dump: String, to directory: String, maxFileBytes: Int, threads: Int,
                               progress: (Int) -> Void = { _ in }) throws -> Summary {
        let fm = FileManager.default
        if let contents = try? fm.contentsOfDirectory(atPath: directory), !contents.isEmpty {
            throw BertError.invalidInput("\(directory) exists and is not empty; choose a new --output or remove it")
        }
        let url = URL(fileURLWithPath: directory).standardizedFileURL
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).partial-\(getpid())").path
        try? fm.removeItem(atPath: temporary)
        do {
            try fm.createDirectory(atPath: temporary, withIntermediateDirectories: true)
            var summary = Summary()
            var file: FileHandle?
            var fileBytes = 0
            try WikipediaExtraction.forEachArticle(path: dump, threads: threads, progress: progress) { article in
                let data = Data(document(article).utf8)
                if file == nil || (fileBytes > 0 && fileBytes + data.count > maxFileBytes) {
                    try file?.close()
                    let path = temporary + "/" + relativePath(fileIndex: summary.files)
                    try fm.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                    guard fm.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
                        throw BertError.io("cannot create \(path)")
                    }
                    file = handle
                    fileBytes = 0
                    summary.files += 1
                }
                try file!.write(contentsOf: data)
                fileBytes += data.count
                summary.bytes += data.count
                summary.articles += 1
            }
            try file?.synchronize()
            try file?.close()
            try? fm.removeItem(atPath: directory)   // empty, checked above
            try fm.moveItem(atPath: temporary, toPath: directory)
            return summary
        } catch {
            try? fm.removeItem(atPath: temporary)
            throw BertError.fromFoundation(error, path: directory)
        }
    }

    /// `AA/wiki_00` for the first file, `AA/wiki_99` for the 100th, `AB/wiki_00` for the 101st.
    public static func relativePath(fileIndex: Int) -> String {
        let directory = fileIndex / 100
        let letters = [directory / 26 % 26, directory % 26].map { Character(Unicode.Scalar(UInt8(65 + $0))) }
        return String(letters) + "/wiki_" + (fileIndex % 100 < 10 ? "0" : "") + String(fileIndex % 100)
    }

    /// One article in WikiExtractor's `<doc>` layout.
    public static func document(_ article: WikipediaArticle) -> String {
        let title = escape(article.title, quotes: true)
        return "<doc id=\"\(article.id)\" url=\"\(article.url)\" title=\"\(title)\">\n\(title)\n\n"
            + article.paragraphs.map { escape($0, quotes: false) }.joined(separator: "\n") + "\n\n</doc>\n"
    }

    /// `&`, `<`, `>` (and `"` when asked) as character references.
    static func escape(_ text: String, quotes: Bool) -> String {
        guard text.utf8.contains(where: { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 }) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 16)
        for c in text.utf8 {
            switch c {
            case 0x26: out += "&amp;".utf8
            case 0x3C: out += "&lt;".utf8
            case 0x3E: out += "&gt;".utf8
            case 0x22 where quotes: out += "&quot;".utf8
            default: out.append(c)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
