import BERTCUDA
import Foundation
import Testing

/// Every kernel unit compiles under NVRTC for sm_90 (the H200) with no register spills, and the on-disk cache keys
/// cubins by what they depend on. Needs no GPU: NVRTC is a library, installed by `make cuda-wheels` (`make test`
/// runs it) from the pinned PyPI wheels into `.build/cuda-wheels`; the tests say so and skip when it is absent.
@Suite struct NVRTCCompileTests {
    static let wheels = packageRoot + "/.build/cuda-wheels/nvidia/cu13"
    static let nvrtc: NVRTC? = {
        do {
            return try NVRTC.load(directories: [wheels + "/lib"])
        } catch {
            print("note: skipping the NVRTC kernel compilation tests (\(error)); `make cuda-wheels` installs it")
            return nil
        }
    }()

    /// Per kernel of a ptxas `-v` log: (spill store bytes, spill load bytes, registers).
    static func resources(_ log: String) -> [String: (stores: Int, loads: Int, registers: Int)] {
        var out: [String: (stores: Int, loads: Int, registers: Int)] = [:], current: String? = nil
        func number(before suffix: String, in line: Substring) -> Int? {
            guard let range = line.range(of: suffix) else { return nil }
            return Int(line[..<range.lowerBound].split(separator: " ").last ?? "")
        }
        for line in log.split(separator: "\n") {
            if line.contains("Compiling entry function"), let name = line.split(separator: "'").dropFirst().first {
                current = String(name)
                out[String(name)] = (-1, -1, -1)
            } else if let kernel = current, let stores = number(before: " bytes spill stores", in: line),
                      let loads = number(before: " bytes spill loads", in: line) {
                out[kernel]!.stores = stores
                out[kernel]!.loads = loads
            } else if let kernel = current, let registers = number(before: " registers", in: line) {
                out[kernel]!.registers = registers
            }
        }
        return out
    }

    @Test func everyUnitCompilesForSM90WithoutSpills() throws {
        guard let nvrtc = Self.nvrtc else { return }
        #expect(nvrtc.version.major == 13)
        let compiler = KernelCompiler(nvrtc: nvrtc, architecture: 90, cacheDirectory: nil)
        var kernels = 0
        for module in try compiler.compileAll() {
            #expect(!module.fromCache)
            #expect(module.cubin.starts(with: [0x7F, 0x45, 0x4C, 0x46]), "\(module.unit): a cubin is an ELF image")
            let found = Self.resources(module.log)
            let declared = Set(KernelDeclaration.all.filter { $0.unit == module.unit }.map(\.name))
            #expect(Set(found.keys) == declared, "\(module.unit): ptxas compiled \(found.keys.sorted())")
            for (kernel, usage) in found.sorted(by: { $0.key < $1.key }) {
                #expect(usage.stores == 0 && usage.loads == 0 && usage.registers > 0,
                        "\(kernel): \(usage.stores) bytes spill stores, \(usage.loads) bytes spill loads, \(usage.registers) registers")
                print("sm_90 \(kernel): \(usage.registers) registers, spills \(usage.stores)/\(usage.loads) bytes")
                kernels += 1
            }
        }
        #expect(kernels == KernelDeclaration.all.count)
    }

    @Test func compileErrorsAreOneLineNamingTheUnit() throws {
        guard let nvrtc = Self.nvrtc else { return }
        let error = #expect(throws: CUDAError.self) {
            try nvrtc.compile(source: "extern \"C\" __global__ void k(float* x) { x[0] = undefined_name; }",
                              name: "broken.cu", headers: [], options: ["--gpu-architecture=sm_90"])
        }
        let message = "\(error!)"
        #expect(message.contains("broken.cu") && message.contains("undefined_name") && !message.contains("\n"), "\(message)")
    }

    @Test func cachedCubinsAreReusedAndKeyedByArchitecture() throws {
        guard let nvrtc = Self.nvrtc else { return }
        let cache = try temporaryDirectory("kernel-cache")
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let unit = try #require(KernelSources.units.first { $0.name == "dropout.cu" })
        let sm90 = KernelCompiler(nvrtc: nvrtc, architecture: 90, cacheDirectory: cache)
        let first = try sm90.compile(unit), second = try sm90.compile(unit)
        #expect(!first.fromCache && second.fromCache && first.cubin == second.cubin)
        let sm80 = try KernelCompiler(nvrtc: nvrtc, architecture: 80, cacheDirectory: cache).compile(unit)
        #expect(!sm80.fromCache && sm80.cubin != first.cubin)
        let names = try FileManager.default.contentsOfDirectory(atPath: cache).sorted()
        #expect(names.count == 2 && names.allSatisfy { $0.hasPrefix("dropout-sm_") && $0.hasSuffix(".cubin") }, "\(names)")
        #expect(names.contains { $0.contains("-sm_90-nvrtc13.") })
    }

    @Test func theDefaultCacheFollowsXDG() {
        #expect(KernelCompiler.defaultCacheDirectory(environment: ["XDG_CACHE_HOME": "/x", "HOME": "/h"])
                == "/x/swift-bert/kernels")
        #expect(KernelCompiler.defaultCacheDirectory(environment: ["HOME": "/h"]) == "/h/.cache/swift-bert/kernels")
    }

    /// The driver entry points and attribute numbers we call without headers are the ones cuda.h (from the
    /// nvidia-cuda-runtime wheel) declares: each name is a declared function, or the `_v2` a plain name maps to.
    @Test func driverEntryPointsMatchCudaH() throws {
        guard Self.nvrtc != nil,
              let header = try? String(contentsOfFile: Self.wheels + "/include/cuda.h", encoding: .utf8) else { return }
        for name in CUDADriver.entryPoints {
            let declared = header.contains("CUresult CUDAAPI \(name)(")
            let mapped = try NSRegularExpression(pattern: #"#define\s+(\w+)\s+"# + name + #"\b"#)
                .firstMatch(in: header, range: NSRange(header.startIndex..., in: header))
                .map { (header as NSString).substring(with: $0.range(at: 1)) }
                .map { header.contains("CUresult CUDAAPI \($0)(") } ?? false
            #expect(declared || mapped, "\(name) is not a driver API function of cuda.h")
        }
        for (attribute, value) in [("COMPUTE_CAPABILITY_MAJOR", CUDADriver.Attribute.computeCapabilityMajor),
                                   ("COMPUTE_CAPABILITY_MINOR", .computeCapabilityMinor),
                                   ("MULTIPROCESSOR_COUNT", .multiprocessorCount)] {
            #expect(header.contains("CU_DEVICE_ATTRIBUTE_\(attribute) = \(value.rawValue),"), "\(attribute)")
        }
    }
}
