import BERTCUDA
import Foundation
import Testing

/// The Swift launch table (`KernelDeclaration.all`) agrees with the kernels' CUDA C, both ways, and launches are
/// checked against it before anything reaches a GPU.
@Suite struct KernelDeclarationTests {
    static let kernelDirectory = packageRoot + "/Sources/BERTCUDA/Kernels"

    /// A kernel as C spells it: parameters as "type name", whitespace normalised ("const float* x").
    struct Signature: Equatable, CustomStringConvertible {
        let name: String, unit: String, parameters: [String]
        var description: String { "\(unit): \(name)(\(parameters.joined(separator: ", ")))" }
        init(name: String, unit: String, parameters: [String]) { (self.name, self.unit, self.parameters) = (name, unit, parameters) }
        init(_ declaration: KernelDeclaration) {
            self.init(name: declaration.name, unit: declaration.unit,
                      parameters: declaration.parameters.map { "\($0.type.rawValue) \($0.name)" })
        }
    }

    /// `extern "C" __global__ void name(type name, …)` signatures of a source.
    static func signatures(_ source: String, unit: String) throws -> [Signature] {
        let pattern = try NSRegularExpression(pattern: #"extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)"#)
        let text = source as NSString
        return pattern.matches(in: source, range: NSRange(location: 0, length: text.length)).map { match in
            let parameters = text.substring(with: match.range(at: 2)).split(separator: ",").map { parameter in
                let words = parameter.split(whereSeparator: \.isWhitespace).joined(separator: " ")
                let name = String(words.reversed().prefix { $0.isLetter || $0.isNumber || $0 == "_" }.reversed())
                let type = words.dropLast(name.count).trimmingCharacters(in: .whitespaces)
                    .replacingOccurrences(of: " *", with: "*")
                return type + " " + name
            }
            return Signature(name: text.substring(with: match.range(at: 1)), unit: unit, parameters: parameters)
        }
    }

    @Test func everyKernelHasADeclarationAndEveryDeclarationAKernel() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.kernelDirectory).sorted()
        var parsed: [Signature] = []
        for file in files where file.hasSuffix(".cu") {
            parsed += try Self.signatures(String(contentsOfFile: Self.kernelDirectory + "/" + file, encoding: .utf8),
                                          unit: file)
        }
        let declared = KernelDeclaration.all.map(Signature.init)
        #expect(parsed.count >= 29 && parsed.count == declared.count)
        for kernel in parsed where !declared.contains(kernel) {
            Issue.record("source \(kernel) has no matching Swift declaration")
        }
        for kernel in declared where !parsed.contains(kernel) {
            Issue.record("declaration \(kernel) has no matching kernel in the sources")
        }
        #expect(Set(declared.map(\.name)).count == declared.count, "kernel names are unique")
    }

    @Test func theEmbeddedSourcesAreTheFilesInTheTree() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.kernelDirectory)
        let embedded = KernelSources.units + KernelSources.headers
        #expect(Set(files) == Set(embedded.map(\.name)))
        for file in embedded {
            #expect(try String(contentsOfFile: Self.kernelDirectory + "/" + file.name, encoding: .utf8) == file.text)
        }
        #expect(Set(KernelDeclaration.all.map(\.unit)) == Set(KernelSources.units.map(\.name)))
    }

    @Test func launchArgumentsAreCheckedAndPacked() throws {
        let kernel = try #require(KernelDeclaration.named("dropout_apply"))
        let arguments: [KernelArgument] = [.pointer(0x7000_0000_1000), .pointer(0x7000_0000_2000), .pointer(0),
                                           .longLong(-5), .float(0.1), .unsignedLongLong(.max), .unsignedLongLong(3),
                                           .longLong(1), .longLong(8), .longLong(2), .longLong(9)]
        let packed = try kernel.withPackedArguments(arguments) { parameters in
            (0..<11).map { parameters[$0]!.load(as: UInt64.self) }
        }
        #expect(packed == [0x7000_0000_1000, 0x7000_0000_2000, 0, UInt64(bitPattern: -5),
                           UInt64(Float(0.1).bitPattern), .max, 3, 1, 8, 2, 9])
        #expect(throws: CUDAError.self) { try kernel.withPackedArguments(Array(arguments.dropLast())) { _ in } }
        var wrongType = arguments
        wrongType[4] = .int(1)
        #expect(throws: CUDAError.launchArguments(kernel: "dropout_apply", problem: "int(1) given for float p")) {
            try kernel.withPackedArguments(wrongType) { _ in }
        }
        wrongType = arguments
        wrongType[3] = .pointer(1)
        #expect(throws: CUDAError.self) { try kernel.withPackedArguments(wrongType) { _ in } }
    }
}
