import BERTKernels
import Foundation

/// The token inputs of a batch, which every model's encoder reads: `[B, S]` arrays, row-major.
public protocol TokenBatch: Sendable {
    /// B
    var batchSize: Int { get }
    /// S
    var seqLength: Int { get }
    /// `[B, S]` token ids.
    var inputIds: [Int32] { get }
    /// `[B, S]` 0 for sentence A (and `[CLS]`), 1 for sentence B.
    var segmentIds: [Int32] { get }
    /// `[B, S]` 1 for real tokens, 0 for padding.
    var inputMask: [Int32] { get }
}

extension TokenBatch {
    /// The three `[B, S]` arrays hold B·S ids each.
    var tokenShapesAgree: Bool {
        inputIds.count == batchSize * seqLength && segmentIds.count == inputIds.count && inputMask.count == inputIds.count
    }
}

extension PretrainingBatch: TokenBatch {}

/// A fine-tuning batch: the tokens (B batch, S sequence length, row-major) and the task's targets, nil when predicting.
/// `QuestionAnsweringBatch` and `ClassificationBatch` name its two uses.
public struct TaskBatch<Targets: Sendable & Equatable>: TokenBatch, Equatable {
    public var batchSize: Int
    public var seqLength: Int
    public var inputIds: [Int32]
    public var segmentIds: [Int32]
    public var inputMask: [Int32]
    public var targets: Targets?

    /// - Parameters: `inputIds`, `segmentIds`, `inputMask` `[B, S]`; `targets` per example, nil when predicting.
    public init(batchSize: Int, seqLength: Int, inputIds: [Int32], segmentIds: [Int32], inputMask: [Int32], targets: Targets? = nil) {
        self.batchSize = batchSize
        self.seqLength = seqLength
        self.inputIds = inputIds
        self.segmentIds = segmentIds
        self.inputMask = inputMask
        self.targets = targets
    }
}

/// What the shared model code needs of a model's heads; each head plans its own workspace per shape.
protocol ModelHeads: AnyObject {
    /// Backward of `scale · loss` for the last forward: accumulates the heads' parameter gradients into `g` and writes
    /// the gradient of the sequence output into `enc.dHidden` (and of the pooled output into `enc.dPooled`).
    func backward(_ w: DeviceBuffer, _ g: DeviceBuffer, _ enc: EncoderWorkspace, scale: Float)
    /// Floats held by the heads' activation arena for the current shape.
    var activationCount: Int { get }
}

/// The part of every BERT model here that is not a head (HF `BertPreTrainedModel` with its `bert` encoder): the
/// parameters and gradients in two flat buffers with the same layout, the encoder's workspace planned once per
/// (B, S), the token inputs checked and copied in, the backward through heads and encoder, and checkpoint files.
/// Subclasses bring their heads: `BertForPreTraining`, `BertForQuestionAnswering`, `BertForSequenceClassification`.
/// Every tensor lives in `backend`'s memory and every kernel runs there.
public class BertModelBase {
    public let config: BertConfig
    public let layout: ParameterLayout
    public let backend: any Backend
    public let parameters: DeviceBuffer
    /// Accumulated by every `backward` until `zeroGradients()`. Made on first use, so a model that only runs
    /// inference never holds (or touches) a second buffer the size of its parameters.
    public private(set) lazy var gradients = DeviceBuffer(backend: backend, count: layout.totalCount)
    /// Activation checkpointing (NVIDIA's `--checkpoint_activations`): a training forward keeps only each layer's
    /// output, and the backward runs each layer's forward again before its backward. Dropout masks come from counters,
    /// so the gradients are bit for bit those of a run without it; the cost is one more forward of the encoder.
    public var checkpointActivations = false
    let encoder: BertEncoder
    let heads: any ModelHeads
    /// The HF class a saved directory loads as (`config.json`'s `architectures`).
    let architecture: String
    private var encoderWorkspace = PlannedWorkspace<EncoderWorkspace>()
    private var lastDropout: DropoutStreams?
    /// The seed of BERT's random initialisation, and whether it is still to be drawn (a model made to be loaded draws
    /// only the tensors its checkpoint lacks).
    private let seed: UInt64
    private var initializationPending: Bool

