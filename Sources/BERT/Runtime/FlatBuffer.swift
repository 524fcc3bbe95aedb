/// A zero-filled, 64-byte aligned Float buffer: parameters, gradients, optimizer moments and activations each
/// live in one of these, with named views into it (the llm.c way). All-reduce, ZeRO slicing and checkpoints then
/// act on one contiguous range.
public final class FlatBuffer: @unchecked Sendable {
    public let count: Int
    public let base: UnsafeMutablePointer<Float>

    public init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 4, alignment: 64)
        base = raw.bindMemory(to: Float.self, capacity: max(1, count))
        base.initialize(repeating: 0, count: max(1, count))
    }

    deinit { base.deallocate() }

    public func zero() { base.update(repeating: 0, count: count) }

    public subscript(offset: Int) -> UnsafeMutablePointer<Float> { base + offset }

    /// A copy of `count` floats from `offset`.
    public func array(offset: Int = 0, count: Int? = nil) -> [Float] {
        Array(UnsafeBufferPointer(start: base + offset, count: count ?? self.count - offset))
    }
}
