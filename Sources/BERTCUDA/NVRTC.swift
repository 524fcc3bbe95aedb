/// NVRTC, CUDA's run-time compiler (libnvrtc), through `dlopen`: it needs no GPU and no driver, so our kernels' CUDA C
/// compiles on any machine that has the library (the PyPI wheel `nvidia-cuda-nvrtc` carries it).
public final class NVRTC: @unchecked Sendable {
    public static let libraryName = "libnvrtc.so.13"
    /// libnvrtc loads this by name at compile time; from a directory off the loader's path it must be loaded first,
    /// with its symbols global, or every compilation fails.
    public static let builtinsName = "libnvrtc-builtins.so.13.0"

    typealias Result = Int32
    typealias Program = OpaquePointer?
    typealias Strings = UnsafePointer<UnsafePointer<CChar>?>?
    private let library: SharedLibrary
    private let builtins: SharedLibrary?
    private let nvrtcVersion: @convention(c) (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) -> Result
    private let nvrtcGetErrorString: @convention(c) (Result) -> UnsafePointer<CChar>?
    private let nvrtcCreateProgram: @convention(c) (UnsafeMutablePointer<Program>, UnsafePointer<CChar>?,
                                                    UnsafePointer<CChar>?, Int32, Strings, Strings) -> Result
    private let nvrtcCompileProgram: @convention(c) (Program, Int32, Strings) -> Result
    private let nvrtcGetProgramLogSize: @convention(c) (Program, UnsafeMutablePointer<Int>) -> Result
    private let nvrtcGetProgramLog: @convention(c) (Program, UnsafeMutablePointer<CChar>?) -> Result
    private let nvrtcGetCUBINSize: @convention(c) (Program, UnsafeMutablePointer<Int>) -> Result
    private let nvrtcGetCUBIN: @convention(c) (Program, UnsafeMutablePointer<CChar>?) -> Result
    private let nvrtcDestroyProgram: @convention(c) (UnsafeMutablePointer<Program>) -> Result

    /// The entry points this class calls.
    public static let entryPoints = [
        "nvrtcVersion", "nvrtcGetErrorString", "nvrtcCreateProgram", "nvrtcCompileProgram", "nvrtcGetProgramLogSize",
        "nvrtcGetProgramLog", "nvrtcGetCUBINSize", "nvrtcGetCUBIN", "nvrtcDestroyProgram",
    ]

    /// NVRTC's version, e.g. (13, 0): part of the kernel cache's key.
    public let version: (major: Int, minor: Int)

    /// Loads NVRTC from the first of `directories` that holds it, else by name through the loader's search path.
    /// - Throws: `CUDAError.libraryNotFound` naming the places tried.
    public static func load(directories: [String] = []) throws -> NVRTC {
        for directory in directories {
            let builtins = SharedLibrary.open([directory + "/" + builtinsName], global: true)
            if let library = SharedLibrary.open([directory + "/" + libraryName]) {
                return try NVRTC(library, builtins: builtins)
            }
        }
        guard let library = SharedLibrary.open([libraryName]) else {
            throw CUDAError.libraryNotFound(
                library: "NVRTC", tried: directories.map { $0 + "/" + libraryName } + [libraryName],
                purpose: "install the nvidia-cuda-nvrtc 13.0 wheel and put its nvidia/cu13/lib on LD_LIBRARY_PATH")
        }
        return try NVRTC(library, builtins: nil)
    }

    private init(_ library: SharedLibrary, builtins: SharedLibrary?) throws {
        self.library = library
        self.builtins = builtins
        nvrtcVersion = try library.function("nvrtcVersion")
        nvrtcGetErrorString = try library.function("nvrtcGetErrorString")
        nvrtcCreateProgram = try library.function("nvrtcCreateProgram")
        nvrtcCompileProgram = try library.function("nvrtcCompileProgram")
        nvrtcGetProgramLogSize = try library.function("nvrtcGetProgramLogSize")
        nvrtcGetProgramLog = try library.function("nvrtcGetProgramLog")
        nvrtcGetCUBINSize = try library.function("nvrtcGetCUBINSize")
        nvrtcGetCUBIN = try library.function("nvrtcGetCUBIN")
        nvrtcDestroyProgram = try library.function("nvrtcDestroyProgram")
        var major: Int32 = 0, minor: Int32 = 0
        _ = nvrtcVersion(&major, &minor)
        version = (Int(major), Int(minor))
    }

    /// What one compilation produced: the device image and the compiler's log (ptxas's register and spill report
    /// when the options ask for `--ptxas-options=-v`).
    public struct Output: Sendable {
        public let cubin: [UInt8]
        public let log: String
    }

    /// Compiles `source` (named `name` in messages) to a cubin, with `headers` resolvable by `#include "name"`.
    /// - Throws: `CUDAError.nvrtc` with the first error line of the log when compilation fails.
    public func compile(source: String, name: String, headers: [(name: String, text: String)],
                        options: [String]) throws -> Output {
        var program: Program = nil
        try withCStrings(headers.map(\.text)) { texts in
            try withCStrings(headers.map(\.name)) { names in
                try check("nvrtcCreateProgram", nvrtcCreateProgram(&program, source, name, Int32(headers.count),
                                                                   texts, names))
            }
        }
        defer { _ = nvrtcDestroyProgram(&program) }
        let result = withCStrings(options) { nvrtcCompileProgram(program, Int32(options.count), $0) }
        var logSize = 0
        _ = nvrtcGetProgramLogSize(program, &logSize)
        var logBytes = [CChar](repeating: 0, count: max(logSize, 1))
        _ = nvrtcGetProgramLog(program, &logBytes)
        let log = String(decoding: logBytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard result == 0 else {
            let firstError = log.split(separator: "\n").first { $0.contains("error") }.map(String.init) ?? ""
            throw CUDAError.nvrtc(call: "compiling \(name)", code: result, log: firstError)
        }
        var size = 0
        try check("nvrtcGetCUBINSize", nvrtcGetCUBINSize(program, &size))
        var cubin = [CChar](repeating: 0, count: size)
        try check("nvrtcGetCUBIN", nvrtcGetCUBIN(program, &cubin))
        return Output(cubin: cubin.map { UInt8(bitPattern: $0) }, log: log)
    }

    private func check(_ call: String, _ result: Result) throws {
        guard result != 0 else { return }
        throw CUDAError.nvrtc(call: call, code: result, log: nvrtcGetErrorString(result).map { String(cString: $0) } ?? "")
    }
}

/// Calls `body` with a C array of C strings for `strings`, valid only during the call.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) throws -> R) rethrows -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { UnsafePointer($0) }
    return try pointers.withUnsafeBufferPointer { try body($0.baseAddress) }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
