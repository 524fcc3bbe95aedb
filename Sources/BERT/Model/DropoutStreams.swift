import BERTKernels

/// The dropout randomness of one forward pass: every call site draws from its own counter-based stream keyed by
/// (seed, step, site), so the backward regenerates each mask and a resumed run repeats it exactly.
public struct DropoutStreams: Sendable, Equatable {
    public var seed: UInt64
    /// Counts forward passes (micro-batches); callers must not reuse a value within a run.
    public var step: UInt64

    public init(seed: UInt64, step: UInt64) {
        self.seed = seed
        self.step = step
    }

    func rng(site: Int) -> CounterRNG { CounterRNG(seed: seed, stream: step << 20 | UInt64(site)) }

    static let embeddingSite = 0
    static func attentionSite(layer: Int) -> Int { 1 + 3 * layer }
    static func attentionOutputSite(layer: Int) -> Int { 2 + 3 * layer }
    static func outputSite(layer: Int) -> Int { 3 + 3 * layer }
    /// The sequence classifier's dropout on the pooled output: the last site, past any layer's.
    static let classifierSite = (1 << 20) - 1
}
