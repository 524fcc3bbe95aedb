import Testing
@testable import BERT

/// A classification training step on a batch cut to its longest real sequence, with its dropout masks drawn at the
/// full length (`DropoutStreams.streamLength`), gives the loss and every gradient of the padded batch bit for bit (to
/// rounding where the GEMM does not keep a row's bits, `rowBitsKept`): the padded positions contribute exact zeros, and
/// every kept element draws the mask bit it had at full length.
@Suite struct TrimmedTrainingTests {
    /// The loss and all gradients of one forward and backward of `batch` with dropout 0.1 drawn at length `streamLength`.
    static func step(_ batch: ClassificationBatch, streamLength: Int, config: BertConfig) throws -> (Float, [Float]) {
        let model = try BertForSequenceClassification(config: config, labels: 2, seed: 6)
        model.zeroGradients()
        let loss = try model.forward(batch, dropout: DropoutStreams(seed: 13, step: 2, streamLength: streamLength))!.loss
        model.backward()
        return (loss, model.gradients.array())
    }

    /// MRPC's shape (batch 32 at length 128, real lengths 110 down to 17) on bert-mini with dropout 0.1.
    @Test func classificationStepIsBitwiseTheFullLengthOne() throws {
        let (B, S) = (32, 128)
        var config = try BertConfig.preset("bert-mini")
        (config.hiddenDropoutProb, config.attentionProbsDropoutProb) = (0.1, 0.1)
        let r = BatchTrimmingTests.rows(S: S, real: 110, B: B)
        let full = ClassificationBatch(batchSize: B, seqLength: S, inputIds: r.ids, segmentIds: r.segments, inputMask: r.mask,
                                       targets: (0..<B).map { Int32($0 % 3 == 0 ? 1 : 0) })
        let trimmed = full.trimmedForTraining()
        #expect(trimmed.seqLength == 112 && trimmed.targets == full.targets)
        let (fullLoss, fullGradients) = try Self.step(full, streamLength: S, config: config)
        let (loss, gradients) = try Self.step(trimmed, streamLength: S, config: config)
        expectPaddedRunsValues("loss", [loss], [fullLoss])
        expectPaddedRunsValues("gradients", gradients, fullGradients)
        #expect(fullGradients.filter { $0 != 0 }.count > fullGradients.count / 4, "the gradients are not all zero")
        // Drawn at the trimmed length instead, the masks (and so the loss) change: the stream length is what keeps them.
        #expect(try Self.step(trimmed, streamLength: trimmed.seqLength, config: config).0 != fullLoss)
    }
}
