// The token rows of a batch as B sequences, for the reductions over tokens of a training backward (the weight
// gradients' GEMMs, LayerNorm's dγ and dβ). A batch cut to its longest real sequence has the full batch's real
// tokens and loses only padded ones, whose gradients are exactly zero; a sum that splits its terms only between
// whole sequences (and fixed position chunks inside them) adds the same nonzero terms in the same order at either
// length, so a trimmed batch gets the full batch's bits.

/// `[B, length]` token rows cut from `[B, fullLength]`.
public struct SequenceRows: Sendable, Equatable {
    public var length: Int
    public var fullLength: Int

    public init(length: Int, fullLength: Int) {
        precondition(0 < length && length <= fullLength, "a trimmed sequence lies inside the full one")
        (self.length, self.fullLength) = (length, fullLength)
    }

    /// Positions per piece: no BLAS call sums more tokens than this, so none blocks its sum differently by length.
    static let chunk = 128

    /// The row ranges of `rows` tokens for one BLAS call each, in order: `chunk / fullLength` whole sequences per
    /// call when they fit, else each sequence in pieces of `chunk` positions.
    func pieces(rows N: Int) -> [Range<Int>] {
        let B = N / length
        if fullLength <= Self.chunk {
            let group = Self.chunk / fullLength
            return stride(from: 0, to: B, by: group).map { ($0 * length)..<(min(B, $0 + group) * length) }
        }
        return (0..<B).flatMap { b in
            stride(from: 0, to: length, by: Self.chunk).map { (b * length + $0)..<(b * length + min(length, $0 + Self.chunk)) }
        }
    }
}
