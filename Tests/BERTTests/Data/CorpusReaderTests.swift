import Foundation
import Testing
@testable import BERT

@Suite struct CorpusReaderTests {
    @Test func segmenterSplitsAtSentenceEnds() {
        #expect(SentenceSegmenter.split("It rained. Then it stopped! Did it? \"Yes.\" (It did.) 1999 was dry.")
                == ["It rained.", "Then it stopped!", "Did it?", "\"Yes.\"", "(It did.)", "1999 was dry."])
        #expect(SentenceSegmenter.split("He said “Go.” Then he left.") == ["He said “Go.”", "Then he left."])
        #expect(SentenceSegmenter.split("Wait... What?! Él llegó.") == ["Wait...", "What?!", "Él llegó."])
    }

    @Test func segmenterKeepsAbbreviations() {
        for text in ["Mr. Smith met Dr. Jones at St. Paul in Jan. 1990.",
                     "Fruit, e.g. Apples, and i.e. Pears.",
                     "The U.S. Army and the U.K. Navy.",
                     "J. R. R. Tolkien wrote it.",
                     "Cats, dogs, etc. Are pets.",
                     "it ended in 3 p.m. Today."] {
            #expect(SentenceSegmenter.split(text) == [text], "\(text)")
        }
        #expect(SentenceSegmenter.split("no capital. after this") == ["no capital. after this"])
        #expect(SentenceSegmenter.split("  ") == [])
    }

    static func write(_ text: String, _ name: String, in dir: String) throws -> String {
        let path = dir + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func documents(_ path: String, _ format: CorpusFormat) throws -> [[String]] {
        var docs: [[String]] = []
        try CorpusReader.forEachDocument(path: path, format: format) { docs.append($0) }
        return docs
    }

    @Test func readsTheThreeFormatsAndDetectsThem() throws {
        let dir = try ShardFixtures.temporaryDirectory("corpus")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let google = try Self.write("First sentence.\nSecond one.\n\n\nOther doc.\n", "g.txt", in: dir)
        let nvidia = try Self.write("Doc one. Has two sentences.\nDoc two is one sentence.\n", "n.txt", in: dir)
        let wiki = try Self.write("""
            <doc id="12" url="http://en.wikipedia.org/wiki?curid=12" title="Anarchism">
            Anarchism

            Anarchism is a philosophy. It has many currents.
            Etymology.
            </doc>
            <doc id="25" url="x" title="Autism">
            Autism

            Autism is a disorder.
            </doc>

            """, "wiki_00", in: dir)
        #expect(try Self.documents(google, .google) == [["First sentence.", "Second one."], ["Other doc."]])
        #expect(try Self.documents(nvidia, .nvidia) == [["Doc one.", "Has two sentences."], ["Doc two is one sentence."]])
        #expect(try Self.documents(wiki, .wikiextractor)
                == [["Anarchism is a philosophy.", "It has many currents.", "Etymology."], ["Autism is a disorder."]])
        #expect(CorpusReader.detectFormat(path: google) == .google)
        #expect(CorpusReader.detectFormat(path: nvidia) == .nvidia)
        #expect(CorpusReader.detectFormat(path: wiki) == .wikiextractor)
        #expect(try Self.documents(wiki, .auto) == Self.documents(wiki, .wikiextractor))

        // Directories (recursively, sorted, hidden files skipped) and globs.
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        _ = try Self.write("x", "sub/b.txt", in: dir)
        _ = try Self.write("x", ".hidden", in: dir)
        #expect(try CorpusReader.expand([dir]) == [dir + "/g.txt", dir + "/n.txt", dir + "/sub/b.txt", dir + "/wiki_00"])
        #expect(try CorpusReader.expand([dir + "/*.txt", google]) == [dir + "/g.txt", dir + "/n.txt"])
        #expect(throws: ShardError.self) { _ = try CorpusReader.expand([dir + "/nothing*"]) }
    }
}
