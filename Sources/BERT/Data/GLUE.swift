import Foundation

/// One GLUE example: a sentence or a sentence pair and its label (`run_classifier.py`'s `InputExample`).
public struct GLUEExample: Sendable, Equatable {
    /// `"<set>-<line>"`, the line number counted from 0 with the header (as run_classifier.py names them).
    public let guid: String
    /// The first (or only) sentence.
    public let textA: String
    /// The second sentence of a pair.
    public let textB: String?
    /// The label as written in the file; nil for an unlabelled test set.
    public let label: String?

    /// An example with every field given.
    public init(guid: String, textA: String, textB: String?, label: String?) {
        self.guid = guid
        self.textA = textA
        self.textB = textB
        self.label = label
    }
}

/// One classification input: `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]` padded to S.
public struct ClassificationFeature: Sendable, Equatable {
    /// Token ids, `[S]`, padded with 0.
    public let inputIds: [Int32]
    /// 1 for real tokens, 0 for padding, `[S]`.
    public let inputMask: [Int32]
    /// 0 for `[CLS] a [SEP]`, 1 for `b [SEP]`, 0 for padding, `[S]`.
    public let segmentIds: [Int32]
    /// The label's index in the task's label list; -1 for an unlabelled example.
    public let labelId: Int32
}

/// GLUE task files (`run_classifier.py`'s processors) and their features and metrics.
public enum GLUE {
    /// MRPC's labels: 0 not a paraphrase, 1 a paraphrase.
    public static let mrpcLabels = ["0", "1"]

    /// Reads a tab-separated file as `csv.reader(delimiter="\t", quotechar=None)` does: lines end at
    /// `\n`, `\r\n` or `\r`, fields are split at every tab, quotes are plain characters. A UTF-8 byte-order
    /// mark at the start is dropped.
    /// - Throws: `BertError.io` naming the file when it cannot be read or is not UTF-8.
    public static func readTSV(contentsOf path: String) throws -> [[String]] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BertError.io("glue \(path): cannot read the file (missing or unreadable)")
        }
        guard var text = String(data: data, encoding: .utf8) else {
            throw BertError.invalidInput("glue \(path): the file is not UTF-8 text")
        }
        if text.unicodeScalars.first == "\u{FEFF}" { text.unicodeScalars.removeFirst() }
        var rows: [[String]] = []
        var line = String.UnicodeScalarView()
        var previousCR = false
        func endLine() {
            rows.append(String(line).split(separator: "\t", omittingEmptySubsequences: false).map(String.init))
            line = String.UnicodeScalarView()
        }
        for c in text.unicodeScalars {
            if c == "\n" {
                if !previousCR { endLine() }
                previousCR = false
            } else if c == "\r" {
                endLine()
                previousCR = true
            } else {
                line.append(c)
                previousCR = false
            }
        }
        if !line.isEmpty { endLine() }
        return rows
    }

    /// Reads an MRPC file of GLUE (`Quality  #1 ID  #2 ID  #1 String  #2 String`, the header skipped), as
    /// `MrpcProcessor` does: text A from column 3, text B from column 4, the label from column 0 (none for
    /// `test`, whose first column is an index).
    /// - Parameters:
    ///   - path: `train.tsv`, `dev.tsv` or `test.tsv`.
    ///   - set: `"train"`, `"dev"` or `"test"`: the guid prefix; `"test"` reads no labels.
    public static func readMRPC(contentsOf path: String, set: String) throws -> [GLUEExample] {
        try readExamples(contentsOf: path, set: set, textA: 3, textB: 4, label: set == "test" ? nil : 0,
                         skipHeader: true)
    }

    /// Reads a sentence or sentence-pair task from a TSV by column index (0-based).
    /// - Parameters:
    ///   - path: the file.
    ///   - set: the guid prefix.
    ///   - textA: the column of the first sentence.
    ///   - textB: the column of the second sentence, nil for single-sentence tasks.
    ///   - label: the label's column, nil for an unlabelled file.
    ///   - skipHeader: drop the first line.
    /// - Throws: `BertError.invalidInput` naming the file and line when a line has too few columns.
    public static func readExamples(contentsOf path: String, set: String, textA: Int, textB: Int?, label: Int?,
                                    skipHeader: Bool) throws -> [GLUEExample] {
        let rows = try readTSV(contentsOf: path)
        let needed = [textA, textB ?? 0, label ?? 0].max()! + 1
        var examples: [GLUEExample] = []
        for (i, row) in rows.enumerated() {
            if i == 0 && skipHeader { continue }
            if row.count == 1 && row[0].isEmpty { continue }
            guard row.count >= needed else {
                throw BertError.invalidInput(
                    "glue \(path): line \(i + 1) has \(row.count) tab-separated columns; \(needed) are needed")
            }
            examples.append(GLUEExample(guid: "\(set)-\(i)", textA: row[textA], textB: textB.map { row[$0] },
                                        label: label.map { row[$0] }))
        }
        return examples
    }

    /// `_truncate_seq_pair`: drops the last token of the longer sequence (of `b` when they are equally
    /// long) until the two together hold at most `maxLength` tokens.
    public static func truncatePair<T>(_ a: inout [T], _ b: inout [T], maxLength: Int) {
        while a.count + b.count > maxLength {
            if a.count > b.count { a.removeLast() } else { b.removeLast() }
        }
    }

    /// The features of `examples` (`convert_single_example`): text A and B tokenized, cut to fit
    /// `maxSeqLength` with `truncatePair` (a single sentence to `maxSeqLength - 2`), laid out as `[CLS] a
    /// [SEP] b [SEP]` and padded with 0.
    /// - Parameters:
    ///   - examples: the examples.
    ///   - labels: the task's labels; a label's index is its id.
    ///   - tokenizer: the model's tokenizer.
    ///   - maxSeqLength: S.
    /// - Throws: `BertError.invalidInput` for a label not in `labels`.
    public static func features(for examples: [GLUEExample], labels: [String], tokenizer: BertTokenizer,
                                maxSeqLength: Int) throws -> [ClassificationFeature] {
        let vocabulary = tokenizer.vocabulary
        return try examples.map { example in
            var a = tokenizer.encode(example.textA)
            var b = example.textB.map { tokenizer.encode($0) } ?? []
            if example.textB != nil {
                truncatePair(&a, &b, maxLength: maxSeqLength - 3)
            } else if a.count > maxSeqLength - 2 {
                a.removeSubrange((maxSeqLength - 2)...)
            }
            var ids = [vocabulary.clsId] + a + [vocabulary.sepId]
            var segments = [Int32](repeating: 0, count: ids.count)
            if example.textB != nil {
                ids += b + [vocabulary.sepId]
                segments += [Int32](repeating: 1, count: b.count + 1)
            }
            let count = ids.count
            ids += [Int32](repeating: 0, count: maxSeqLength - count)
            segments += [Int32](repeating: 0, count: maxSeqLength - count)
            let mask = [Int32](repeating: 1, count: count) + [Int32](repeating: 0, count: maxSeqLength - count)
            var labelId: Int32 = -1
            if let label = example.label {
                guard let index = labels.firstIndex(of: label) else {
                    throw BertError.invalidInput(
                        "glue example \(example.guid): label \"\(label)\" is not one of \(labels.joined(separator: ", "))")
                }
                labelId = Int32(index)
            }
            return ClassificationFeature(inputIds: ids, inputMask: mask, segmentIds: segments, labelId: labelId)
        }
    }
}

