/// The CUDA driver API (libcuda), reached through `dlopen` with no CUDA headers at build time: the device, its primary
/// context (the one cuBLASLt and NCCL also use), memory, modules and launches. The `_v2` entry points are the ones
/// cuda.h maps the plain names to.
public final class CUDADriver: @unchecked Sendable {
    /// Where the driver is looked for, in order (the loader's search: ld.so.cache, LD_LIBRARY_PATH).
    public static let libraryNames = ["libcuda.so.1"]

    typealias Result = Int32
    typealias Pointer = OpaquePointer?
    private let library: SharedLibrary
    private let cuInit: @convention(c) (UInt32) -> Result
    private let cuDriverGetVersion: @convention(c) (UnsafeMutablePointer<Int32>) -> Result
    private let cuDeviceGet: @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Result
    private let cuDeviceGetCount: @convention(c) (UnsafeMutablePointer<Int32>) -> Result
    private let cuDeviceGetAttribute: @convention(c) (UnsafeMutablePointer<Int32>, Int32, Int32) -> Result
    private let cuDevicePrimaryCtxRetain: @convention(c) (UnsafeMutablePointer<Pointer>, Int32) -> Result
    private let cuCtxSetCurrent: @convention(c) (Pointer) -> Result
    private let cuCtxSynchronize: @convention(c) () -> Result
    private let cuMemAlloc: @convention(c) (UnsafeMutablePointer<UInt64>, Int) -> Result
    private let cuMemFree: @convention(c) (UInt64) -> Result
    private let cuMemcpyHtoD: @convention(c) (UInt64, UnsafeRawPointer?, Int) -> Result
    private let cuMemcpyDtoH: @convention(c) (UnsafeMutableRawPointer?, UInt64, Int) -> Result
    private let cuMemsetD32: @convention(c) (UInt64, UInt32, Int) -> Result
    private let cuMemcpyDtoD: @convention(c) (UInt64, UInt64, Int) -> Result
    private let cuModuleLoadData: @convention(c) (UnsafeMutablePointer<Pointer>, UnsafeRawPointer?) -> Result
    private let cuModuleGetFunction: @convention(c) (UnsafeMutablePointer<Pointer>, Pointer, UnsafePointer<CChar>?)
        -> Result
    private let cuLaunchKernel: @convention(c) (Pointer, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, Pointer,
                                                UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                                                UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Result
    private let cuGetErrorString: @convention(c) (Result, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> Result

    /// The entry points this class calls, by their exported names (a test checks each against cuda.h).
    public static let entryPoints = [
        "cuInit", "cuDriverGetVersion", "cuDeviceGet", "cuDeviceGetCount", "cuDeviceGetAttribute",
        "cuDevicePrimaryCtxRetain", "cuCtxSetCurrent", "cuCtxSynchronize", "cuMemAlloc_v2", "cuMemFree_v2",
        "cuMemcpyHtoD_v2", "cuMemcpyDtoH_v2", "cuMemsetD32_v2", "cuMemcpyDtoD_v2", "cuModuleLoadData", "cuModuleGetFunction",
        "cuLaunchKernel", "cuGetErrorString",
    ]

    /// The `CUdevice_attribute` values read (cuda.h's numbers; a test checks them against the header).
    public enum Attribute: Int32 {
        case multiprocessorCount = 16
        case computeCapabilityMajor = 75
        case computeCapabilityMinor = 76
    }

    /// The driver's version as CUDA numbers it (13000 for 13.0).
    public private(set) var version: Int32 = 0

    /// Loads libcuda and initialises the driver.
    /// - Throws: `CUDAError.libraryNotFound` when there is no driver (the machine has no NVIDIA GPU, or its driver is
    ///   not installed): one line that says so; `CUDAError.driver` when cuInit fails (e.g. no device visible).
    public static func load(candidates: [String] = libraryNames) throws -> CUDADriver {
        guard let library = SharedLibrary.open(candidates) else {
            throw CUDAError.libraryNotFound(library: "CUDA driver", tried: candidates,
                                            purpose: "the CUDA device needs an NVIDIA GPU and its driver")
        }
        return try CUDADriver(library)
    }

    private init(_ library: SharedLibrary) throws {
        self.library = library
        cuInit = try library.function("cuInit")
        cuDriverGetVersion = try library.function("cuDriverGetVersion")
        cuDeviceGet = try library.function("cuDeviceGet")
        cuDeviceGetCount = try library.function("cuDeviceGetCount")
        cuDeviceGetAttribute = try library.function("cuDeviceGetAttribute")
        cuDevicePrimaryCtxRetain = try library.function("cuDevicePrimaryCtxRetain")
        cuCtxSetCurrent = try library.function("cuCtxSetCurrent")
        cuCtxSynchronize = try library.function("cuCtxSynchronize")
        cuMemAlloc = try library.function("cuMemAlloc_v2")
        cuMemFree = try library.function("cuMemFree_v2")
        cuMemcpyHtoD = try library.function("cuMemcpyHtoD_v2")
        cuMemcpyDtoH = try library.function("cuMemcpyDtoH_v2")
        cuMemsetD32 = try library.function("cuMemsetD32_v2")
        cuMemcpyDtoD = try library.function("cuMemcpyDtoD_v2")
        cuModuleLoadData = try library.function("cuModuleLoadData")
        cuModuleGetFunction = try library.function("cuModuleGetFunction")
        cuLaunchKernel = try library.function("cuLaunchKernel")
        cuGetErrorString = try library.function("cuGetErrorString")
        try check("cuInit", cuInit(0))
        try check("cuDriverGetVersion", cuDriverGetVersion(&version))
    }

    private func check(_ call: String, _ result: Result) throws {
        guard result != 0 else { return }
        var text: UnsafePointer<CChar>? = nil
        let message = cuGetErrorString(result, &text) == 0 ? text.map { String(cString: $0) } ?? "" : ""
        throw CUDAError.driver(call: call, code: result, message: message.isEmpty ? "unknown error" : message)
    }

    /// The number of devices the driver sees.
    public func deviceCount() throws -> Int {
        var count: Int32 = 0
        try check("cuDeviceGetCount", cuDeviceGetCount(&count))
        return Int(count)
    }

    /// A device by ordinal, its primary context retained and made current on this thread.
    public func device(_ ordinal: Int) throws -> CUDADevice {
        var device: Int32 = 0, major: Int32 = 0, minor: Int32 = 0, sms: Int32 = 0
        var context: Pointer = nil
        try check("cuDeviceGet", cuDeviceGet(&device, Int32(ordinal)))
        try check("cuDeviceGetAttribute", cuDeviceGetAttribute(&major, Attribute.computeCapabilityMajor.rawValue, device))
        try check("cuDeviceGetAttribute", cuDeviceGetAttribute(&minor, Attribute.computeCapabilityMinor.rawValue, device))
        try check("cuDeviceGetAttribute", cuDeviceGetAttribute(&sms, Attribute.multiprocessorCount.rawValue, device))
        try check("cuDevicePrimaryCtxRetain", cuDevicePrimaryCtxRetain(&context, device))
        try check("cuCtxSetCurrent", cuCtxSetCurrent(context))
        return CUDADevice(ordinal: ordinal, architecture: Int(major * 10 + minor), multiprocessors: Int(sms))
    }

    /// `bytes` of device memory (uninitialised).
    public func allocate(bytes: Int) throws -> UInt64 {
        var address: UInt64 = 0
        try check("cuMemAlloc_v2", cuMemAlloc(&address, max(bytes, 1)))
        return address
    }

    public func free(_ address: UInt64) throws { try check("cuMemFree_v2", cuMemFree(address)) }

    /// Host → device copy (synchronous).
    public func upload(_ source: UnsafeRawPointer, to address: UInt64, bytes: Int) throws {
        try check("cuMemcpyHtoD_v2", cuMemcpyHtoD(address, source, bytes))
    }

    /// Device → host copy (synchronous).
    public func download(_ address: UInt64, to destination: UnsafeMutableRawPointer, bytes: Int) throws {
        try check("cuMemcpyDtoH_v2", cuMemcpyDtoH(destination, address, bytes))
    }

    /// Sets `count` 32-bit words at `address` to `word` (0 for zero, `Float.bitPattern` for a float fill).
    public func fill(_ address: UInt64, word: UInt32, count: Int) throws {
        try check("cuMemsetD32_v2", cuMemsetD32(address, word, count))
    }

    /// Device → device copy of `bytes` (ordered with the kernels on the default stream).
    public func copy(from source: UInt64, to destination: UInt64, bytes: Int) throws {
        try check("cuMemcpyDtoD_v2", cuMemcpyDtoD(destination, source, bytes))
    }

    /// Loads a cubin (or PTX) image into the current context.
    public func loadModule(_ image: [UInt8]) throws -> OpaquePointer {
        var module: Pointer = nil
        try image.withUnsafeBytes { try check("cuModuleLoadData", cuModuleLoadData(&module, $0.baseAddress)) }
        return module!
    }

    /// The kernel `name` of a loaded module.
    public func function(_ module: OpaquePointer, named name: String) throws -> OpaquePointer {
        var function: Pointer = nil
        try check("cuModuleGetFunction(\(name))", cuModuleGetFunction(&function, module, name))
        return function!
    }

    /// Launches `function` on the default stream; `parameters` points at one pointer per kernel parameter, each to
    /// the parameter's value (`KernelDeclaration.withPackedArguments` builds it).
    public func launch(_ function: OpaquePointer, grid: (UInt32, UInt32, UInt32), block: (UInt32, UInt32, UInt32),
                       sharedBytes: UInt32, parameters: UnsafeMutablePointer<UnsafeMutableRawPointer?>) throws {
        try check("cuLaunchKernel", cuLaunchKernel(function, grid.0, grid.1, grid.2, block.0, block.1, block.2,
                                                   sharedBytes, nil, parameters, nil))
    }

    /// Waits for all work on the current context; device-side faults surface here.
    public func synchronize() throws { try check("cuCtxSynchronize", cuCtxSynchronize()) }
}

/// One GPU, its primary context current on the thread that asked for it.
public struct CUDADevice: Sendable {
    public let ordinal: Int
    /// The compute capability as NVRTC's `sm_` number (90 for an H100/H200).
    public let architecture: Int
    public let multiprocessors: Int
}