    /// A model with the tensors of `layout(config)`, BERT's random initialisation from `seed` (with `initialized`
    /// false, none yet: `loadWeights` draws what the checkpoint lacks), and the heads `heads` builds over that layout.
    init(config: BertConfig, seed: UInt64, backend: any Backend, architecture: String, layout: (BertConfig) -> ParameterLayout,
         heads: (BertConfig, ParameterLayout, any Backend) throws -> any ModelHeads, initialized: Bool = true) throws {
        try config.validate()
        self.config = config
        self.layout = layout(config)
        self.backend = backend
        self.architecture = architecture
        (self.seed, initializationPending) = (seed, !initialized)
        parameters = DeviceBuffer(backend: backend, count: self.layout.totalCount)
        encoder = try BertEncoder(config: config, layout: self.layout, backend: backend)
        self.heads = try heads(config, self.layout, backend)
        if initialized { parameters.withHostFloats { self.layout.initialize($0, config: config, seed: seed) } }
    }

    public func zeroGradients() { gradients.zero() }

    /// Backward of `lossScale · loss` for the last `forward`, accumulated into `gradients`.
    public func backward(lossScale: Float = 1) {
        guard let enc = encoderWorkspace.value else { preconditionFailure("backward() before forward()") }
        precondition(enc.training, "backward() after an inference forward (one without targets)")
        heads.backward(parameters, gradients, enc, scale: lossScale)
        encoder.backward(parameters, gradients, enc, dropout: lastDropout, pooler: encoder.hasPooler)
    }

    /// Checks `batch`'s tokens, plans the encoder's workspace for its shape (on first use of a shape), copies the
    /// ids and mask in and runs the encoder (with the pooler when the model has one and `pooler`). `dropout` nil is
    /// evaluation mode; otherwise the matching `backward` regenerates the same masks. Without `training` nothing is
    /// kept for a backward (a lean inference workspace). `sequences` (pre-training) brings packed rows' position ids and
    /// key ranges and the [CLS] rows to pool; without it, row b's [CLS] is token b·S.
    /// - Throws: `BertError.invalidInput` naming the offending field.
    func runEncoder(_ batch: some TokenBatch, dropout: DropoutStreams?, pooler: Bool = true, training: Bool = true,
                    sequences: SequenceLayout? = nil) throws -> EncoderWorkspace {
        try validateTokens(batch)
        let B = batch.batchSize, S = batch.seqLength, N = sequences?.sequencesPerRow ?? 1
        let enc = encoderWorkspace.planned(for: [B, S, training ? 1 : 0, checkpointActivations ? 1 : 0, N]) {
            EncoderWorkspace(config: config, batch: B, seqLength: S, sequencesPerRow: N, training: training,
                             checkpointed: checkpointActivations, backend: backend)
        }
        backend.upload(batch.inputIds, to: enc.ids)
        backend.upload(batch.segmentIds, to: enc.segments)
        backend.upload(batch.inputMask.map { $0 == 0 ? -10000 : 0 }, to: enc.keyBias)
        let clsRows = sequences?.clsRows ?? (0..<B).map { Int32($0 * S) }
        backend.upload(clsRows, to: enc.clsRows)
        enc.poolerRows = clsRows.count
        enc.packed = sequences?.keyRanges != nil
        if let positions = sequences?.positions { backend.upload(positions, to: enc.positions) }
        if let keyRanges = sequences?.keyRanges {
            backend.upload(keyRanges, to: enc.keyRanges)
            if sequences?.positions == nil { backend.upload((0..<(B * S)).map { Int32($0 % S) }, to: enc.positions) }
        }
        lastDropout = dropout
        encoder.forward(parameters, enc, dropout: dropout, pooler: pooler && encoder.hasPooler)
        return enc
    }

    private func validateTokens(_ b: some TokenBatch) throws {
        let c = config
        guard b.tokenShapesAgree else {
            throw BertError.invalidInput("input_ids, segment_ids and input_mask must each hold B·S = \(b.batchSize)·\(b.seqLength) ids")
        }
        guard b.seqLength <= c.maxPositionEmbeddings else {
            throw BertError.invalidInput("sequence length \(b.seqLength) exceeds max_position_embeddings \(c.maxPositionEmbeddings)")
        }
        if let bad = b.inputIds.first(where: { $0 < 0 || Int($0) >= c.vocabSize }) {
            throw BertError.invalidInput("input_ids holds \(bad), outside the vocabulary [0, \(c.vocabSize)): wrong vocab for this model?")
        }
        if let bad = b.segmentIds.first(where: { $0 < 0 || Int($0) >= c.typeVocabSize }) {
            throw BertError.invalidInput("segment_ids holds \(bad), outside [0, \(c.typeVocabSize))")
        }
    }

