/// One named tensor inside the flat parameter buffer.
public struct ParameterTensor: Sendable, Equatable {
    /// Hugging Face name, e.g. `bert.encoder.layer.0.attention.self.query.weight`.
    public let name: String
    /// Shape as checkpoints store it (PyTorch layout, Linear weights `[out, in]`).
    public let shape: [Int]
    /// Offset in the flat buffer, in floats (64-byte aligned).
    public let offset: Int
    /// Floats held in memory: the shape's product, or more where the vocabulary is padded (the extra rows follow
    /// the real ones, so the checkpoint tensor is always the first `count` floats).
    public let storedCount: Int
    /// Decoupled weight decay applies (not to biases and LayerNorm parameters, as in BERT).
    public let weightDecay: Bool

    public var count: Int { shape.reduce(1, *) }
}

/// The parameters of a model: an ordered list of named views into one flat buffer. The gradient and optimizer
/// buffers use the same layout.
public struct ParameterLayout: Sendable {
    public private(set) var tensors: [ParameterTensor] = []
    public private(set) var totalCount = 0
    private var index: [String: Int] = [:]

    public init() {}

    /// Appends a tensor; `stored` overrides the element count held in memory (vocabulary padding). The next tensor
    /// starts 64-byte aligned unless `packed`, which keeps it adjacent (the fused query/key/value projection).
    mutating func add(_ name: String, _ shape: [Int], stored: Int? = nil, packed: Bool = false) {
        precondition(index[name] == nil, "duplicate parameter \(name)")
        let count = stored ?? shape.reduce(1, *)
        let decays = !(name.hasSuffix(".bias") || name.contains("LayerNorm"))
        index[name] = tensors.count
        tensors.append(ParameterTensor(name: name, shape: shape, offset: totalCount, storedCount: count, weightDecay: decays))
        totalCount += packed ? count : (count + 15) / 16 * 16
    }

    public func contains(_ name: String) -> Bool { index[name] != nil }

    public subscript(name: String) -> ParameterTensor {
        guard let i = index[name] else { preconditionFailure("no parameter named \(name)") }
        return tensors[i]
    }

    public func offset(_ name: String) -> Int { self[name].offset }
}

extension ParameterLayout {
    /// `bert.embeddings.*`, `bert.encoder.layer.N.*` and, with `pooler`, `bert.pooler.*`. Within a layer the query,
    /// key and value weights are adjacent (one `[3H, H]` matrix for a fused projection), and so are their biases.
    mutating func addEncoder(_ c: BertConfig, pooler: Bool = true) {
        let H = c.hiddenSize, I = c.intermediateSize
        add("bert.embeddings.word_embeddings.weight", [c.vocabSize, H], stored: c.paddedVocabSize * H)
        add("bert.embeddings.position_embeddings.weight", [c.maxPositionEmbeddings, H])
        add("bert.embeddings.token_type_embeddings.weight", [c.typeVocabSize, H])
        add("bert.embeddings.LayerNorm.weight", [H])
        add("bert.embeddings.LayerNorm.bias", [H])
        for l in 0..<c.numHiddenLayers {
            let p = "bert.encoder.layer.\(l)."
            for proj in ["query", "key", "value"] { add(p + "attention.self.\(proj).weight", [H, H], packed: proj != "value") }
            for proj in ["query", "key", "value"] { add(p + "attention.self.\(proj).bias", [H], packed: proj != "value") }
            add(p + "attention.output.dense.weight", [H, H])
            add(p + "attention.output.dense.bias", [H])
            add(p + "attention.output.LayerNorm.weight", [H])
            add(p + "attention.output.LayerNorm.bias", [H])
            add(p + "intermediate.dense.weight", [I, H])
            add(p + "intermediate.dense.bias", [I])
            add(p + "output.dense.weight", [H, I])
            add(p + "output.dense.bias", [H])
            add(p + "output.LayerNorm.weight", [H])
            add(p + "output.LayerNorm.bias", [H])
        }
        if pooler {
            add("bert.pooler.dense.weight", [H, H])
            add("bert.pooler.dense.bias", [H])
        }
    }

    /// `BertForPreTraining`: the encoder, the MLM head (`cls.predictions.*`, decoder tied to the word embeddings)
    /// and the NSP head (`cls.seq_relationship.*`).
    public static func pretraining(_ c: BertConfig) -> ParameterLayout {
        var layout = ParameterLayout()
        layout.addEncoder(c)
        let H = c.hiddenSize
        layout.add("cls.predictions.transform.dense.weight", [H, H])
        layout.add("cls.predictions.transform.dense.bias", [H])
        layout.add("cls.predictions.transform.LayerNorm.weight", [H])
        layout.add("cls.predictions.transform.LayerNorm.bias", [H])
        layout.add("cls.predictions.bias", [c.vocabSize], stored: c.paddedVocabSize)
        layout.add("cls.seq_relationship.weight", [2, H])
        layout.add("cls.seq_relationship.bias", [2])
        return layout
    }

    /// `BertForQuestionAnswering`: the encoder without a pooler (HF builds it with `add_pooling_layer=False`) and the
    /// span head `qa_outputs` `[2, H]` (row 0 start, row 1 end).
    public static func questionAnswering(_ c: BertConfig) -> ParameterLayout {
        var layout = ParameterLayout()
        layout.addEncoder(c, pooler: false)
        layout.add("qa_outputs.weight", [2, c.hiddenSize])
        layout.add("qa_outputs.bias", [2])
        return layout
    }

    /// `BertForSequenceClassification`: the encoder with its pooler and the classifier `[labels, H]`.
    public static func sequenceClassification(_ c: BertConfig, labels: Int) -> ParameterLayout {
        var layout = ParameterLayout()
        layout.addEncoder(c)
        layout.add("classifier.weight", [labels, c.hiddenSize])
        layout.add("classifier.bias", [labels])
        return layout
    }

    /// A head of one of the BERT models (pre-training, QA, classification) or the pooler: what a task model skips
    /// when a checkpoint of another model carries it.
    static func isHeadTensor(_ name: String) -> Bool {
        ["cls.", "qa_outputs.", "classifier.", "bert.pooler."].contains(where: name.hasPrefix)
    }

    /// Tensors a checkpoint may carry that alias one of ours (HF writes the tied decoder under its own name in some
    /// versions) or that are buffers rather than parameters.
    static let aliases: [String: String] = [
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    ]
    static let ignoredBuffers: Set<String> = ["bert.embeddings.position_ids", "bert.embeddings.token_type_ids"]
}

extension ParameterLayout {
    /// BERT's initialisation (Google's and HF's): weights and embeddings ~ N(0, initializer_range), LayerNorm γ = 1,
    /// β = 0, biases 0. Draws come from the counter-based generator, so a seed gives the same model on any machine
    /// and any thread count.
    public func initialize(_ buffer: FlatBuffer, config: BertConfig, seed: UInt64) {
        buffer.zero()
        for (i, t) in tensors.enumerated() {
            let p = buffer[t.offset]
            if t.name.contains("LayerNorm.weight") {
                p.update(repeating: 1, count: t.count)
            } else if t.weightDecay {
                CounterRNG(seed: seed, stream: UInt64(i)).fillNormal(p, count: t.count, scale: config.initializerRange)
            }
        }
    }
}

import BERTKernels
