import CBZip2
import Foundation
import Testing
@testable import BERT

/// Wikipedia XML dumps → text: WikiExtractor's cleaning rules, the real-dump agreement with `wikiextractor` (fixture
/// written by scripts/reference/wikiextractor_reference.py), bzip2 and multistream input, thread-count independence,
/// the `bert wikiextract` and `bert prepare --input-format wikipedia-xml` commands, and damaged dumps.
@Suite struct WikipediaDumpTests {
    static func clean(_ wikitext: String) -> [String] { WikitextCleaner.paragraphs(Array(wikitext.utf8)) }

    @Test func cleaningRules() {
        #expect(Self.clean("""
            {{Infobox person|name=X|birth={{birth date|1900|1|1}}}}
            '''Ada''' was a [[mathematician|Mathematician]] from [[London]]s.<ref>Cite {{cite web|url=x}}</ref> She wrote ''Notes''.
            [[File:Ada.jpg|thumb|A [[portrait]]]]
            {| class="wikitable"
            | a || b
            |}
            == Early life ==
            Born &amp; raised<!-- hidden --> in [http://example.org the city], she&nbsp;read <math>x^2</math> and <math>y</math> then <math>x^2</math>.
            * a list item
            == Empty section ==
            [[Category:Mathematicians]]
            [[fr:Ada]]
            """) == ["Ada was a Mathematician from Londons. She wrote \"Notes\".",
                     "Early life.",
                     "Born & raised in the city, she\u{A0}read formula_1 and formula_2 then formula_1."])
        // Small print, HTML tables and lists go with their content; unwrapped tags keep it; br separates words.
        #expect(Self.clean("A<small>(tiny)</small> <span style=\"x\">b</span>c<br/>d <ref name=\"n\" /> e") == ["A bc d e"])
        // An unbalanced template loses only its braces; an unclosed comment hides the rest of the page.
        #expect(Self.clean("Before {{cite | broken. After.\nNext line.") == ["Before cite | broken. After.", "Next line."])
        #expect(Self.clean("Kept.\nGone <!-- never closed\nnor this") == ["Kept.", "Gone "])
        #expect(Self.clean("Stray }} then text.") == ["Stray }} then text."])
    }

    /// A small MediaWiki export: two articles, a redirect, a page of another namespace, a self-closing <text/>.
    static func syntheticDump(articles: Int = 2) -> String {
        var xml = """
            <mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="en">
              <siteinfo>
                <base>https://en.wikipedia.org/wiki/Main_Page</base>
              </siteinfo>

            """
        func page(_ id: Int, _ title: String, ns: Int = 0, redirect: Bool = false, text: String?) -> String {
            "  <page>\n    <title>\(title)</title>\n    <ns>\(ns)</ns>\n    <id>\(id)</id>\n"
                + (redirect ? "    <redirect title=\"X\" />\n" : "")
                + "    <revision>\n      <id>\(id + 1000)</id>\n"
                + (text.map { "      <text xml:space=\"preserve\">\($0)</text>\n" } ?? "      <text bytes=\"0\" />\n")
                + "    </revision>\n  </page>\n"
        }
        xml += page(1, "AT&amp;T", text: "'''AT&amp;T''' is a [[company]].&lt;ref&gt;x&lt;/ref&gt;\nIt sells phones.")
        xml += page(2, "Redirected", redirect: true, text: "#REDIRECT [[AT&amp;T]]")
        xml += page(3, "Wikipedia:About", ns: 4, text: "About the project.")
        xml += page(4, "Empty", text: nil)
        for k in 0..<max(0, articles - 2) {
            xml += page(10 + k, "Article \(k)", text: "Article number \(k) is about [[topic \(k % 7)|things]]. {{stub}}")
        }
        return xml + "</mediawiki>\n"
    }

    /// bzip2 of `data`, as one stream per part when `streams` > 1 (a multistream file).
    static func bzip2(_ data: [UInt8], streams: Int = 1) -> [UInt8] {
        var out: [UInt8] = []
        for s in 0..<streams {
            var part = Array(data[(data.count * s / streams)..<(data.count * (s + 1) / streams)])
            var compressed = [UInt8](repeating: 0, count: part.count + part.count / 100 + 600)
            var length = UInt32(compressed.count)
            let status = compressed.withUnsafeMutableBytes { c in
                part.withUnsafeMutableBytes { p in
                    BZ2_bzBuffToBuffCompress(c.baseAddress!.assumingMemoryBound(to: CChar.self), &length,
                                             p.baseAddress!.assumingMemoryBound(to: CChar.self), UInt32(p.count), 9, 0, 0)
                }
            }
            precondition(status == BZ_OK)
            out += compressed[..<Int(length)]
        }
        return out
    }

    static func articles(_ path: String, threads: Int = 2) throws -> [WikipediaArticle] {
        var all: [WikipediaArticle] = []
        try WikipediaExtraction.forEachArticle(path: path, threads: threads) { all.append($0) }
        return all
    }

    static func write(_ bytes: [UInt8], _ name: String, in dir: String) throws -> String {
        let path = dir + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func plainBzip2AndMultistreamReadTheSame() throws {
        let dir = try temporaryDirectory("wiki")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let xml = Array(Self.syntheticDump(articles: 40).utf8)
        let plain = try Self.write(xml, "dump.xml", in: dir)
        let single = try Self.write(Self.bzip2(xml), "dump.xml.bz2", in: dir)
        let multi = try Self.write(Self.bzip2(xml, streams: 5), "multi.xml.bz2", in: dir)
        let expected = try Self.articles(plain)
        #expect(expected.count == 40)   // 42 pages: the redirect and the project page are not articles
        #expect(expected[0] == WikipediaArticle(id: "1", title: "AT&T", url: "https://en.wikipedia.org/wiki?curid=1",
                                                paragraphs: ["AT&T is a company.", "It sells phones."]))
        #expect(expected[1].id == "4" && expected[1].paragraphs.isEmpty)
        #expect(try Self.articles(single) == expected)
        #expect(try Self.articles(multi) == expected)
        for path in [plain, single, multi] { #expect(CorpusReader.detectFormat(path: path) == .wikipediaXML) }
        // NVIDIA's formatting for `bert prepare`: one document per article, paragraphs joined, then sentences.
        var documents: [[String]] = []
        try CorpusReader.forEachDocument(path: multi, format: .auto, threads: 2) { documents.append($0) }
        #expect(documents.first == ["AT&T is a company.", "It sells phones."])
        #expect(documents.count == 39)   // the empty article gives no document
    }

    @Test func outputDoesNotDependOnThreads() throws {
        let dir = try temporaryDirectory("wiki-threads")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // More pages than one batch, so batches and chunks both split.
        let path = try Self.write(Self.bzip2(Array(Self.syntheticDump(articles: WikipediaExtraction.batchPages + 300).utf8)),
                                  "dump.xml.bz2", in: dir)
        let one = try Self.articles(path, threads: 1)
        #expect(one.count == WikipediaExtraction.batchPages + 300)
        #expect(try Self.articles(path, threads: 3) == one)
        #expect(try Self.articles(path, threads: 8) == one)
    }

    /// The real enwiki pages against wikiextractor's text of the same pages (whitespace-normalised).
    @Test func realDumpAgreesWithWikiExtractor() throws {
        guard sharedDatasetsPresent else { print("note: real-dump agreement test skipped (no ../shared/datasets)"); return }
        let agreement = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixture("wikipedia/agreement.json")))) as! [String: [String: Any]]
        let references = try String(contentsOfFile: fixture("wikipedia/reference_articles.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(references.count >= 5)
        for (name, summary) in agreement {
            let ours = try Self.articles(sharedDatasets + "/wikipedia/dump/" + name)
            let perArticle = summary["articles"] as! [String: [String: Any]]
            #expect(ours.map(\.id).sorted() == perArticle.keys.sorted(), "\(name): the same articles as wikiextractor")
            let byId = Dictionary(uniqueKeysWithValues: ours.map { ($0.id, $0) })
            for reference in references where reference["dump"] as? String == name {
                let id = reference["id"] as! String
                let normalise = { (p: [String]) in p.joined(separator: " ").split(whereSeparator: \.isWhitespace).joined(separator: " ") }
                let theirs = normalise((reference["paragraphs"] as! [String]).map(Self.unescapeHTML))
                let mine = normalise(byId[id]?.paragraphs ?? [])
                if perArticle[id]?["identical"] as? Bool == true {
                    #expect(mine == theirs, "\(name) article \(id) \(reference["title"]!): differs from wikiextractor")
                } else {
                    #expect(Self.tokenF1(mine, theirs) >= (perArticle[id]?["f1"] as! Double) - 1e-3, "\(name) article \(id)")
                }
            }
        }
    }

    /// WikiExtractor's `--html-safe` escapes undone (the fixture holds its output as written).
    static func unescapeHTML(_ s: String) -> String {
        s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&amp;", with: "&")
    }

    static func tokenF1(_ a: String, _ b: String) -> Double {
        var counts: [Substring: Int] = [:]
        let ta = a.split(separator: " "), tb = b.split(separator: " ")
        for t in ta { counts[t, default: 0] += 1 }
        var common = 0
        for t in tb where counts[t, default: 0] > 0 { counts[t]! -= 1; common += 1 }
        guard common > 0 else { return ta.isEmpty && tb.isEmpty ? 1 : 0 }
        let p = Double(common) / Double(ta.count), r = Double(common) / Double(tb.count)
        return 2 * p * r / (p + r)
    }

    @Test func wikiextractAndPrepareCommands() throws {
        guard BertProgram.present else { return }
        let dir = try temporaryDirectory("wiki-cli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dump = try Self.write(Self.bzip2(Array(Self.syntheticDump(articles: 30).utf8), streams: 3), "dump.xml.bz2", in: dir)
        let run = try BertProgram.run(["wikiextract", "--input", dump, "--output", dir + "/text", "--bytes", "1K"])
        #expect(run.status == 0, "\(run.err)")
        let first = try String(contentsOfFile: dir + "/text/AA/wiki_00", encoding: .utf8)
        #expect(first.hasPrefix("<doc id=\"1\" url=\"https://en.wikipedia.org/wiki?curid=1\" title=\"AT&amp;T\">\nAT&amp;T\n\n"
                                + "AT&amp;T is a company.\nIt sells phones.\n\n</doc>\n"))
        let files = try CorpusReader.expand([dir + "/text"])
        #expect(files.count > 1 && files.allSatisfy { try! String(contentsOfFile: $0, encoding: .utf8).utf8.count <= 1024 })
        // What it writes reads back through the wikiextractor reader: the same documents as the dump read directly
        // (but for the escaped `&`, which WikiExtractor's format keeps escaped).
        var fromText: [[String]] = [], fromDump: [[String]] = []
        for file in files { try CorpusReader.forEachDocument(path: file, format: .wikiextractor) { fromText.append($0) } }
        try CorpusReader.forEachDocument(path: dump, format: .wikipediaXML) { fromDump.append($0) }
        #expect(fromText.count == fromDump.count)
        #expect(Array(fromText.dropFirst()) == Array(fromDump.dropFirst()))
        // A second run into the same directory is refused, the first output kept.
        let again = try BertProgram.run(["wikiextract", "--input", dump, "--output", dir + "/text"])
        #expect(again.status != 0 && again.err.contains("not empty"))

        let vocab = fixture("tokenizer/bert-base-uncased-vocab.txt")
        let prepare = try BertProgram.run(["prepare", "--input", dump, "--input-format", "wikipedia-xml", "--vocab-file", vocab,
                                           "--output-dir", dir + "/shards", "--max-seq-length", "32", "--dupe-factor", "1"])
        #expect(prepare.status == 0, "\(prepare.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/shards").contains("corpus_training_0.hdf5"))
    }

    @Test func damagedDumpsFailWithOneLineAndNoOutput() throws {
        guard BertProgram.present else { return }
        let dir = try temporaryDirectory("wiki-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let xml = Array(Self.syntheticDump(articles: 20).utf8)
        let compressed = Self.bzip2(xml)
        let truncated = try Self.write(Array(compressed[..<(compressed.count * 2 / 3)]), "truncated.xml.bz2", in: dir)
        let cutPage = try Self.write(Array(xml[..<(xml.count / 2)]), "cut.xml", in: dir)
        let pageEnd = Array(String(decoding: xml, as: UTF8.self).components(separatedBy: "</page>\n").dropLast().joined(separator: "</page>\n").utf8)
        let cutBetween = try Self.write(pageEnd + Array("</page>\n".utf8), "between.xml", in: dir)
        var corrupt = compressed
        corrupt[corrupt.count / 2] ^= 0xFF
        let corrupted = try Self.write(corrupt, "corrupt.xml.bz2", in: dir)
        for (path, message) in [(truncated, "truncated"), (cutPage, "ends inside a <page>"), (cutBetween, "ends before </mediawiki>"),
                                (corrupted, "bzip2")] {
            let out = dir + "/out-" + (path as NSString).lastPathComponent
            let run = try BertProgram.run(["wikiextract", "--input", path, "--output", out])
            #expect(run.status != 0)
            #expect(run.err.contains(path) && run.err.contains(message), "\(run.err)")
            #expect(run.err.split(separator: "\n").count == 1, "one line: \(run.err)")
            #expect(!FileManager.default.fileExists(atPath: out), "no partial output for \(path)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).allSatisfy { !$0.contains("partial") })
            let shards = dir + "/shards-" + (path as NSString).lastPathComponent
            let prepare = try BertProgram.run(["prepare", "--input", path, "--vocab-file", fixture("tokenizer/bert-base-uncased-vocab.txt"),
                                               "--output-dir", shards, "--max-seq-length", "32", "--dupe-factor", "1"])
            #expect(prepare.status != 0 && prepare.err.contains(message), "\(prepare.err)")
            let written = (try? FileManager.default.contentsOfDirectory(atPath: shards)) ?? []
            #expect(!written.contains { $0.hasSuffix(".hdf5") }, "no shard for \(path): \(written)")
        }
    }
}
