import Dispatch
import Foundation

/// One cleaned article.
public struct WikipediaArticle: Sendable, Equatable {
    public var id: String
    public var title: String
    /// `<urlBase>?curid=<id>`, as WikiExtractor writes it.
    public var url: String
    public var paragraphs: [String]
}

/// A MediaWiki XML export → cleaned articles, in dump order. The dump is read and decompressed on the calling
/// thread in batches of pages (bounded, so memory stays constant); each batch is cleaned on `threads` threads, each
/// taking a contiguous run of pages, and handed on in order: the output does not depend on the thread count.
public enum WikipediaExtraction {
    /// Pages per batch, and the wikitext bytes that also end a batch.
    static let batchPages = 512
    static let batchBytes = 16 << 20

    /// Calls `body` with every article of the dump at `path`, in order.
    /// - Parameters:
    ///   - progress: called after each batch with the bytes of the file read so far.
    /// - Throws: `BertError.invalidInput` for a cut or corrupt dump (see `WikipediaDumpReader.next()`), after the
    ///   articles before the damage were handed on; rethrows `body`'s errors.
    public static func forEachArticle(path: String, threads: Int, progress: (Int) -> Void = { _ in },
                                      _ body: (WikipediaArticle) throws -> Void) throws {
        let reader = try WikipediaDumpReader(path: path)
        var batch: [WikipediaPage] = []
        var batchSize = 0
        func flush() throws {
            guard !batch.isEmpty else { return }
            let cleaned = clean(batch, threads: threads)
            for (page, paragraphs) in zip(batch, cleaned) {
                try body(WikipediaArticle(id: page.id, title: page.title, url: "\(reader.urlBase)?curid=\(page.id)",
                                          paragraphs: paragraphs))
            }
            batch.removeAll(keepingCapacity: true)
            batchSize = 0
            progress(reader.fileBytesRead)
        }
        while let page = try reader.next() {
            batch.append(page)
            batchSize += page.wikitext.count
            if batch.count >= batchPages || batchSize >= batchBytes { try flush() }
        }
        try flush()
    }

    /// The paragraphs of every page, cleaned on up to `threads` threads.
    static func clean(_ pages: [WikipediaPage], threads: Int) -> [[String]] {
        let chunks = max(1, min(threads, pages.count))
        var results = [[String]](repeating: [], count: pages.count)
        results.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let out = out
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                for k in (pages.count * c / chunks)..<(pages.count * (c + 1) / chunks) {
                    out[k] = WikitextCleaner.paragraphs(pages[k].wikitext)
                }
            }
        }
        return results
    }
}
