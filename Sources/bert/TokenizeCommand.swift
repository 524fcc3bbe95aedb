import ArgumentParser
import BERT
import Foundation

/// `bert tokenize`: text lines in, one JSON array of ids per line out (`[CLS] … [SEP]`).
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Tokenize text lines into BERT input ids (one JSON line per input line).",
        discussion: """
            Each input line becomes [CLS] text [SEP] as a JSON array of ids. With --pair each line is \
            "A<TAB>B" (split at the first tab) and becomes {"input_ids":[…],"segment_ids":[…]} for \
            [CLS] A [SEP] B [SEP]; a line without a tab is encoded as A alone.
            """)

    @Option(help: "The WordPiece vocabulary (vocab.txt).")
    var vocab: String

    @Flag(help: "Keep case and accents (cased models). The default lower-cases and strips accents.")
    var cased = false

    @Flag(help: "Lines are tab-separated sentence pairs.")
    var pair = false

    @Option(parsing: .unconditional, help: "Worker threads.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Argument(help: "Input text file (default: standard input).")
    var file: String?

    func validate() throws { try FlagCheck.positive("--threads", threads) }

    func run() throws {
        let vocabulary = try Vocabulary(contentsOf: vocab)
        let tokenizer = BertTokenizer(vocabulary: vocabulary, lowercase: !cased)
        let input: FileHandle
        if let file {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory), !isDirectory.boolValue,
                  let handle = FileHandle(forReadingAtPath: file) else {
                throw ValidationError("tokenize: \(file) is not a readable file")
            }
            input = handle
        } else {
            input = FileHandle.standardInput
        }
        var pending: [UInt8] = []
        let blockSize = 8 << 20
        while true {
            let data = input.readData(ofLength: blockSize)
            let atEnd = data.isEmpty
            pending.append(contentsOf: data)
            // Encode every complete line (all of it at the end of input).
            let cut: Int
            if atEnd { cut = pending.count } else if let last = pending.lastIndex(of: 10) { cut = last + 1 } else { continue }
            if cut > 0 {
                let output = pending.withUnsafeBufferPointer {
                    TokenizeCommand.encodeLines(UnsafeBufferPointer(rebasing: $0[0..<cut]), tokenizer: tokenizer,
                                                pair: pair, threads: threads)
                }
                try TokenizeCommand.writeStandardOutput(output)
                pending.removeSubrange(0..<cut)
            }
            if atEnd { break }
        }
    }

    /// Writes all of `bytes` to file descriptor 1.
    static func writeStandardOutput(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(1, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ValidationError("tokenize: cannot write the output (errno \(errno))")
                }
                offset += n
            }
        }
    }

    /// JSON output for every line in `text` (lines end at `\n`; a last line without one counts).
    static func encodeLines(_ text: UnsafeBufferPointer<UInt8>, tokenizer: BertTokenizer, pair: Bool,
                            threads: Int) -> [UInt8] {
        var lineStarts: [Int] = [0]
        for i in 0..<text.count where text[i] == 10 { lineStarts.append(i + 1) }
        if lineStarts.last == text.count { lineStarts.removeLast() }
        let lineCount = lineStarts.count
        if lineCount == 0 || text.isEmpty { return [] }
        let chunks = min(lineCount, threads * 16)
        var pieces = [[UInt8]](repeating: [], count: chunks)
        pieces.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let out = out
            nonisolated(unsafe) let text = text
            let lineStarts = lineStarts
            let work: @Sendable (Int) -> Void = { c in
                var bytes: [UInt8] = []
                var ids: [Int32] = [], idsB: [Int32] = []
                let lo = lineCount * c / chunks, hi = lineCount * (c + 1) / chunks
                for l in lo..<hi {
                    // The line without its `\n` (the last line may lack one).
                    var end = l + 1 < lineCount ? lineStarts[l + 1] - 1 : text.count
                    if end > lineStarts[l] && text[end - 1] == 10 { end -= 1 }
                    let line = UnsafeBufferPointer(rebasing: text[lineStarts[l]..<end])
                    var a = line, b: UnsafeBufferPointer<UInt8>? = nil
                    if pair, let tab = line.firstIndex(of: 9) {
                        a = UnsafeBufferPointer(rebasing: line[line.startIndex..<tab])
                        b = UnsafeBufferPointer(rebasing: line[(tab + 1)..<line.endIndex])
                    }
                    ids.removeAll(keepingCapacity: true)
                    ids.append(tokenizer.vocabulary.clsId)
                    tokenizer.encode(utf8: a, appendingTo: &ids)
                    ids.append(tokenizer.vocabulary.sepId)
                    let firstB = ids.count
                    if let b {
                        idsB.removeAll(keepingCapacity: true)
                        tokenizer.encode(utf8: b, appendingTo: &idsB)
                        ids.append(contentsOf: idsB)
                        ids.append(tokenizer.vocabulary.sepId)
                    }
                    if pair {
                        bytes.append(contentsOf: #"{"input_ids":"#.utf8)
                        appendJSON(ids, to: &bytes)
                        bytes.append(contentsOf: #","segment_ids":"#.utf8)
                        bytes.append(UInt8(ascii: "["))
                        for k in 0..<ids.count {
                            if k > 0 { bytes.append(UInt8(ascii: ",")) }
                            bytes.append(k < firstB ? UInt8(ascii: "0") : UInt8(ascii: "1"))
                        }
                        bytes.append(contentsOf: "]}\n".utf8)
                    } else {
                        appendJSON(ids, to: &bytes)
                        bytes.append(10)
                    }
                }
                out[c] = bytes
            }
            if threads == 1 { for c in 0..<chunks { work(c) } }
            else { DispatchQueue.concurrentPerform(iterations: chunks, execute: work) }
        }
        var output: [UInt8] = []
        output.reserveCapacity(pieces.reduce(0) { $0 + $1.count })
        for p in pieces { output.append(contentsOf: p) }
        return output
    }

    /// `[1,2,3]` without spaces.
    static func appendJSON(_ ids: [Int32], to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "["))
        var digits = [UInt8](repeating: 0, count: 12)
        for (k, id) in ids.enumerated() {
            if k > 0 { bytes.append(UInt8(ascii: ",")) }
            var v = Int(id)
            if v < 0 { bytes.append(UInt8(ascii: "-")); v = -v }
            var n = 0
            repeat { digits[n] = UInt8(48 + v % 10); v /= 10; n += 1 } while v > 0
            while n > 0 { n -= 1; bytes.append(digits[n]) }
        }
        bytes.append(UInt8(ascii: "]"))
    }
}