    /// The encoder alone (HF `BertModel`'s `last_hidden_state`) in evaluation mode: `[B, S, H]`.
    /// - Parameters: `inputIds`, `segmentIds`, `inputMask` `[B, S]` row-major.
    public func encode(inputIds: [Int32], segmentIds: [Int32], inputMask: [Int32], batchSize: Int, seqLength: Int) throws -> [Float] {
        struct Tokens: TokenBatch { var batchSize, seqLength: Int, inputIds, segmentIds, inputMask: [Int32] }
        _ = try runEncoder(Tokens(batchSize: batchSize, seqLength: seqLength, inputIds: inputIds, segmentIds: segmentIds,
                                  inputMask: inputMask), dropout: nil, pooler: false, training: false)
        return sequenceOutput()
    }

    /// The last forward's sequence output `[B, S, H]`.
    public func sequenceOutput() -> [Float] {
        encoderWorkspace.value.map { backend.download($0.sequenceOutput, count: $0.batch * $0.seqLength * config.hiddenSize) } ?? []
    }

    /// The last forward's pooled output `[B, H]`, or `[sequences, H]` for pre-training's [CLS] rows (empty for a model
    /// without a pooler).
    public func pooledOutput() -> [Float] {
        guard encoder.hasPooler, let enc = encoderWorkspace.value else { return [] }
        return backend.download(enc.pooled, count: enc.poolerRows * config.hiddenSize)
    }

    /// Floats held by the activation arenas for the current shape.
    public var activationCount: Int { (encoderWorkspace.value?.storage.count ?? 0) + heads.activationCount }

    // MARK: Checkpoints

    /// Keys `config.json` holds beyond the architecture's (a subclass's own, such as the labels).
    var checkpointConfigExtras: [String: Any] { [:] }

    /// Writes `model.safetensors` and `config.json` (with `architectures` naming the HF class) into `directory`
    /// (created if needed).
    public func save(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try parameters.withHostFloats(writeBack: false) {
            try Checkpoint.writeWeights($0, layout: layout, to: (directory as NSString).appendingPathComponent(Checkpoint.weightsFile))
        }
        try config.write(to: (directory as NSString).appendingPathComponent(Checkpoint.configFile),
                         architectures: [architecture], extra: checkpointConfigExtras)
    }

    /// Copies the weights of the checkpoint in `directory` into `parameters` by name (see `Checkpoint.load`); a model
    /// made without its initialisation draws it now for the tensors the checkpoint lacks (a fresh head).
    func loadWeights(directory: String, allowMissing: (String) -> Bool,
                     allowUnexpected: (String) -> Bool = { _ in false }) throws -> LoadReport {
        let file = try Safetensors.File(path: (directory as NSString).appendingPathComponent(Checkpoint.weightsFile))
        return try parameters.withHostFloats {
            // Zeros first where nothing was drawn: the vocabulary padding must be 0, and a checkpoint fills only rows.
            if initializationPending { $0.update(repeating: 0, count: layout.totalCount) }
            let report = try Checkpoint.load(file, into: $0, layout: layout, allowMissing: allowMissing,
                                             allowUnexpected: allowUnexpected)
            if initializationPending {
                layout.initialize($0, config: config, seed: seed, only: Set(report.missing))
                initializationPending = false
            }
            return report
        }
    }

    /// Loads a task model's weights: the encoder must be whole; the model's own head, pooler included, may be absent
    /// (a `BertModel`, `BertForPreTraining` or question-answering checkpoint: it keeps its fresh initialisation and the
    /// report lists it as missing, as transformers does), and other models' heads in the file (`cls.*`, another
    /// task's head, a pooler this model lacks) are skipped.
    func loadTaskWeights(directory: String) throws -> LoadReport {
        try loadWeights(directory: directory, allowMissing: { !$0.hasPrefix("bert.") || $0.hasPrefix("bert.pooler.") },
                        allowUnexpected: ParameterLayout.isHeadTensor)
    }
}

/// A workspace planned for one shape, replaced when the shape changes (the old one released first).
struct PlannedWorkspace<Workspace> {
    private(set) var shape: [Int] = []
    private(set) var value: Workspace?

    mutating func planned(for shape: [Int], make: () -> Workspace) -> Workspace {
        if let value, shape == self.shape { return value }
        value = nil
        let made = make()
        (self.shape, value) = (shape, made)
        return made
    }
}
