#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A shared library opened with `dlopen`, so that the binary builds and starts on machines without CUDA: nothing of
/// CUDA is linked, and a missing library is an error value, not a failure to start.
final class SharedLibrary: @unchecked Sendable {
    let name: String
    private let handle: UnsafeMutableRawPointer

    /// Opens the first of `candidates` (file names searched the loader's way, or absolute paths) that loads.
    /// - Parameter global: make its symbols available to libraries loaded later (RTLD_GLOBAL).
    /// - Returns: nil when none loads.
    static func open(_ candidates: [String], global: Bool = false) -> SharedLibrary? {
        for path in candidates {
            if let handle = dlopen(path, RTLD_NOW | (global ? RTLD_GLOBAL : RTLD_LOCAL)) {
                return SharedLibrary(name: path, handle: handle)
            }
        }
        return nil
    }

    private init(name: String, handle: UnsafeMutableRawPointer) {
        self.name = name
        self.handle = handle
    }

    /// The entry point `symbol` as a C function of type `T` (a `@convention(c)` function type).
    func function<T>(_ symbol: String, as type: T.Type = T.self) throws -> T {
        guard let address = dlsym(handle, symbol) else { throw CUDAError.missingSymbol(library: name, symbol: symbol) }
        return unsafeBitCast(address, to: type)
    }

    deinit { dlclose(handle) }
}
