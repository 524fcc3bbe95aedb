import BERTKernels
import Foundation

/// A batch for `BertForSequenceClassification`: tokens and, for training, the labels `[B]` (class ids in [0, L)).
public typealias ClassificationBatch = TaskBatch<[Int32]>

/// BERT with a single-label classifier on the pooled `[CLS]` output (HF `BertForSequenceClassification`):
/// pooler → dropout → `classifier` → logits `[B, L]`, cross-entropy loss.
public final class BertForSequenceClassification: BertModelBase {
    /// The class names in id order (`config.json`'s `id2label`); `LABEL_0`… by default, as HF names them.
    public let labelNames: [String]

    /// L, the number of classes.
    public var labelCount: Int { labelNames.count }

    /// A model for `labels` classes (two or more: HF treats one as regression, which this model does not do) with
    /// BERT's random initialisation from `seed`, its tensors and kernels on `backend`.
    /// `initialized` false skips the initialisation for a model that `load` fills (it draws what the file lacks).
    /// - Parameter labelNames: the classes' names in id order; nil for `LABEL_0`…
    /// - Throws: `BertError.invalidConfig` for fewer than two labels, names that do not match their count, or a bad config.
    public init(config: BertConfig, labels: Int, labelNames: [String]? = nil, seed: UInt64 = 12345,
                backend: any Backend = CPUBackend.shared, initialized: Bool = true) throws {
        guard labels >= 2 else {
            throw BertError.invalidConfig("num_labels \(labels): single-label classification needs two or more (one is HF's regression)")
        }
        guard labelNames == nil || labelNames?.count == labels else {
            throw BertError.invalidConfig("\(labelNames?.count ?? 0) label names for \(labels) labels")
        }
        self.labelNames = labelNames ?? (0..<labels).map { "LABEL_\($0)" }
        try super.init(config: config, seed: seed, backend: backend, architecture: "BertForSequenceClassification",
                       layout: { .sequenceClassification($0, labels: labels) }, heads: ClassificationHead.init,
                       initialized: initialized)
    }

    private var head: ClassificationHead { heads as! ClassificationHead }

    /// Forward pass: the logits (`logits()`) and, when the batch has labels, the loss (nil otherwise). `dropout` nil is
    /// evaluation mode; otherwise the matching `backward` regenerates the masks, the classifier's included. Without
    /// labels and dropout nothing is kept for a backward: inference runs in a workspace a fraction of the size.
    /// - Throws: `BertError.invalidInput` naming the offending field when the batch does not fit the model.
    public func forward(_ batch: ClassificationBatch, dropout: DropoutStreams? = nil) throws -> ClassificationLosses? {
        if let labels = batch.targets {
            guard labels.count == batch.batchSize else {
                throw BertError.invalidInput("labels must hold B = \(batch.batchSize) class ids, got \(labels.count)")
            }
            if let bad = labels.first(where: { $0 < 0 || Int($0) >= labelCount }) {
                throw BertError.invalidInput("labels holds \(bad), outside [0, \(labelCount))")
            }
        }
        return head.forward(parameters, try runEncoder(batch, dropout: dropout, training: batch.targets != nil || dropout != nil), labels: batch.targets, dropout: dropout)
    }

    override var checkpointConfigExtras: [String: Any] {
        ["num_labels": labelCount, "problem_type": "single_label_classification",
         "id2label": Dictionary(uniqueKeysWithValues: labelNames.enumerated().map { (String($0.offset), $0.element) }),
         "label2id": Dictionary(labelNames.enumerated().map { ($0.element, $0.offset) }) { first, _ in first }]
    }

    /// The last forward's logits `[B, L]`.
    public func logits() -> [Float] {
        guard let ws = head.workspace.value else { return [] }
        return backend.download(ws.logits, count: ws.batch * labelCount)
    }

    /// Loads a checkpoint directory (ours or Hugging Face's): a `BertForSequenceClassification` one whole; a `BertModel`
    /// or `BertForPreTraining` one into the encoder, the classifier keeping its fresh initialisation (the report lists
    /// `classifier.*` as missing and the other heads as skipped).
    /// - Parameter labels: L; nil takes it from `config.json` (`id2label`, else `num_labels`, else HF's default 2).
    /// - Throws: `BertError.invalidCheckpoint` naming missing encoder tensors, mis-shaped or unknown ones (a classifier
    ///   for another number of labels is mis-shaped).
    public static func load(directory: String, labels: Int? = nil,
                            backend: any Backend = CPUBackend.shared) throws -> (BertForSequenceClassification, LoadReport) {
        let names = try labelNames(in: directory)
        let count = labels ?? names?.count ?? 2
        let model = try BertForSequenceClassification(config: try Checkpoint.config(in: directory), labels: count,
                                                      labelNames: names?.count == count ? names : nil, backend: backend,
                                                      initialized: false)
        return (model, try model.loadTaskWeights(directory: directory))
    }

    /// The class names a `config.json` gives: its `id2label` in id order, or `LABEL_i` for its `num_labels`; nil when
    /// it has neither (a pre-training checkpoint).
    static func labelNames(in directory: String) throws -> [String]? {
        let path = (directory as NSString).appendingPathComponent(Checkpoint.configFile)
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw BertError.invalidConfig("cannot read \(path) as JSON")
        }
        if let id2label = object["id2label"] as? [String: String] {
            let names = (0..<id2label.count).map { id2label[String($0)] }
            guard names.allSatisfy({ $0 != nil }) else {
                throw BertError.invalidConfig("\(path): id2label's keys must be 0…\(id2label.count - 1)")
            }
            return names.map { $0! }
        }
        return (object["num_labels"] as? Int).map { n in (0..<n).map { "LABEL_\($0)" } }
    }
}
