/// Carves a set of activation buffers out of one allocation, planned once per shape, so a training step allocates
/// nothing. `Arena.plan` runs a layout closure twice: first to count, then over the real allocation.
struct Arena {
    private let base: UnsafeMutablePointer<Float>
    private(set) var used = 0

    /// The next `n` floats (64-byte aligned).
    mutating func take(_ n: Int) -> UnsafeMutablePointer<Float> {
        defer { used += (n + 15) / 16 * 16 }
        return base + used
    }

    /// Runs `layout` against a counting arena (whose pointers are never read), allocates what it took, and runs it
    /// again against the allocation. `layout` must take the same sizes both times.
    static func plan<T>(_ layout: (inout Arena) -> T) -> (T, FlatBuffer) {
        var counting = Arena(base: UnsafeMutablePointer(bitPattern: 64)!)
        _ = layout(&counting)
        let storage = FlatBuffer(count: counting.used)
        var arena = Arena(base: storage.base)
        return (layout(&arena), storage)
    }
}
