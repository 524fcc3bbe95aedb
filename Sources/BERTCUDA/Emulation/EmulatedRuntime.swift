import CBERTShared
import Foundation

/// `CUDARuntime` without a GPU: device memory is `EmulatedMemory` (host allocations behind addresses the host cannot
/// use, zero-filled, bounds-checked on every access), each kernel launch runs the Swift reference of its `.cu` source
/// (`EmulatedKernels`) after the same argument check the GPU path makes, and each matmul runs `MatmulReference`. What the
/// CUDA backend computes through it is what the GPU would compute up to the order of additions, so comparing it with
/// `CPUBackend` proves the backend's launches, leading dimensions, strides and scratch layouts without a GPU.
public final class EmulatedRuntime: CUDARuntime, @unchecked Sendable {
    public let memory = EmulatedMemory()
    private let lock = NSLock()
    private var counts: [String: Int] = [:]
    private var downloaded = 0

    public init() {}

    /// How many times each kernel (by name) and `matmul` ran: tests check that an operation went where it should.
    public var launchCounts: [String: Int] { lock.withLock { counts } }

    /// Bytes copied from the device to the host so far: tests check what crosses in a training step.
    public var downloadedBytes: Int { lock.withLock { downloaded } }

    private func count(_ name: String) { lock.withLock { counts[name, default: 0] += 1 } }

    /// The host memory behind `bytes` at `address`.
    /// - Throws: `CUDAError.launchArguments` naming `what` when the range leaves its allocation.
    func host(_ address: UInt64, bytes: Int, _ what: @autoclosure () -> String) throws -> UnsafeMutableRawPointer {
        guard let host = memory.host(UInt(address), bytes: bytes) else {
            throw CUDAError.launchArguments(kernel: what(), problem: "\(bytes) bytes from \(String(address, radix: 16)) "
                                            + "are not inside one allocation")
        }
        return host
    }

    public func allocate(bytes: Int) throws -> UInt64 { UInt64(memory.allocate(bytes: max(bytes, 1))) }

    public func free(_ address: UInt64) throws { memory.release(UInt(address)) }

    public func upload(_ bytes: UnsafeRawBufferPointer, to address: UInt64) throws {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        try host(address, bytes: bytes.count, "upload").copyMemory(from: source, byteCount: bytes.count)
    }

    public func download(from address: UInt64, into bytes: UnsafeMutableRawBufferPointer) throws {
        guard let target = bytes.baseAddress, !bytes.isEmpty else { return }
        target.copyMemory(from: try host(address, bytes: bytes.count, "download"), byteCount: bytes.count)
        lock.withLock { downloaded += bytes.count }
    }

    public func fill(_ address: UInt64, word: UInt32, count: Int) throws {
        try host(address, bytes: 4 * count, "fill").bindMemory(to: UInt32.self, capacity: count)
            .update(repeating: word, count: count)
    }

    public func copy(from source: UInt64, to destination: UInt64, bytes: Int) throws {
        try host(destination, bytes: bytes, "copy").copyMemory(from: try host(source, bytes: bytes, "copy"), byteCount: bytes)
    }

    public func launch(_ name: String, grid: Dim3, block: Dim3, _ arguments: [KernelArgument]) throws {
        guard let declaration = KernelDeclaration.named(name), let reference = EmulatedKernels.references[name] else {
            throw CUDAError.launchArguments(kernel: name, problem: "no such kernel is declared with a reference")
        }
        try declaration.withPackedArguments(arguments) { _ in }   // the GPU path's check, before anything runs
        guard grid.x >= 1, grid.y >= 1, grid.z >= 1, block.x >= 1, block.y == 1, block.z == 1, block.x <= 1024 else {
            throw CUDAError.launchArguments(kernel: name, problem: "grid \(grid) / block \(block) is not a launch")
        }
        try reference(KernelLaunch(runtime: self, declaration: declaration, grid: grid, block: block, arguments: arguments))
        count(name)
    }

    public func matmul(_ description: MatmulDescription) throws {
        try MatmulReference(runtime: self).run(description)
        count("matmul")
    }

    public func synchronize() throws {}
}

