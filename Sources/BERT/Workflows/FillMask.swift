import Foundation

/// The masked-LM head's guesses for each `[MASK]` of a text, as transformers' `fill-mask` pipeline gives them: the
/// softmax over the whole vocabulary at each masked position, its `k` most probable tokens first.
public struct FillMask {
    /// One guess for one `[MASK]`: HF's `token` (the id), `token_str` and `score`.
    public struct Candidate: Equatable, Sendable {
        public var tokenId: Int
        public var token: String
        public var score: Double
    }

    public let model: BertForPreTraining
    public let tokenizer: BertTokenizer

    /// Loads a checkpoint with a masked-LM head (ours, or HF `BertForPreTraining` / `BertForMaskedLM`: the NSP head
    /// may be absent).
    /// - Parameters:
    ///   - vocabFile: the vocabulary; nil takes `vocab.txt` in the checkpoint directory.
    ///   - lowercase: nil takes `do_lower_case` from the directory's `tokenizer_config.json`, else uncased.
    /// - Throws: `BertError.invalidCheckpoint` when the checkpoint has no masked-LM head; the loaders' errors for a
    ///   missing or malformed file, or a vocabulary whose size is not the config's.
    public init(checkpoint: String, vocabFile: String? = nil, lowercase: Bool? = nil) throws {
        _ = try Checkpoint.config(in: checkpoint)   // a directory without config.json is named as such first
        let weights = try Safetensors.File(path: (checkpoint as NSString).appendingPathComponent(Checkpoint.weightsFile))
        guard weights.entries.keys.contains(where: { $0.hasPrefix("cls.predictions.") }) else {
            throw BertError.invalidCheckpoint("\(checkpoint) has no masked-LM head (no cls.predictions.* tensors): "
                                              + "fill-mask needs a BertForPreTraining or BertForMaskedLM checkpoint")
        }
        let (model, report) = try BertForPreTraining.load(directory: checkpoint, allowMissingHeads: true)
        let missingHead = report.missing.filter { $0.hasPrefix("cls.predictions.") }
        guard missingHead.isEmpty else {
            throw BertError.invalidCheckpoint("\(checkpoint): the masked-LM head lacks \(missingHead.joined(separator: ", "))")
        }
        let vocabPath = vocabFile ?? (checkpoint as NSString).appendingPathComponent("vocab.txt")
        guard FileManager.default.fileExists(atPath: vocabPath) else {
            throw BertError.io("\(vocabPath): no such file; give the vocabulary the model was trained with (--vocab-file)")
        }
        let vocabulary = try Vocabulary(contentsOf: vocabPath)
        try vocabulary.requireSize(model.config.vocabSize, path: vocabPath, of: checkpoint)
        self.model = model
        tokenizer = BertTokenizer(vocabulary: vocabulary, lowercase: lowercase ?? Self.lowercase(in: checkpoint) ?? true)
    }

    /// `do_lower_case` of the `tokenizer_config.json` in `directory`, when there is one that says.
    static func lowercase(in directory: String) -> Bool? {
        let path = (directory as NSString).appendingPathComponent("tokenizer_config.json")
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return object["do_lower_case"] as? Bool
    }

    /// The `topK` guesses for every `[MASK]` of every text: `result[text][mask]`, masks in text order. Texts run in
    /// batches of `batchSize`, each padded to its longest text (padding changes no logit: padded keys are masked).
    /// - Throws: `BertError.invalidInput` naming the text (1-based) that has no `[MASK]` or more tokens than the
    ///   model's positions.
    public func predict(_ texts: [String], topK: Int, batchSize: Int = 32) throws -> [[[Candidate]]] {
        precondition(topK > 0 && batchSize > 0, "FillMask.predict: topK and batchSize must be positive")
        let vocabulary = tokenizer.vocabulary, maxLength = model.config.maxPositionEmbeddings
        let encoded = try texts.enumerated().map { i, text in
            let ids = tokenizer.encodeForModel(text, pair: nil).ids
            guard ids.contains(vocabulary.maskId) else {
                throw BertError.invalidInput("text \(i + 1) has no [MASK] token: \(text.prefix(80))")
            }
            guard ids.count <= maxLength else {
                throw BertError.invalidInput("text \(i + 1) is \(ids.count) tokens with [CLS] and [SEP], more than the "
                                             + "model's \(maxLength) positions: shorten it")
            }
            return ids
        }
        var results: [[[Candidate]]] = []
        for start in stride(from: 0, to: encoded.count, by: batchSize) {
            let rows = Array(encoded[start..<min(encoded.count, start + batchSize)])
            results += try predictBatch(rows, topK: topK)
        }
        return results
    }

    private func predictBatch(_ rows: [[Int32]], topK: Int) throws -> [[[Candidate]]] {
        let B = rows.count, S = rows.map(\.count).max()!, maskId = tokenizer.vocabulary.maskId
        let positions = rows.map { ids in ids.indices.filter { ids[$0] == maskId }.map(Int32.init) }
        let P = positions.map(\.count).max()!
        var inputIds = [Int32](repeating: 0, count: B * S), inputMask = inputIds
        var maskedPositions = [Int32](repeating: 0, count: B * P)
        for (b, ids) in rows.enumerated() {
            for (s, id) in ids.enumerated() { inputIds[b * S + s] = id; inputMask[b * S + s] = 1 }
            for (k, p) in positions[b].enumerated() { maskedPositions[b * P + k] = p }
        }
        let batch = PretrainingBatch(batchSize: B, seqLength: S, maxPredictions: P, inputIds: inputIds,
                                     segmentIds: [Int32](repeating: 0, count: B * S), inputMask: inputMask,
                                     maskedLMPositions: maskedPositions, maskedLMIds: [Int32](repeating: 0, count: B * P),
                                     nextSentenceLabels: [Int32](repeating: 0, count: B))
        _ = try model.forward(batch)
        let logits = model.mlmLogits(), V = model.config.vocabSize
        var row = 0   // the logits hold the masked rows in batch order
        return positions.map { masks in
            masks.map { _ in
                defer { row += 1 }
                return Self.top(topK, of: logits[(row * V)..<((row + 1) * V)], tokens: tokenizer.vocabulary.tokens)
            }
        }
    }

    /// The `k` most probable tokens of the softmax of `logits` (ties: the lower id first).
    static func top(_ k: Int, of logits: ArraySlice<Float>, tokens: [String]) -> [Candidate] {
        let base = logits.startIndex
        let maxLogit = Double(logits.max()!)
        let sum = logits.reduce(0.0) { $0 + exp(Double($1) - maxLogit) }
        let best = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }.prefix(k)
        return best.map { i in
            Candidate(tokenId: i - base, token: tokens[i - base], score: exp(Double(logits[i]) - maxLogit) / sum)
        }
    }
}
