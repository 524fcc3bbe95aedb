/// A grid or block size, as cuLaunchKernel takes it.
public struct Dim3: Sendable, Equatable {
    public var x: Int, y: Int, z: Int
    public init(_ x: Int, _ y: Int = 1, _ z: Int = 1) { (self.x, self.y, self.z) = (x, y, z) }
}

/// What the CUDA backend needs of a GPU, and nothing more: device memory, our kernels launched by name through their
/// declarations (`KernelDeclaration.all`), and cuBLASLt matmuls described by `MatmulDescription`. Two implementations:
/// `DriverRuntime` on a real GPU (libcuda + our cubins + cuBLASLt), and `EmulatedRuntime`, host memory behind
/// device-only addresses with a Swift reference of every kernel and matmul, on which the backend is tested.
/// Everything is ordered as on one CUDA stream; `download` waits for what came before it.
public protocol CUDARuntime: AnyObject, Sendable {
    /// `bytes` of device memory, zero-filled; its address.
    func allocate(bytes: Int) throws -> UInt64
    func free(_ address: UInt64) throws
    func upload(_ bytes: UnsafeRawBufferPointer, to address: UInt64) throws
    func download(from address: UInt64, into bytes: UnsafeMutableRawBufferPointer) throws
    /// Sets `count` 32-bit words from `address` to `word`.
    func fill(_ address: UInt64, word: UInt32, count: Int) throws
    func copy(from source: UInt64, to destination: UInt64, bytes: Int) throws
    /// Launches kernel `name` with `arguments` checked against its declaration.
    func launch(_ name: String, grid: Dim3, block: Dim3, _ arguments: [KernelArgument]) throws
    func matmul(_ description: MatmulDescription) throws
    /// Waits for everything issued so far.
    func synchronize() throws
}
