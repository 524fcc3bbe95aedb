// swift-tools-version:6.0
import PackageDescription

/// The numeric targets are optimised even in debug builds: plain debug numeric code runs 60–800× slower,
/// which would make `swift test` unusable. On x86-64 we also enable AVX2/FMA (plain `-c release` emits SSE2
/// only and calls libm `fmaf` per SIMD lane) and `-fno-math-errno` (so `sqrt` inlines and loops vectorise).
#if arch(x86_64)
let fastMath: [SwiftSetting] = [.unsafeFlags(["-O", "-target-cpu", "haswell", "-Xcc", "-fno-math-errno"])]
#else
let fastMath: [SwiftSetting] = [.unsafeFlags(["-O", "-Xcc", "-fno-math-errno"])]
#endif

let package = Package(
    name: "swift-bert",
    products: [
        .executable(name: "bert", targets: ["bert"]),
        .library(name: "BERT", targets: ["BERT"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        /// oneDNN: its sgemm is our fp32 GEMM on AVX-512 CPUs (faster than OpenBLAS's on most shapes measured; README).
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5",
                       providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .systemLibrary(name: "CBZip2", path: "Sources/CBZip2", providers: [.apt(["libbz2-dev"])]),
        /// bf16 GEMM on AMX tiles, in C: Swift cannot mark single functions for AVX-512/AMX while the rest of the binary
        /// stays on AVX2, and tile intrinsics have no Swift form.
        .target(name: "CBF16GEMM", cSettings: [.unsafeFlags(["-O3"])]),
        /// 16-lane AVX-512 versions of elementwise kernels, in C for the same reason; each matches its Swift kernel bit
        /// for bit and is picked at run time.
        .target(name: "CAVX512Kernels", cSettings: [.unsafeFlags(["-O3", "-ffp-contract=off"])]),
        /// The kernels' fork-join pool, in C for atomics, the pause instruction and futexes (thread_pool.h).
        .target(name: "CThreadPool", cSettings: [.unsafeFlags(["-O2"])]),
        /// Kernels: forward and backward of every op, the thread pool and the counter-based RNG.
        .target(name: "BERTKernels", dependencies: ["CBLAS", "CDNNL", "CBF16GEMM", "CAVX512Kernels", "CBERTShared",
                                                    "CThreadPool"], swiftSettings: fastMath),
        /// Model, data, runtime and workflows on top of the kernels.
        .target(name: "BERT", dependencies: ["BERTKernels", "BERTCUDA", "CBERTShared", "CHDF5", "CMPI", "CBZip2"], swiftSettings: fastMath),
        /// The CUDA backend's host side: libcuda, NVRTC, cuBLASLt and NCCL through dlopen (no CUDA at build time), and
        /// our kernels' CUDA C (Kernels/*.cu), embedded in the binary and compiled by NVRTC at start-up.
        .target(name: "BERTCUDA", dependencies: ["BERTKernels", "CBERTShared", "CCUDATypes"],
                resources: [.embedInCode("Kernels")]),
        .systemLibrary(name: "CCUDATypes", path: "Sources/CCUDATypes"),
        /// The kernels' shared device functions and types (Kernels/bert_shared.cuh) for the host: tests, chunk tables.
        .systemLibrary(name: "CBERTShared", path: "Sources/CBERTShared"),
        .executableTarget(name: "bert", dependencies: [
            "BERT", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "BERTTests", dependencies: ["BERT", "BERTKernels", "CBZip2", "BERTCUDA", "CBERTShared",
                                                   "CThreadPool"],
                    exclude: [], swiftSettings: fastMath),
    ]
)
