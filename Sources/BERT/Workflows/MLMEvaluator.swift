import Foundation

/// Masked-LM and next-sentence metrics over a set of shards, dropout off. Losses are means over all masked positions
/// (MLM) and all sequences (NSP) of the set, as NVIDIA's evaluation computes them.
public struct MLMEvaluation: Codable, Equatable, Sendable {
    public var mlmLoss: Double
    public var mlmAccuracy: Double
    /// The MLM accuracy of always guessing the set's most frequent masked token: the unigram plateau a model that
    /// has not yet learnt to use the context sits on.
    public var mlmBaselineAccuracy: Double
    public var nspLoss: Double
    public var nspAccuracy: Double
    public var loss: Double { mlmLoss + nspLoss }
    public var sequences: Int
    public var maskedPositions: Int

    /// The JSON object `bert eval-mlm` prints and the metrics log records.
    public func json(prefix: String = "") -> [String: Any] {
        [prefix + "mlm_loss": mlmLoss, prefix + "mlm_accuracy": mlmAccuracy, prefix + "mlm_baseline_accuracy": mlmBaselineAccuracy,
         prefix + "nsp_loss": nspLoss,
         prefix + "nsp_accuracy": nspAccuracy, prefix + "loss": loss, prefix + "sequences": sequences]
    }
}

public struct MLMEvaluator {
    public let shards: [ShardRows]
    public let paths: [String]

    /// Reads every shard in `directory` (files named like `*test*` when there are any, else every `.hdf5`/`.h5`),
    /// validating ids against `vocabSize`. Either layout is read: the model gives packed rows the numbers of the same
    /// sequences unpacked, so the metrics do not depend on it.
    public init(directory: String, vocabSize: Int) throws {
        var paths = try PretrainingLoader.shardFiles(in: directory, kind: "test")
        if paths.isEmpty { paths = try PretrainingLoader.shardFiles(in: directory, kind: ".h") }   // every .hdf5 / .h5
        guard !paths.isEmpty else { throw BertError.invalidInput("\(directory): no .hdf5 shards to evaluate on") }
        self.paths = paths
        shards = try paths.map { try readAndValidateShard(path: $0, vocabSize: vocabSize, packed: nil) }
        var counts = [Int](repeating: 0, count: vocabSize), total = 0
        for shard in shards {
            let P = shard.maxPredictions
            for row in 0..<shard.count {
                for k in 0..<P {
                    guard shard.maskedLMPositions[row * P + k] != 0 else { break }   // the first 0 ends the row's list
                    counts[Int(shard.maskedLMIds[row * P + k])] += 1
                    total += 1
                }
            }
        }
        baselineAccuracy = Double(counts.max() ?? 0) / Double(max(1, total))
    }

    /// See `MLMEvaluation.mlmBaselineAccuracy`.
    public let baselineAccuracy: Double

    public var seqLength: Int { shards[0].seqLength }

    /// - Parameter trim: run each batch at its longest real sequence (the same numbers, less work on padding).
    public func evaluate(_ model: BertForPreTraining, batchSize: Int, trim: Bool = true) throws -> MLMEvaluation {
        var mlm = 0.0, nsp = 0.0, masked = 0, mlmRight = 0, nspRight = 0, sequences = 0
        for shard in shards {
            for start in stride(from: 0, to: shard.count, by: batchSize) {
                let batch = shard.batch(rows: Array(start..<min(shard.count, start + batchSize)))
                let l = try model.forward(trim ? batch.trimmed() : batch, training: false)
                mlm += Double(l.mlmLoss) * Double(l.maskedCount)
                nsp += Double(l.nspLoss) * Double(l.sequences)
                masked += l.maskedCount
                mlmRight += l.mlmCorrect
                nspRight += l.nspCorrect
                sequences += l.sequences
            }
        }
        return MLMEvaluation(mlmLoss: mlm / Double(max(1, masked)), mlmAccuracy: Double(mlmRight) / Double(max(1, masked)),
                             mlmBaselineAccuracy: baselineAccuracy,
                             nspLoss: nsp / Double(max(1, sequences)), nspAccuracy: Double(nspRight) / Double(max(1, sequences)),
                             sequences: sequences, maskedPositions: masked)
    }
}
