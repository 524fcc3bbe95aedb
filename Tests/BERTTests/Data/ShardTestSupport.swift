import Foundation
@testable import BERT

/// Fixtures of the data tests: `Tests/Fixtures/shards/`, found from this file's path.
enum ShardFixtures {
    static let directory: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/shards").path

    static func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// The reference vocabulary (the tokens of reference_input.txt plus the specials).
    static func referenceTokens() throws -> [String] {
        try String(contentsOfFile: path("reference_vocab.txt"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    static func maskingVocabulary(_ tokens: [String]) -> MaskingVocabulary {
        MaskingVocabulary(clsId: Int32(tokens.firstIndex(of: "[CLS]")!), sepId: Int32(tokens.firstIndex(of: "[SEP]")!),
                          maskId: Int32(tokens.firstIndex(of: "[MASK]")!), tokens: tokens)
    }

    /// A whitespace "tokenizer" over a token list (the fixture input is already WordPiece tokens).
    static func encoder(_ tokens: [String]) -> @Sendable (String) -> [Int32] {
        var index: [String: Int32] = [:]
        for (i, t) in tokens.enumerated() where index[t] == nil { index[t] = Int32(i) }
        let frozen = index
        return { text in text.split(separator: " ").map { frozen[String($0)] ?? 1 } }
    }

    /// reference_input.txt as tokenized documents.
    static func referenceDocuments(_ tokens: [String]) throws -> [TokenizedDocument] {
        let encode = encoder(tokens)
        var docs: [TokenizedDocument] = []
        try CorpusReader.forEachDocument(path: path("reference_input.txt"), format: .google) { sentences in
            docs.append(TokenizedDocument(sentences: sentences.map(encode)))
        }
        return docs
    }

    /// A fresh empty directory under the system's temporary directory.
    static func temporaryDirectory(_ tag: String) throws -> String {
        let dir = (NSTemporaryDirectory() as NSString)
            .appendingPathComponent("swift-bert-\(tag)-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}