/// Accuracy and the F1 of one positive class (GLUE's MRPC and QQP metrics).
public struct ClassificationMetrics: Sendable, Equatable {
    /// Examples scored.
    public let count: Int
    /// Fraction of predictions equal to the label.
    public let accuracy: Double
    /// Of the predicted positives, the fraction that are positive (0 when none is predicted).
    public let precision: Double
    /// Of the positives, the fraction predicted positive (0 when there are none).
    public let recall: Double
    /// 2·TP / (2·TP + FP + FN), 0 when TP = 0 (scikit-learn's `f1_score`).
    public let f1: Double

    /// - Parameters:
    ///   - predictions: predicted label ids.
    ///   - labels: gold label ids, as many as `predictions`.
    ///   - positive: the positive class (1 for MRPC).
    public init(predictions: [Int], labels: [Int], positive: Int = 1) {
        precondition(predictions.count == labels.count, "one prediction per label")
        var correct = 0, tp = 0, fp = 0, fn = 0
        for (p, l) in zip(predictions, labels) {
            if p == l { correct += 1 }
            if p == positive && l == positive { tp += 1 }
            if p == positive && l != positive { fp += 1 }
            if p != positive && l == positive { fn += 1 }
        }
        count = labels.count
        accuracy = labels.isEmpty ? 0 : Double(correct) / Double(labels.count)
        precision = tp + fp == 0 ? 0 : Double(tp) / Double(tp + fp)
        recall = tp + fn == 0 ? 0 : Double(tp) / Double(tp + fn)
        f1 = tp == 0 ? 0 : Double(2 * tp) / Double(2 * tp + fp + fn)
    }

    /// `{"accuracy": …, "f1": …, "count": …}`.
    public var json: String {
        "{\"accuracy\": \(PythonText.floatLiteral(accuracy)), \"f1\": \(PythonText.floatLiteral(f1)), \"count\": \(count)}"
    }
}
