import Foundation

/// Compiles every kernel unit with NVRTC for one GPU architecture, caching the cubins on disk: a start-up on the same
/// machine loads them instead of compiling again. The cache key covers everything the cubin depends on (the unit's
/// and the headers' text, the options, the architecture and NVRTC's version), so a changed source or compiler never
/// loads a stale image.
public struct KernelCompiler: Sendable {
    public let nvrtc: NVRTC
    /// The `sm_` number (90 for the H100/H200).
    public let architecture: Int
    /// Where cubins are kept; nil compiles every time.
    public let cacheDirectory: String?

    public init(nvrtc: NVRTC, architecture: Int, cacheDirectory: String? = KernelCompiler.defaultCacheDirectory()) {
        self.nvrtc = nvrtc
        self.architecture = architecture
        self.cacheDirectory = cacheDirectory
    }

    /// `$XDG_CACHE_HOME/swift-bert/kernels`, else `~/.cache/swift-bert/kernels`.
    public static func defaultCacheDirectory(environment: [String: String] = ProcessInfo.processInfo.environment)
        -> String? {
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/swift-bert/kernels" }
        return environment["HOME"].map { $0 + "/.cache/swift-bert/kernels" }
    }

    /// NVRTC options: the architecture as a real cubin (no PTX JIT on the device) and ptxas's resource report.
    public var options: [String] { ["--gpu-architecture=sm_\(architecture)", "-std=c++17", "--ptxas-options=-v"] }

    /// One unit's device image.
    public struct Module: Sendable {
        public let unit: String
        public let cubin: [UInt8]
        /// The compiler's log (empty when the image came from the cache).
        public let log: String
        public let fromCache: Bool
    }

    /// Every unit of `KernelSources`, from the cache where it holds the image.
    public func compileAll() throws -> [Module] { try KernelSources.units.map(compile) }

    /// One unit, from the cache or compiled (and then cached; a cache that cannot be written is skipped silently, as
    /// it only costs the next start-up a compilation).
    public func compile(_ unit: KernelSources.File) throws -> Module {
        let path = cacheDirectory.map { $0 + "/" + cacheFileName(unit) }
        if let path, let cached = FileManager.default.contents(atPath: path), !cached.isEmpty {
            return Module(unit: unit.name, cubin: [UInt8](cached), log: "", fromCache: true)
        }
        let output = try nvrtc.compile(source: unit.text, name: unit.name,
                                       headers: KernelSources.headers.map { ($0.name, $0.text) }, options: options)
        if let path, let directory = cacheDirectory {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try? Data(output.cubin).write(to: URL(fileURLWithPath: path), options: .atomic)
        }
        return Module(unit: unit.name, cubin: output.cubin, log: output.log, fromCache: false)
    }

    /// `<unit>-sm_<arch>-nvrtc<major>.<minor>-<key>.cubin`, the key a 64-bit FNV-1a hash of all the inputs.
    func cacheFileName(_ unit: KernelSources.File) -> String {
        let inputs = [unit.text] + KernelSources.headers.map(\.text) + options
            + ["sm_\(architecture)", "\(nvrtc.version.major).\(nvrtc.version.minor)"]
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for input in inputs {
            for byte in input.utf8 + [0] { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        }
        let stem = unit.name.replacingOccurrences(of: ".cu", with: "")
        return "\(stem)-sm_\(architecture)-nvrtc\(nvrtc.version.major).\(nvrtc.version.minor)-"
            + String(hash, radix: 16) + ".cubin"
    }
}
