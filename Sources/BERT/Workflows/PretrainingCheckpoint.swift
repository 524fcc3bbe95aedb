import BERTKernels
import Foundation

/// What a pre-training checkpoint records besides the weights and moments: enough to continue the run bit for bit.
public struct TrainerState: Codable, Equatable, Sendable {
    public var format = "swift-bert-pretraining"
    public var version = 1
    /// Optimizer steps completed in this phase.
    public var step: Int
    public var phase: Int
    /// With phase 2, the step phase 1 ended at.
    public var phase1EndStep: Int?
    public var seed: UInt64
    /// Micro-batches run so far: the dropout streams' step counter.
    public var microStep: UInt64
    public var cursor: LoaderCursor
    public var optimizer: String
    public var schedule: LearningRateSchedule
    public var trainBatchSize: Int
    public var gradientAccumulationSteps: Int
    public var maxSeqLength: Int
    public var maxPredictionsPerSeq: Int
    public var worldSize: Int
    public var loss: Float?
    /// The optimizer's weight decay and gradient clipping norm (0: none); absent in checkpoints of older versions.
    public var weightDecay: Float?
    public var maxGradNorm: Float?
    /// Checksums of the checkpoint's other files, by name.
    public var files: [String: String] = [:]

    enum CodingKeys: String, CodingKey {
        case format, version, step, phase, seed, cursor, optimizer, schedule, loss, files
        case phase1EndStep = "phase1_end_step", microStep = "micro_step", trainBatchSize = "train_batch_size"
        case gradientAccumulationSteps = "gradient_accumulation_steps", maxSeqLength = "max_seq_length"
        case maxPredictionsPerSeq = "max_predictions_per_seq", worldSize = "world_size"
        case weightDecay = "weight_decay", maxGradNorm = "max_grad_norm"
    }
}

/// Pre-training checkpoints: `OUTPUT/ckpt_<step>/` holding `model.safetensors` + `config.json` (a model directory any
/// of our commands and transformers load), `optimizer.safetensors` (the moments, under the parameters' names) and
/// `trainer_state.json`. Written into a hidden temporary directory, every file fsync'd, then renamed into place: a
/// crash leaves either the whole checkpoint or none.
public enum PretrainingCheckpoint {
    public static let optimizerFile = "optimizer.safetensors"
    public static let stateFile = "trainer_state.json"

    /// The checkpoint directory name for a phase and step (phase 2 steps are counted after phase 1's).
    public static func name(step: Int, phase: Int, phase1EndStep: Int?) -> String {
        "ckpt_\(phase == 2 ? (phase1EndStep ?? 0) + step : step)"
    }

    /// Where the checkpoint of `state`'s step goes in `outputDirectory`.
    public static func path(for state: TrainerState, in outputDirectory: String) -> String {
        (outputDirectory as NSString).appendingPathComponent(name(step: state.step, phase: state.phase, phase1EndStep: state.phase1EndStep))
    }

    /// The optimizer's first and second moments, addressed like the parameters (pointer + a tensor's offset).
    public typealias Moments = (m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>)

