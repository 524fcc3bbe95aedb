/// Our kernels loaded on a device: every unit's cubin as a module, every declared kernel resolved in it, and launches
/// that go through the declarations (`KernelDeclaration.all`), so an argument list that does not match the kernel's
/// parameters is an error before anything reaches the GPU.
public final class CUDAKernels: @unchecked Sendable {
    public let driver: CUDADriver
    private var functions: [String: OpaquePointer] = [:]

    /// Loads `modules` (from `KernelCompiler.compileAll`) into the current context.
    /// - Throws: `CUDAError.driver` when a module does not load or lacks a declared kernel.
    public init(driver: CUDADriver, modules: [KernelCompiler.Module]) throws {
        self.driver = driver
        for module in modules {
            let loaded = try driver.loadModule(module.cubin)
            for kernel in KernelDeclaration.all where kernel.unit == module.unit {
                functions[kernel.name] = try driver.function(loaded, named: kernel.name)
            }
        }
    }

    /// Launches kernel `name` on the default stream.
    /// - Throws: `CUDAError.launchArguments` for an unknown kernel or arguments that do not match its declaration;
    ///   `CUDAError.driver` when the launch fails.
    public func launch(_ name: String, grid: (UInt32, UInt32, UInt32), block: (UInt32, UInt32, UInt32),
                       sharedBytes: UInt32 = 0, _ arguments: [KernelArgument]) throws {
        guard let declaration = KernelDeclaration.named(name), let function = functions[name] else {
            throw CUDAError.launchArguments(kernel: name, problem: "no such kernel is declared and loaded")
        }
        try declaration.withPackedArguments(arguments) {
            try driver.launch(function, grid: grid, block: block, sharedBytes: sharedBytes, parameters: $0)
        }
    }
}
