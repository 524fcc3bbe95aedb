import BERTKernels

/// The dropout randomness of one forward pass: every call site draws from its own counter-based stream keyed by
/// (seed, step, site), so the backward regenerates each mask and a resumed run repeats it exactly.
public struct DropoutStreams: Sendable, Equatable {
    public var seed: UInt64
    /// Counts forward passes (micro-batches); callers must not reuse a value within a run.
    public var step: UInt64
    /// The untrimmed sequence length of a batch cut to its longest real sequence (`BatchTrimming.swift`): its masks
    /// are drawn as at that length, so the kept positions get the bits of the full batch. nil: the batch's own length.
    /// Set, it also orders the backward's token sums by whole sequences (`sequenceRows`).
    public var streamLength: Int?

    public init(seed: UInt64, step: UInt64, streamLength: Int? = nil) {
        self.seed = seed
        self.step = step
        self.streamLength = streamLength
    }

    /// The stream length of a batch of length `S`.
    func streamLength(_ S: Int) -> Int { streamLength ?? S }

    /// With a stream length, the backward's sums over the tokens of a batch of length `S` split only between whole
    /// sequences, so a trimmed batch's gradients are the full batch's bits (`SequenceRows.swift`).
    func sequenceRows(_ S: Int) -> SequenceRows? { streamLength.map { SequenceRows(length: S, fullLength: $0) } }

    /// The layout of a per-token site's `[B, S, H]` tensor in its stream.
    func tokenLayout(S: Int, H: Int) -> DropoutLayout { DropoutLayout(S: S, W: H, streamS: streamLength(S), streamW: H) }

    func rng(site: Int) -> CounterRNG { CounterRNG(seed: seed, stream: step << 20 | UInt64(site)) }

    static let embeddingSite = 0
    static func attentionSite(layer: Int) -> Int { 1 + 3 * layer }
    static func attentionOutputSite(layer: Int) -> Int { 2 + 3 * layer }
    static func outputSite(layer: Int) -> Int { 3 + 3 * layer }
    /// The sequence classifier's dropout on the pooled output: the last site, past any layer's.
    static let classifierSite = (1 << 20) - 1
}
