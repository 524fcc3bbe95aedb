import Foundation

/// A WordPiece vocabulary: one token per line, the line number (from 0) is the id.
///
/// The layout is BERT's `vocab.txt`: word-initial pieces as they are, continuation pieces with a `##`
/// prefix. `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]` and `[PAD]` must be present.
public struct Vocabulary: Sendable {
    /// Errors from reading or building a vocabulary; each names what to fix.
    public struct Error: Swift.Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// The special tokens every BERT vocabulary holds.
    public static let specialTokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

    /// Tokens by id.
    public let tokens: [String]
    /// `[PAD] [UNK] [CLS] [SEP] [MASK]` ids, in `specialTokens` order.
    let specialIds: [Int32]
    /// The lookup structure the tokenizer's WordPiece step uses.
    let index: WordpieceIndex

    /// Reads a `vocab.txt`: one token per line (trailing whitespace and `\r` are trimmed, as HF does).
    /// - Parameter path: the file.
    /// - Throws: `Vocabulary.Error` naming the file when it is missing, empty, has an empty line, a
    ///   duplicate token, or lacks one of the special tokens.
    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Error(description: "vocabulary \(path): cannot read the file (missing or unreadable)")
        }
        // Split on `\n` bytes (a `String` split would keep "\r\n", one grapheme, whole), then trim
        // trailing whitespace scalars (Rust `trim_end`, as HF does).
        var lines: [String] = []
        lines.reserveCapacity(data.count / 8)
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            var start = 0
            while start <= bytes.count {
                var end = start
                while end < bytes.count && bytes[end] != 10 { end += 1 }
                let line = UnsafeBufferPointer(rebasing: bytes[start..<end])
                // Most lines end in an ASCII byte that is not white space: nothing to trim, decode them whole.
                if let last = line.last, last > 0x20, last < 0x80 {
                    lines.append(String(decoding: line, as: UTF8.self))
                } else {
                    var scalars = Substring(decoding: line, as: UTF8.self).unicodeScalars
                    while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() }
                    lines.append(String(String.UnicodeScalarView(scalars)))
                }
                start = end + 1
            }
        }
        if lines.last == "" { lines.removeLast() }
        if lines.isEmpty { throw Error(description: "vocabulary \(path): the file is empty") }
        do {
            try self.init(tokens: lines)
        } catch let error as Error {
            throw Error(description: "vocabulary \(path): \(error.description)")
        }
    }

    /// Builds a vocabulary from tokens in id order.
    /// - Throws: `Vocabulary.Error` when `tokens` is empty, has an empty or duplicate token, or lacks a
    ///   special token.
    public init(tokens: [String]) throws {
        if tokens.isEmpty { throw Error(description: "no tokens") }
        if let empty = tokens.firstIndex(where: \.isEmpty) { throw Error(description: "line \(empty + 1) is empty") }
        let index = WordpieceIndex(tokens: tokens)
        if let (first, second) = index.firstDuplicate {
            throw Error(description: "duplicate token \"\(tokens[Int(second)])\" on lines \(first + 1) and \(second + 1)")
        }
        var specialIds: [Int32] = []
        for special in Vocabulary.specialTokens {
            guard let id = index.id(of: special) else { throw Error(description: "no \(special) token") }
            specialIds.append(id)
        }
        self.tokens = tokens
        self.specialIds = specialIds
        self.index = index
    }

    /// The number of tokens.
    public var count: Int { tokens.count }

    /// The id of `token`, or nil when it is not in the vocabulary.
    public func id(of token: String) -> Int32? { index.id(of: token) }

    /// `[UNK]`
    public var unknownId: Int32 { specialIds[1] }
    /// `[CLS]`
    public var clsId: Int32 { specialIds[2] }
    /// `[SEP]`
    public var sepId: Int32 { specialIds[3] }
    /// `[MASK]`
    public var maskId: Int32 { specialIds[4] }
    /// `[PAD]`
    public var padId: Int32 { specialIds[0] }

    /// Refuses to pair this vocabulary (read from `path`) with a model of another `vocab_size`: its ids would be
    /// another model's tokens, and every answer wrong without a word.
    /// - Throws: `BertError.invalidInput` naming the file, both sizes and `model` (a checkpoint, or "the model").
    public func requireSize(_ vocabSize: Int, path: String, of model: String) throws {
        guard count == vocabSize else {
            throw BertError.invalidInput("\(path) has \(count) tokens but \(model) has vocab_size \(vocabSize): "
                                         + "give the vocabulary the model was trained with")
        }
    }

    /// Writes the tokens one per line (each line ends with `\n`).
    /// - Throws: when the file cannot be written.
    public func write(to path: String) throws {
        var text = tokens.joined(separator: "\n")
        text.append("\n")
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw Error(description: "vocabulary \(path): cannot write the file: \(error.localizedDescription)")
        }
    }
}
