/// An address in a backend's memory: host memory for `CPUBackend`, device memory for a GPU backend. It is a distinct
/// type from `UnsafeMutablePointer` on purpose: host code cannot read or write through it, so every crossing between
/// host and device is an explicit `upload`/`download` (or a scalar a kernel returns), and the compiler finds any other.
public struct DevicePointer<Element>: Hashable, @unchecked Sendable {
    /// The raw address in the backend's address space.
    public let address: UInt

    public init(address: UInt) { self.address = address }

    /// The element `offset` elements further on.
    public static func + (pointer: Self, offset: Int) -> Self {
        Self(address: pointer.address &+ UInt(bitPattern: offset &* MemoryLayout<Element>.stride))
    }

    /// The same address read as elements of another 4-byte type (the arena hands out floats; ids are Int32).
    func reinterpreted<Other>(as _: Other.Type) -> DevicePointer<Other> {
        precondition(MemoryLayout<Other>.stride == MemoryLayout<Element>.stride)
        return DevicePointer<Other>(address: address)
    }
}

public typealias DeviceFloats = DevicePointer<Float>
public typealias DeviceInts = DevicePointer<Int32>

/// A zero-filled, 64-byte aligned Float buffer owned by a backend, released with it: the parameters, gradients and
/// activation arenas of a model. The llm.c layout (one allocation, named views) holds on every backend.
public final class DeviceBuffer: @unchecked Sendable {
    public let backend: any Backend
    public let count: Int
    public let base: DeviceFloats

    public init(backend: any Backend, count: Int) {
        self.backend = backend
        self.count = count
        base = DeviceFloats(address: backend.allocate(bytes: max(1, count) * 4))
    }

    deinit { backend.release(base.address) }

    public subscript(offset: Int) -> DeviceFloats { base + offset }

    public func zero() { backend.fill(base, count: count, value: 0) }

    /// A host copy of `count` floats from `offset` (a synchronising crossing).
    public func array(offset: Int = 0, count: Int? = nil) -> [Float] { backend.download(base + offset, count: count ?? self.count - offset) }

    /// Copies `values` into the buffer from `offset` (a crossing from the host).
    public func upload(_ values: [Float], offset: Int = 0) {
        precondition(offset + values.count <= count, "upload past the end of the buffer")
        backend.upload(values, to: base + offset)
    }

    /// Runs `body` on host memory holding the buffer's floats: the memory itself where the backend's is the host's,
    /// otherwise a copy downloaded first and, when `writeBack`, uploaded after (checkpoints and the host communicators;
    /// the optimizer updates in place through `BackendOptimizer`).
    public func withHostFloats<R>(writeBack: Bool = true, _ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        if let host = backend.hostAddress(base) { return try body(host) }
        let copy = FlatBuffer(count: count)
        backend.download(base, into: UnsafeMutableBufferPointer(start: copy.base, count: count))
        let result = try body(copy.base)
        if writeBack { backend.upload(UnsafeBufferPointer(start: copy.base, count: count), to: base) }
        return result
    }
}
