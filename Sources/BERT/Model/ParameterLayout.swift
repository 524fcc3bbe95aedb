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
/// buffers use the same layout. The builders below spell each Hugging Face name once and hand back typed offsets
/// (`encoder`, `heads`), so the model code never looks a tensor up by name.
public struct ParameterLayout: Sendable {
    public private(set) var tensors: [ParameterTensor] = []
    public private(set) var totalCount = 0
    private var index: [String: Int] = [:]
    /// Where the encoder's tensors sit (set by `addEncoder`, which every builder calls first).
    private(set) var encoder: EncoderParameters!
    /// Where the model's head sits (set by every builder).
    private(set) var heads: HeadParameters!

    init() {}

    /// Appends a tensor and returns its offset; `stored` overrides the element count held in memory (vocabulary
    /// padding). The next tensor starts 64-byte aligned unless `packed`, which keeps it adjacent (the fused
    /// query/key/value projection).
    @discardableResult
    mutating func add(_ name: String, _ shape: [Int], stored: Int? = nil, packed: Bool = false) -> Int {
        precondition(index[name] == nil, "duplicate parameter \(name)")
        let count = stored ?? shape.reduce(1, *)
        let decays = !(name.hasSuffix(".bias") || name.contains("LayerNorm"))
        index[name] = tensors.count
        let offset = totalCount
        tensors.append(ParameterTensor(name: name, shape: shape, offset: offset, storedCount: count, weightDecay: decays))
        totalCount += packed ? count : (count + 15) / 16 * 16
        return offset
    }

    /// `prefix.weight` `[out, in]` and `prefix.bias` `[out]`.
    mutating func addLinear(_ prefix: String, out: Int, in inFeatures: Int) -> LinearParameters {
        LinearParameters(weight: add(prefix + ".weight", [out, inFeatures]), bias: add(prefix + ".bias", [out]))
    }

    /// `prefix.weight` and `prefix.bias`, both `[features]`.
    mutating func addLayerNorm(_ prefix: String, features: Int) -> LayerNormParameters {
        LayerNormParameters(gamma: add(prefix + ".weight", [features]), beta: add(prefix + ".bias", [features]))
    }

    public func contains(_ name: String) -> Bool { index[name] != nil }

    public subscript(name: String) -> ParameterTensor {
        guard let i = index[name] else { preconditionFailure("no parameter named \(name)") }
        return tensors[i]
    }

    public func offset(_ name: String) -> Int { self[name].offset }
}

/// Offsets of a Linear layer's weight `[out, in]` and bias `[out]`.
struct LinearParameters: Sendable { let weight: Int, bias: Int }

/// Offsets of a LayerNorm's γ and β.
struct LayerNormParameters: Sendable { let gamma: Int, beta: Int }

/// Offsets of one encoder layer's tensors.
struct LayerParameters: Sendable {
    /// `[3H, H]` and `[3H]`: query, key and value adjacent by construction (one fused projection).
    let qkv: LinearParameters
    let attentionOutput: LinearParameters
    let norm1: LayerNormParameters
    let intermediate: LinearParameters
    let output: LinearParameters
    let norm2: LayerNormParameters
}

/// Offsets of the encoder's tensors.
struct EncoderParameters: Sendable {
    let word: Int, position: Int, tokenType: Int
    let norm: LayerNormParameters
    let layers: [LayerParameters]
    /// nil where the model has no pooler (question answering).
    let pooler: LinearParameters?
}

/// Offsets of a model's head.
enum HeadParameters: Sendable {
    /// The MLM transform and decoder bias (the decoder weight is the word embeddings) and the NSP classifier.
    case pretraining(transform: LinearParameters, norm: LayerNormParameters, decoderBias: Int, nsp: LinearParameters)
    /// `qa_outputs` `[2, H]`.
    case questionAnswering(LinearParameters)
    /// `classifier` `[labels, H]`.
    case classification(LinearParameters, labels: Int)
}

