/// Carves a set of activation buffers out of one backend allocation, planned once per shape, so a training step
/// allocates nothing. `Arena.plan` runs a layout closure twice: first to count, then over the real allocation.
struct Arena {
    private let base: DeviceFloats
    private(set) var used = 0

    /// The next `n` floats (64-byte aligned).
    mutating func take(_ n: Int) -> DeviceFloats {
        defer { used += (n + 15) / 16 * 16 }
        return base + used
    }

    /// The next `n` 32-bit integers (ids, labels, row indices), from the same allocation.
    mutating func takeInts(_ n: Int) -> DeviceInts { take(n).reinterpreted(as: Int32.self) }

    /// Runs `layout` against a counting arena (whose addresses are never used), allocates what it took on `backend`,
    /// and runs it again against the allocation. `layout` must take the same sizes both times.
    static func plan<T>(on backend: any Backend, _ layout: (inout Arena) -> T) -> (T, DeviceBuffer) {
        var counting = Arena(base: DeviceFloats(address: 64))
        _ = layout(&counting)
        let storage = DeviceBuffer(backend: backend, count: counting.used)
        var arena = Arena(base: storage.base)
        return (layout(&arena), storage)
    }
}