/// One launch as a kernel reference sees it: its geometry and its arguments by parameter name, pointers turned into
/// bounds-checked host buffers of the length the kernel touches.
struct KernelLaunch {
    let runtime: EmulatedRuntime
    let declaration: KernelDeclaration
    let grid: Dim3
    let block: Dim3
    let arguments: [KernelArgument]

    private func argument(_ name: String) -> KernelArgument {
        guard let i = declaration.parameters.firstIndex(where: { $0.name == name }) else {
            preconditionFailure("\(declaration.name) has no parameter \(name)")   // a reference that misnames one
        }
        return arguments[i]
    }

    private func buffer<T>(_ name: String, _ count: Int, _: T.Type) throws -> UnsafeMutableBufferPointer<T>? {
        guard case let .pointer(address) = argument(name), address != 0 else { return nil }
        let host = try runtime.host(address, bytes: count * MemoryLayout<T>.stride, "\(declaration.name) \(name)")
        return UnsafeMutableBufferPointer(start: host.bindMemory(to: T.self, capacity: count), count: count)
    }

    /// `count` floats at pointer parameter `name`; nil for a null pointer.
    func floatsOrNull(_ name: String, _ count: Int) throws -> UnsafeMutableBufferPointer<Float>? {
        try buffer(name, count, Float.self)
    }

    /// `count` elements of `T` at pointer parameter `name`, which must not be null.
    private func required<T>(_ name: String, _ count: Int, _ type: T.Type) throws -> UnsafeMutableBufferPointer<T> {
        guard let b = try buffer(name, count, type) else {
            throw CUDAError.launchArguments(kernel: declaration.name, problem: "\(name) is null")
        }
        return b
    }

    /// `count` floats at pointer parameter `name`, which must not be null.
    func floats(_ name: String, _ count: Int) throws -> UnsafeMutableBufferPointer<Float> { try required(name, count, Float.self) }

    func ints(_ name: String, _ count: Int) throws -> UnsafeMutableBufferPointer<Int32> { try required(name, count, Int32.self) }

    /// `count` ints at pointer parameter `name`; nil for a null pointer.
    func intsOrNull(_ name: String, _ count: Int) throws -> UnsafeMutableBufferPointer<Int32>? {
        try buffer(name, count, Int32.self)
    }

    func doubles(_ name: String, _ count: Int) throws -> UnsafeMutableBufferPointer<Double> {
        try required(name, count, Double.self)
    }

    /// `count` entries of an optimizer chunk table at pointer parameter `name`.
    func chunks(_ name: String, _ count: Int) throws -> UnsafeMutableBufferPointer<bert_chunk> {
        try required(name, count, bert_chunk.self)
    }

    /// `count` bf16 values (their bits) at pointer parameter `name`.
    func bf16s(_ name: String, _ count: Int) throws -> UnsafeMutableBufferPointer<UInt16> {
        try required(name, count, UInt16.self)
    }

    func int(_ name: String) -> Int {
        switch argument(name) {
        case let .int(v): return Int(v)
        case let .longLong(v): return Int(v)
        default: preconditionFailure("\(declaration.name) \(name) is not an integer")
        }
    }

    func float(_ name: String) -> Float {
        guard case let .float(v) = argument(name) else { preconditionFailure("\(declaration.name) \(name) is not a float") }
        return v
    }

    func u64(_ name: String) -> UInt64 {
        guard case let .unsignedLongLong(v) = argument(name) else { preconditionFailure("\(declaration.name) \(name)") }
        return v
    }

    /// The blocks of a one-block-per-row kernel, which also needs blockDim.x a multiple of 32 for its reductions.
    func rowBlocks() throws -> Range<Int> {
        guard block.x % 32 == 0, grid.y == 1, grid.z == 1 else {
            throw CUDAError.launchArguments(kernel: declaration.name,
                                            problem: "a row kernel needs a block of 32k threads and a 1-D grid")
        }
        return 0..<grid.x
    }

    /// The global thread indices of a 1-D launch (kernels that guard `i < n` themselves).
    var threads: Range<Int> { 0..<(grid.x * block.x) }
}
