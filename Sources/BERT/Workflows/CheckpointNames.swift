/// Where the tensor names of Google's TensorFlow BERT (`modeling.py`) and NVIDIA's PyTorch BERT (DeepLearningExamples
/// `modeling.py`) differ from Hugging Face's, which we use. The mapping mirrors transformers' `load_tf_weights_in_bert`:
/// `/` for `.`, `layer_N` for `layer.N`, LayerNorm `gamma`/`beta` for `weight`/`bias`, a dense layer's `kernel`
/// stored `[in, out]` (transposed) for PyTorch's `[out, in]` `weight`, embeddings without `.weight`, and the heads'
/// `output_bias` / `output_weights`.
enum CheckpointNames {
    /// Google's name for the Hugging Face tensor `name`, and whether Google stores it transposed.
    static func google(_ name: String) -> (name: String, transposed: Bool) {
        switch name {
        case "cls.predictions.bias": return ("cls/predictions/output_bias", false)
        case "cls.seq_relationship.weight": return ("cls/seq_relationship/output_weights", false)
        case "cls.seq_relationship.bias": return ("cls/seq_relationship/output_bias", false)
        default: break
        }
        var parts = name.split(separator: ".").map(String.init)
        if let i = parts.firstIndex(of: "layer"), i + 1 < parts.count { parts[i...(i + 1)] = ["layer_" + parts[i + 1]] }
        let leaf = parts.removeLast(), path = parts.joined(separator: "/")
        if parts.last == "LayerNorm" { return (path + (leaf == "weight" ? "/gamma" : "/beta"), false) }
        if parts.last?.hasSuffix("_embeddings") == true { return (path, false) }
        return (path + (leaf == "weight" ? "/kernel" : "/bias"), leaf == "weight")
    }

    /// Optimizer state and counters in Google's checkpoints, which a model does not load.
    static func isGoogleTrainingState(_ name: String) -> Bool {
        name.hasSuffix("/adam_m") || name.hasSuffix("/adam_v") || name == "global_step"
    }

    /// The Hugging Face name of NVIDIA's (or a `DistributedDataParallel` wrapper's) state-dict key: no `module.`
    /// prefix, `dense` for NVIDIA's fused-activation `dense_act`.
    static func fromNVIDIA(_ name: String) -> String {
        let unwrapped = name.hasPrefix("module.") ? String(name.dropFirst("module.".count)) : name
        return unwrapped.replacingOccurrences(of: ".dense_act.", with: ".dense.")
    }

    /// The tensors indexed by vocabulary id, which NVIDIA pads to a multiple of 8 rows.
    static let vocabularyRows: Set<String> = [
        "bert.embeddings.word_embeddings.weight", "cls.predictions.bias",
        "cls.predictions.decoder.weight", "cls.predictions.decoder.bias",
    ]
}

/// `[rows, columns]` → `[columns, rows]`.
func transposed(_ values: [Float], rows: Int, columns: Int) -> [Float] {
    var out = [Float](repeating: 0, count: values.count)
    for r in 0..<rows { for c in 0..<columns { out[c * rows + r] = values[r * columns + c] } }
    return out
}
