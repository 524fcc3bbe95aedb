import BERTCUDA
import Foundation
import Testing

/// Without the CUDA libraries, loading them fails with one line that says what is missing and what to do; nothing of
/// CUDA is needed to build or start the program.
@Suite struct CUDALoaderTests {
    static let driverPresent = FileManager.default.fileExists(atPath: "/usr/lib/x86_64-linux-gnu/libcuda.so.1")
        || ProcessInfo.processInfo.environment["LD_LIBRARY_PATH"]?.split(separator: ":").contains {
            FileManager.default.fileExists(atPath: "\($0)/libcuda.so.1")
        } == true

    @Test func noDriverIsOneClearLine() throws {
        if Self.driverPresent {
            print("note: this machine has libcuda.so.1; the no-driver message is checked with a path that does not exist")
        } else {
            let error = #expect(throws: CUDAError.self) { try CUDADriver.load() }
            #expect("\(error!)" == "no CUDA driver found (libcuda.so.1 could not be loaded): the CUDA device needs an NVIDIA GPU and its driver")
        }
        let error = #expect(throws: CUDAError.self) { try CUDADriver.load(candidates: ["/nonexistent/libcuda.so.1"]) }
        let message = "\(error!)"
        #expect(message.hasPrefix("no CUDA driver") && message.contains("/nonexistent/libcuda.so.1") && !message.contains("\n"))
    }

    @Test func missingLibrariesNameThemselvesAndTheFix() {
        let errors: [CUDAError?] = [
            #expect(throws: CUDAError.self) { try CUBLASLt.load(candidates: ["/nonexistent/libcublasLt.so.13"]) },
            #expect(throws: CUDAError.self) { try NCCL.load(candidates: ["/nonexistent/libnccl.so.2"]) },
        ]
        #expect("\(errors[0]!)" == "no cuBLASLt found (/nonexistent/libcublasLt.so.13 could not be loaded): install the nvidia-cublas 13 wheel or the CUDA 13 toolkit")
        #expect("\(errors[1]!)" == "no NCCL found (/nonexistent/libnccl.so.2 could not be loaded): install the nvidia-nccl-cu13 wheel or NCCL 2 for CUDA 13")
    }

    @Test func aLibraryWithoutTheEntryPointsIsRejected() {
        // libm loads but has no cuInit: the error names the library and the symbol instead of crashing later.
        let error = #expect(throws: CUDAError.self) { try CUDADriver.load(candidates: ["libm.so.6"]) }
        #expect(error == .missingSymbol(library: "libm.so.6", symbol: "cuInit"))
    }
}