    /// Writes a checkpoint. `moments` cover the whole layout (under ZeRO, gathered from the ranks first).
    public static func save(model: BertForPreTraining, moments: Moments, state: TrainerState,
                            in outputDirectory: String, keep: Int) throws -> String {
        let fm = FileManager.default
        let final = path(for: state, in: outputDirectory)
        let temporary = (outputDirectory as NSString).appendingPathComponent(".\((final as NSString).lastPathComponent).tmp-\(getpid())")
        try? fm.removeItem(atPath: temporary)
        try fm.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        do {
            try model.save(directory: temporary)
            if FaultInjection.active("kill-during-checkpoint", step: state.step) { kill(getpid(), SIGKILL) }
            try Safetensors.write(momentTensors(moments, layout: model.layout), to: temporary + "/" + optimizerFile)
            var state = state
            for file in [Checkpoint.weightsFile, Checkpoint.configFile, optimizerFile] {
                state.files[file] = try fileChecksum(temporary + "/" + file)
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try writeFileAtomically(try encoder.encode(state), to: temporary + "/" + stateFile)
            syncDirectory(temporary)
            if fm.fileExists(atPath: final) { try fm.removeItem(atPath: final) }
            guard rename(temporary, final) == 0 else { throw BertError.io("cannot rename \(temporary) to \(final)") }
            syncDirectory(outputDirectory)
        } catch {
            try? fm.removeItem(atPath: temporary)
            throw error
        }
        for old in list(outputDirectory).dropFirst(keep) { try? fm.removeItem(atPath: old.path) }
        return final
    }

    /// The checkpoint directories in `outputDirectory`, newest first (by their step), complete or not.
    public static func list(_ outputDirectory: String) -> [(path: String, step: Int)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: outputDirectory)) ?? []
        return names.compactMap { name -> (String, Int)? in
            guard name.hasPrefix("ckpt_"), let step = Int(name.dropFirst(5)) else { return nil }
            return ((outputDirectory as NSString).appendingPathComponent(name), step)
        }.sorted { $0.1 > $1.1 }
    }

    /// Reads a checkpoint's state and verifies every file against its recorded checksum.
    /// - Throws: `BertError.invalidCheckpoint` naming the file that is missing, unreadable or damaged.
    public static func validate(_ directory: String) throws -> TrainerState {
        let path = directory + "/" + stateFile
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BertError.invalidCheckpoint("\(directory): no \(stateFile) (incomplete checkpoint)")
        }
        let state: TrainerState
        do { state = try JSONDecoder().decode(TrainerState.self, from: data) } catch {
            throw BertError.invalidCheckpoint("\(path) is damaged: \(describe(error))")
        }
        for (file, expected) in state.files.sorted(by: { $0.key < $1.key }) {
            guard FileManager.default.fileExists(atPath: directory + "/" + file) else {
                throw BertError.invalidCheckpoint("\(directory)/\(file) is missing")
            }
            guard try fileChecksum(directory + "/" + file) == expected else {
                throw BertError.invalidCheckpoint("\(directory)/\(file) does not match its checksum (damaged or truncated)")
            }
        }
        return state
    }

    /// The newest checkpoint that validates; damaged ones are skipped with a warning through `warn`.
    public static func newestValid(in outputDirectory: String, warn: (String) -> Void) -> (path: String, state: TrainerState)? {
        for candidate in list(outputDirectory) {
            do { return (candidate.path, try validate(candidate.path)) } catch {
                warn("warning: skipping checkpoint \(candidate.path): \(error)")
            }
        }
        return nil
    }

    /// Loads the moments saved by `save` into buffers addressed like the parameters.
    public static func loadMoments(into moments: Moments, layout: ParameterLayout, from directory: String) throws {
        let file = try Safetensors.File(path: directory + "/" + optimizerFile)
        for t in layout.tensors {
            for (prefix, buffer) in [("exp_avg.", moments.m), ("exp_avg_sq.", moments.v)] {
                let entry = try file.entry(prefix + t.name)
                guard entry.shape == t.shape else {
                    throw BertError.invalidCheckpoint("\(file.path): \(prefix + t.name) is \(entry.shape), expected \(t.shape)")
                }
                try file.copyFloats(prefix + t.name, into: buffer + t.offset)
            }
        }
    }

    /// The moments under PyTorch's state names (`exp_avg`, `exp_avg_sq`) and the parameters' names.
    static func momentTensors(_ moments: Moments, layout: ParameterLayout) -> [(String, Safetensors.Tensor)] {
        layout.tensors.flatMap { t in
            [("exp_avg." + t.name, Safetensors.Tensor.float(UnsafeBufferPointer(start: moments.m + t.offset, count: t.count), shape: t.shape)),
             ("exp_avg_sq." + t.name, .float(UnsafeBufferPointer(start: moments.v + t.offset, count: t.count), shape: t.shape))]
        }
    }
}

extension ParameterLayout {
    /// One optimizer segment per tensor (real elements only: vocabulary padding is never updated).
    public var optimizerSegments: [OptimizerSegment] { optimizerSegments(in: 0..<totalCount) }

    /// The parts of the tensors that fall inside `range` of the flat buffer (a ZeRO rank's slice).
    public func optimizerSegments(in range: Range<Int>) -> [OptimizerSegment] {
        tensors.enumerated().compactMap { i, t in
            let lo = max(t.offset, range.lowerBound), hi = min(t.offset + t.count, range.upperBound)
            return lo < hi ? OptimizerSegment(offset: lo, count: hi - lo, weightDecay: t.weightDecay, tensor: i) : nil
        }
    }
}