extension ParameterLayout {
    /// `bert.embeddings.*`, `bert.encoder.layer.N.*` and, with `pooler`, `bert.pooler.*`.
    mutating func addEncoder(_ c: BertConfig, pooler: Bool = true) {
        let H = c.hiddenSize, I = c.intermediateSize
        let word = add("bert.embeddings.word_embeddings.weight", [c.vocabSize, H], stored: c.paddedVocabSize * H)
        let position = add("bert.embeddings.position_embeddings.weight", [c.maxPositionEmbeddings, H])
        let tokenType = add("bert.embeddings.token_type_embeddings.weight", [c.typeVocabSize, H])
        let norm = addLayerNorm("bert.embeddings.LayerNorm", features: H)
        let layers = (0..<c.numHiddenLayers).map { l -> LayerParameters in
            let p = "bert.encoder.layer.\(l)."
            let weight = add(p + "attention.self.query.weight", [H, H], packed: true)
            add(p + "attention.self.key.weight", [H, H], packed: true)
            add(p + "attention.self.value.weight", [H, H])
            let bias = add(p + "attention.self.query.bias", [H], packed: true)
            add(p + "attention.self.key.bias", [H], packed: true)
            add(p + "attention.self.value.bias", [H])
            return LayerParameters(qkv: LinearParameters(weight: weight, bias: bias),
                                   attentionOutput: addLinear(p + "attention.output.dense", out: H, in: H),
                                   norm1: addLayerNorm(p + "attention.output.LayerNorm", features: H),
                                   intermediate: addLinear(p + "intermediate.dense", out: I, in: H),
                                   output: addLinear(p + "output.dense", out: H, in: I),
                                   norm2: addLayerNorm(p + "output.LayerNorm", features: H))
        }
        encoder = EncoderParameters(word: word, position: position, tokenType: tokenType, norm: norm, layers: layers,
                                    pooler: pooler ? addLinear("bert.pooler.dense", out: H, in: H) : nil)
    }

    /// `BertForPreTraining`: the encoder, the MLM head (`cls.predictions.*`, decoder tied to the word embeddings)
    /// and the NSP head (`cls.seq_relationship.*`).
    public static func pretraining(_ c: BertConfig) -> ParameterLayout {
        var layout = ParameterLayout()
        layout.addEncoder(c)
        let H = c.hiddenSize
        let transform = layout.addLinear("cls.predictions.transform.dense", out: H, in: H)
        let norm = layout.addLayerNorm("cls.predictions.transform.LayerNorm", features: H)
        let decoderBias = layout.add("cls.predictions.bias", [c.vocabSize], stored: c.paddedVocabSize)
        let nsp = layout.addLinear("cls.seq_relationship", out: 2, in: H)
        layout.heads = .pretraining(transform: transform, norm: norm, decoderBias: decoderBias, nsp: nsp)
        return layout
    }

    /// `BertForQuestionAnswering`: the encoder without a pooler (HF builds it with `add_pooling_layer=False`) and the
    /// span head `qa_outputs` `[2, H]` (row 0 start, row 1 end).
    public static func questionAnswering(_ c: BertConfig) -> ParameterLayout {
        var layout = ParameterLayout()
        layout.addEncoder(c, pooler: false)
        layout.heads = .questionAnswering(layout.addLinear("qa_outputs", out: 2, in: c.hiddenSize))
        return layout
    }

    /// `BertForSequenceClassification`: the encoder with its pooler and the classifier `[labels, H]`.
    public static func sequenceClassification(_ c: BertConfig, labels: Int) -> ParameterLayout {
        var layout = ParameterLayout()
        layout.addEncoder(c)
        layout.heads = .classification(layout.addLinear("classifier", out: labels, in: c.hiddenSize), labels: labels)
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
    /// and any thread count. Each tensor draws from its own stream, so initialising only the tensors named in `only`
    /// gives them the values a whole initialisation gives (the others are left as they are).
    public func initialize(_ buffer: UnsafeMutablePointer<Float>, config: BertConfig, seed: UInt64,
                           only: Set<String>? = nil) {
        if only == nil { buffer.update(repeating: 0, count: totalCount) }   // the vocabulary padding included
        for (i, t) in tensors.enumerated() where only?.contains(t.name) ?? true {
            let p = buffer + t.offset
            if t.name.contains("LayerNorm.weight") {
                p.update(repeating: 1, count: t.count)
            } else if t.weightDecay {
                CounterRNG(seed: seed, stream: UInt64(i)).fillNormal(p, count: t.count, scale: config.initializerRange)
            } else {
                p.update(repeating: 0, count: t.count)
            }
        }
    }
}

import BERTKernels
