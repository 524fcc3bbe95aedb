/// Why a CUDA library could not be used, each as one line a user can act on.
public enum CUDAError: Error, Equatable, CustomStringConvertible {
    /// A shared library was not found at any of the places `tried`; `purpose` says what needs it or how to get it.
    case libraryNotFound(library: String, tried: [String], purpose: String)
    /// A library was found but lacks an entry point (an older version than the one the backend was written for).
    case missingSymbol(library: String, symbol: String)
    /// A driver API call failed.
    case driver(call: String, code: Int32, message: String)
    /// An NVRTC call failed; for compilation, `log` holds the compiler's first error line.
    case nvrtc(call: String, code: Int32, log: String)
    /// A cuBLASLt or NCCL call failed.
    case library(call: String, code: Int32)
    /// Arguments that do not match a kernel's declaration (a programming error caught before the launch).
    case launchArguments(kernel: String, problem: String)

    public var description: String {
        switch self {
        case let .libraryNotFound(library, tried, purpose):
            return "no \(library) found (\(tried.joined(separator: ", ")) could not be loaded): \(purpose)"
        case let .missingSymbol(library, symbol):
            return "\(library) has no entry point \(symbol): it is older than this build needs (CUDA 13)"
        case let .driver(call, code, message): return "CUDA driver call \(call) failed with error \(code): \(message)"
        case let .nvrtc(call, code, log):
            return "NVRTC \(call) failed with error \(code)" + (log.isEmpty ? "" : ": \(log)")
        case let .library(call, code): return "\(call) failed with status \(code)"
        case let .launchArguments(kernel, problem): return "kernel \(kernel): \(problem)"
        }
    }
}
