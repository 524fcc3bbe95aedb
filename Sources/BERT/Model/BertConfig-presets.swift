extension BertConfig {
    /// Architectures by name: Google's small BERTs (Turc et al. 2019), BERT-base/large, and the 1.5B and 5B
    /// configurations. All use the uncased 30522-token vocabulary, 512 positions and 2 token types.
    public static let presets: [String: BertConfig] = [
        "bert-tiny": BertConfig(hiddenSize: 128, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 512),
        "bert-mini": BertConfig(hiddenSize: 256, numHiddenLayers: 4, numAttentionHeads: 4, intermediateSize: 1024),
        "bert-small": BertConfig(hiddenSize: 512, numHiddenLayers: 4, numAttentionHeads: 8, intermediateSize: 2048),
        "bert-medium": BertConfig(hiddenSize: 512, numHiddenLayers: 8, numAttentionHeads: 8, intermediateSize: 2048),
        "bert-base": BertConfig(hiddenSize: 768, numHiddenLayers: 12, numAttentionHeads: 12, intermediateSize: 3072),
        "bert-large": BertConfig(hiddenSize: 1024, numHiddenLayers: 24, numAttentionHeads: 16, intermediateSize: 4096),
        "bert-1.5b": BertConfig(hiddenSize: 1600, numHiddenLayers: 48, numAttentionHeads: 25, intermediateSize: 6400),
        "bert-5b": BertConfig(hiddenSize: 2560, numHiddenLayers: 63, numAttentionHeads: 40, intermediateSize: 10240),
    ]

    /// The preset called `name`, or an error listing the names there are.
    public static func preset(_ name: String) throws -> BertConfig {
        guard let config = presets[name] else {
            throw BertError.invalidConfig("--model \(name) is not a preset; presets: \(presets.keys.sorted().joined(separator: ", "))")
        }
        return config
    }
}
