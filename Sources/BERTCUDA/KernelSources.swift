/// Our kernels' CUDA C, embedded in the binary at build time (Package.swift: `.embedInCode("Kernels")`) so that a
/// static `bert` carries them and compiles them with NVRTC on the GPU machine, where no source tree exists.
public enum KernelSources {
    /// One `.cu` file: a compilation unit with its `extern "C" __global__` kernels.
    public struct File: Sendable {
        public let name: String
        public let text: String
    }

    /// The headers every unit may `#include "…"`.
    public static let headers: [File] = [
        File(name: "bert_shared.cuh", text: string(PackageResources.bert_shared_cuh)),
        File(name: "bert_device.cuh", text: string(PackageResources.bert_device_cuh)),
    ]

    /// The compilation units, one module each.
    public static let units: [File] = [
        File(name: "activation.cu", text: string(PackageResources.activation_cu)),
        File(name: "attention.cu", text: string(PackageResources.attention_cu)),
        File(name: "cross_entropy.cu", text: string(PackageResources.cross_entropy_cu)),
        File(name: "dropout.cu", text: string(PackageResources.dropout_cu)),
        File(name: "embedding.cu", text: string(PackageResources.embedding_cu)),
        File(name: "layernorm.cu", text: string(PackageResources.layernorm_cu)),
        File(name: "optimizer.cu", text: string(PackageResources.optimizer_cu)),
        File(name: "rows.cu", text: string(PackageResources.rows_cu)),
    ]

    private static func string(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
}
