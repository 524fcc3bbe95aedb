import Foundation
import Testing
@testable import BERT

/// GLUE TSV reading (MRPC on the real dev file), pair truncation, features and metrics.
@Suite struct GLUETests {
    static let mrpcDev = sharedDatasets + "/mrpc/glue_MRPC/dev.tsv"
    static var mrpcPresent: Bool {
        let present = FileManager.default.fileExists(atPath: mrpcDev)
        if !present { print("note: \(mrpcDev) is absent; MRPC dev-set test skipped") }
        return present
    }

    @Test(.enabled(if: mrpcPresent)) func mrpcDevSet() throws {
        let examples = try GLUE.readMRPC(contentsOf: Self.mrpcDev, set: "dev")
        #expect(examples.count == 408)
        #expect(examples.filter { $0.label == "1" }.count == 279)
        #expect(examples.filter { $0.label == "0" }.count == 129)
        #expect(examples[0] == GLUEExample(
            guid: "dev-1", textA: "He said the foodservice pie business doesn 't fit the company 's long-term growth strategy .",
            textB: "\" The foodservice pie business does not fit our long-term growth strategy .", label: "1"))
        #expect(examples[1].label == "0" && examples[1].textA.hasPrefix("Magnarelli said Racicot hated the Iraqi regime"))
        #expect(examples[407].guid == "dev-408")
        let tokenizer = BertTokenizer(vocabulary: TokenizerFixtures.vocabulary, lowercase: true)
        let features = try GLUE.features(for: examples, labels: GLUE.mrpcLabels, tokenizer: tokenizer, maxSeqLength: 128)
        #expect(features.count == 408 && features.allSatisfy { $0.inputIds.count == 128 })
        #expect(features.map(\.labelId).filter { $0 == 1 }.count == 279)
        let first = features[0]
        let count = Int(first.inputMask.reduce(0, +))
        let (ids, segments) = tokenizer.encodeForModel(examples[0].textA, pair: examples[0].textB)
        #expect(Array(first.inputIds[0..<count]) == ids && Array(first.segmentIds[0..<count]) == segments)
    }

    @Test func tsvReading() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glue-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("train.tsv").path
        let text = "\u{FEFF}label\tsentence\r\n1\t\"quoted\" text\r\n\n0\tcafé\textra\n1\tlast"
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        let rows = try GLUE.readTSV(contentsOf: path)
        #expect(rows == [["label", "sentence"], ["1", "\"quoted\" text"], [""], ["0", "café", "extra"], ["1", "last"]])
        let examples = try GLUE.readExamples(contentsOf: path, set: "train", textA: 1, textB: nil, label: 0, skipHeader: true)
        #expect(examples.map(\.guid) == ["train-1", "train-3", "train-4"])
        #expect(examples.map(\.textA) == ["\"quoted\" text", "café", "last"] && examples.allSatisfy { $0.textB == nil })
        do {
            _ = try GLUE.readExamples(contentsOf: path, set: "train", textA: 1, textB: 2, label: 0, skipHeader: true)
            Issue.record("a short line was accepted")
        } catch let error as BertError {
            #expect(error.description.contains(path) && error.description.contains("line 2"), "\(error)")
        }
    }

    @Test func pairTruncation() {
        var a = [1, 2, 3, 4, 5, 6], b = [7, 8, 9]
        GLUE.truncatePair(&a, &b, maxLength: 7)
        #expect(a == [1, 2, 3, 4] && b == [7, 8, 9])
        // Equal lengths: b loses first.
        var c = [1, 2, 3], d = [4, 5, 6]
        GLUE.truncatePair(&c, &d, maxLength: 4)
        #expect(c == [1, 2] && d == [4, 5])
        var e = [1, 2, 3], f = [4, 5, 6]
        GLUE.truncatePair(&e, &f, maxLength: 5)
        #expect(e == [1, 2, 3] && f == [4, 5])
        var g: [Int] = [], h = [1, 2, 3]
        GLUE.truncatePair(&g, &h, maxLength: 0)
        #expect(g.isEmpty && h.isEmpty)
        var i = [1, 2], j = [3]
        GLUE.truncatePair(&i, &j, maxLength: 10)
        #expect(i == [1, 2] && j == [3])
    }

    @Test func featuresLayoutAndTruncation() throws {
        let tokenizer = BertTokenizer(vocabulary: TokenizerFixtures.vocabulary, lowercase: true)
        let vocab = tokenizer.vocabulary
        let long = GLUEExample(guid: "t-0", textA: "one two three four five six", textB: "seven eight", label: "1")
        let single = GLUEExample(guid: "t-1", textA: "one two three four five six", textB: nil, label: nil)
        let features = try GLUE.features(for: [long, single], labels: GLUE.mrpcLabels, tokenizer: tokenizer, maxSeqLength: 8)
        let id = { (w: String) in tokenizer.encode(w)[0] }
        #expect(features[0].inputIds == [vocab.clsId, id("one"), id("two"), id("three"), vocab.sepId, id("seven"),
                                         id("eight"), vocab.sepId])
        #expect(features[0].segmentIds == [0, 0, 0, 0, 0, 1, 1, 1] && features[0].inputMask == Array(repeating: 1, count: 8))
        #expect(features[0].labelId == 1)
        #expect(features[1].inputIds == [vocab.clsId, id("one"), id("two"), id("three"), id("four"), id("five"),
                                         id("six"), vocab.sepId])
        #expect(features[1].labelId == -1 && features[1].segmentIds == Array(repeating: 0, count: 8))
        let short = try GLUE.features(for: [GLUEExample(guid: "t-2", textA: "one", textB: "two", label: "0")],
                                      labels: GLUE.mrpcLabels, tokenizer: tokenizer, maxSeqLength: 8)[0]
        #expect(short.inputMask == [1, 1, 1, 1, 1, 0, 0, 0] && short.segmentIds == [0, 0, 0, 1, 1, 0, 0, 0])
        #expect(short.inputIds[5...].allSatisfy { $0 == 0 })
        #expect(throws: BertError.self) {
            try GLUE.features(for: [GLUEExample(guid: "t-3", textA: "a", textB: nil, label: "2")], labels: GLUE.mrpcLabels,
                              tokenizer: tokenizer, maxSeqLength: 8)
        }
    }

    @Test func accuracyAndF1() {
        // sklearn: accuracy_score([1,1,0,0,1], [1,0,0,1,1]) = 0.6; f1_score = 2·2/(2·2+1+1) = 0.6667.
        let m = ClassificationMetrics(predictions: [1, 0, 0, 1, 1], labels: [1, 1, 0, 0, 1])
        #expect(m.accuracy == 0.6 && m.f1 == 4.0 / 6.0 && m.precision == 2.0 / 3.0 && m.recall == 2.0 / 3.0)
        let none = ClassificationMetrics(predictions: [0, 0], labels: [1, 0])
        #expect(none.f1 == 0 && none.precision == 0 && none.accuracy == 0.5)
    }
}
