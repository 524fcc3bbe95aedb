import BERTKernels
import Foundation

/// A BERT architecture, decoded from and encoded to Hugging Face `config.json` / Google's and NVIDIA's
/// `bert_config.json` with their keys unchanged. Unknown keys are ignored; `layer_norm_eps` defaults to 1e-12
/// (Google's files omit it).
public struct BertConfig: Codable, Equatable, Sendable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var intermediateSize: Int
    /// HF meaning: `gelu` is the exact erf form; `gelu_new`, `gelu_pytorch_tanh` (and `gelu_fast`) the tanh form.
    public var hiddenAct: String
    public var hiddenDropoutProb: Float
    public var attentionProbsDropoutProb: Float
    public var maxPositionEmbeddings: Int
    public var typeVocabSize: Int
    public var initializerRange: Float
    public var layerNormEps: Float
    /// The padding token's id: its word-embedding row gets no gradient (HF's `padding_idx`). HF's default 0 when the
    /// key is absent (Google's files omit it); nil (`null`) for none.
    public var padTokenId: Int?
    /// The sequence classifier's dropout on the pooled output; nil (HF's default) means `hidden_dropout_prob`.
    public var classifierDropout: Float?

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", intermediateSize = "intermediate_size"
        case hiddenAct = "hidden_act", hiddenDropoutProb = "hidden_dropout_prob"
        case attentionProbsDropoutProb = "attention_probs_dropout_prob"
        case maxPositionEmbeddings = "max_position_embeddings", typeVocabSize = "type_vocab_size"
        case initializerRange = "initializer_range", layerNormEps = "layer_norm_eps"
        case classifierDropout = "classifier_dropout", padTokenId = "pad_token_id"
    }

    public init(vocabSize: Int = 30522, hiddenSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
                intermediateSize: Int, hiddenAct: String = "gelu", hiddenDropoutProb: Float = 0.1,
                attentionProbsDropoutProb: Float = 0.1, maxPositionEmbeddings: Int = 512, typeVocabSize: Int = 2,
                initializerRange: Float = 0.02, layerNormEps: Float = 1e-12, padTokenId: Int? = 0, classifierDropout: Float? = nil) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.intermediateSize = intermediateSize
        self.hiddenAct = hiddenAct
        self.hiddenDropoutProb = hiddenDropoutProb
        self.attentionProbsDropoutProb = attentionProbsDropoutProb
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.typeVocabSize = typeVocabSize
        self.initializerRange = initializerRange
        self.layerNormEps = layerNormEps
        self.padTokenId = padTokenId
        self.classifierDropout = classifierDropout
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(vocabSize: try c.decode(Int.self, forKey: .vocabSize),
                  hiddenSize: try c.decode(Int.self, forKey: .hiddenSize),
                  numHiddenLayers: try c.decode(Int.self, forKey: .numHiddenLayers),
                  numAttentionHeads: try c.decode(Int.self, forKey: .numAttentionHeads),
                  intermediateSize: try c.decode(Int.self, forKey: .intermediateSize),
                  hiddenAct: try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "gelu",
                  hiddenDropoutProb: try c.decodeIfPresent(Float.self, forKey: .hiddenDropoutProb) ?? 0.1,
                  attentionProbsDropoutProb: try c.decodeIfPresent(Float.self, forKey: .attentionProbsDropoutProb) ?? 0.1,
                  maxPositionEmbeddings: try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 512,
                  typeVocabSize: try c.decodeIfPresent(Int.self, forKey: .typeVocabSize) ?? 2,
                  initializerRange: try c.decodeIfPresent(Float.self, forKey: .initializerRange) ?? 0.02,
                  layerNormEps: try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? 1e-12,
                  padTokenId: c.contains(.padTokenId) ? try c.decodeIfPresent(Int.self, forKey: .padTokenId) : 0,
                  classifierDropout: try c.decodeIfPresent(Float.self, forKey: .classifierDropout))
    }

    /// H / A.
    public var headSize: Int { hiddenSize / numAttentionHeads }

    /// The vocabulary rounded up to a multiple of 8, as NVIDIA pads it: the word-embedding table and the MLM bias are
    /// this long in memory (the extra rows stay zero and never reach a checkpoint).
    public var paddedVocabSize: Int { (vocabSize + 7) / 8 * 8 }

    /// The kernel for `hidden_act`.
    public func activation() throws -> Activation {
        switch hiddenAct {
        case "gelu": return .geluErf
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": return .geluTanh
        case "relu": return .relu
        case "tanh": return .tanh
        default: throw BertError.invalidConfig("hidden_act \"\(hiddenAct)\" is not supported (use gelu, gelu_new, gelu_pytorch_tanh or relu)")
        }
    }

    /// Checks the sizes are usable; the error names the key at fault.
    public func validate() throws {
        for (key, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("num_hidden_layers", numHiddenLayers),
                             ("num_attention_heads", numAttentionHeads), ("intermediate_size", intermediateSize),
                             ("max_position_embeddings", maxPositionEmbeddings), ("type_vocab_size", typeVocabSize)] where value <= 0 {
            throw BertError.invalidConfig("\(key) must be positive, got \(value)")
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw BertError.invalidConfig("hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
        }
        for (key, p) in [("hidden_dropout_prob", hiddenDropoutProb), ("attention_probs_dropout_prob", attentionProbsDropoutProb),
                         ("classifier_dropout", classifierDropout ?? 0)] where !(0..<1).contains(p) {
            throw BertError.invalidConfig("\(key) must be in [0, 1), got \(p)")
        }
        if let padTokenId, !(0..<vocabSize).contains(padTokenId) {
            throw BertError.invalidConfig("pad_token_id \(padTokenId) is outside the vocabulary [0, \(vocabSize))")
        }
        _ = try activation()
        // Counted in Double, which cannot overflow: sizes that fit in memory then fit every Int product made of them.
        let H = Double(hiddenSize), I = Double(intermediateSize)
        let parameters = (Double(vocabSize) + Double(maxPositionEmbeddings) + Double(typeVocabSize) + 16) * H
            + Double(numHiddenLayers) * (4 * H * H + 2 * H * I + 9 * H + I) + 2 * H * H + 8 * H
        let memory = Double(ProcessInfo.processInfo.physicalMemory)
        guard parameters * 4 <= memory else {
            throw BertError.invalidConfig(String(format: "these sizes make %.3g parameters, %.1f GiB of float32 weights alone, "
                                                 + "more than this machine's %.1f GiB of memory", parameters, parameters * 4 / 1_073_741_824,
                                                 memory / 1_073_741_824))
        }
    }

    /// Reads a `config.json` / `bert_config.json`.
    public static func load(contentsOf path: String) throws -> BertConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BertError.io("cannot read config file \(path)")
        }
        let config: BertConfig
        do { config = try JSONDecoder().decode(BertConfig.self, from: data) } catch {
            throw BertError.invalidConfig("\(path) is not a BERT config: \(notAWholeNumber(in: data) ?? describe(error))")
        }
        try config.validate()
        return config
    }

    /// The first size in valid JSON that is not a whole number (`"hidden_size": 128.5`), which Foundation's decoder
    /// reports as "not valid JSON".
    static func notAWholeNumber(in data: Data) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        let sizes: [CodingKeys] = [.vocabSize, .hiddenSize, .numHiddenLayers, .numAttentionHeads, .intermediateSize,
                                   .maxPositionEmbeddings, .typeVocabSize, .padTokenId]
        for key in sizes {
            guard let value = object[key.rawValue], !(value is NSNull) else { continue }
            if let number = value as? NSNumber, !(number is Bool), let whole = Int(exactly: number.doubleValue),
               Double(whole) == number.doubleValue { continue }
            return "\"\(key.rawValue)\": \(value) is not a whole number"
        }
        return nil
    }

    /// Writes HF `config.json` keys (plus `model_type` and `architectures` so transformers recognises it).
    public func write(to path: String, architectures: [String] = ["BertForPreTraining"], extra: [String: Any] = [:]) throws {
        var object: [String: Any] = [
            "vocab_size": vocabSize, "hidden_size": hiddenSize, "num_hidden_layers": numHiddenLayers,
            "num_attention_heads": numAttentionHeads, "intermediate_size": intermediateSize, "hidden_act": hiddenAct,
            "hidden_dropout_prob": Double(hiddenDropoutProb), "attention_probs_dropout_prob": Double(attentionProbsDropoutProb),
            "max_position_embeddings": maxPositionEmbeddings, "type_vocab_size": typeVocabSize,
            "initializer_range": Double(initializerRange), "layer_norm_eps": Double(layerNormEps),
            "model_type": "bert", "architectures": architectures, "pad_token_id": padTokenId.map { $0 as Any } ?? NSNull(),
        ]
        if let classifierDropout { object["classifier_dropout"] = Double(classifierDropout) }
        object.merge(extra) { _, new in new }
        try writeFileAtomically(try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]), to: path)
    }
}

/// Renders a decoding error as one line that names the key.
func describe(_ error: Error) -> String {
    switch error {
    case DecodingError.keyNotFound(let key, _): return "missing key \"\(key.stringValue)\""
    case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
         DecodingError.dataCorrupted(let context):
        let path = context.codingPath.map(\.stringValue).joined(separator: ".")
        return path.isEmpty ? context.debugDescription : "\"\(path)\": \(context.debugDescription)"
    default: return "\(error)"
    }
}
