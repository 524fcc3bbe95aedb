/// The kernels of Kernels/*.cu as Swift sees them: each kernel's name, unit and parameter list in order, the one
/// table launches go through (`withPackedArguments` checks the arguments against it), and that a test checks against
/// the `extern "C" __global__` signatures of the sources, both ways.
public struct KernelDeclaration: Sendable, Equatable {
    /// A kernel parameter's C type, spelled as in the source (the raw value).
    public enum ParameterType: String, Sendable, CaseIterable {
        case float = "float", int = "int", longLong = "long long", unsignedLongLong = "unsigned long long"
        case floatPointer = "float*", constFloatPointer = "const float*"
        case bf16Pointer = "bf16*", constBF16Pointer = "const bf16*"
        case intPointer = "int*", constIntPointer = "const int*"
        case doublePointer = "double*", constDoublePointer = "const double*"
        case constChunkPointer = "const bert_chunk*"

        var isPointer: Bool { rawValue.hasSuffix("*") }
    }

    public struct Parameter: Sendable, Equatable {
        public let name: String
        public let type: ParameterType
    }

    public let name: String
    /// The `.cu` unit (module) that defines it.
    public let unit: String
    public let parameters: [Parameter]

    init(_ name: String, in unit: String, _ parameters: [(String, ParameterType)]) {
        self.name = name
        self.unit = unit
        self.parameters = parameters.map { Parameter(name: $0.0, type: $0.1) }
    }

    /// Every kernel, grouped by unit.
    public static let all: [KernelDeclaration] = [
        KernelDeclaration("bias_activation_forward_f32", in: "activation.cu", [("y", .floatPointer),
            ("pre", .floatPointer), ("x", .constFloatPointer), ("bias", .constFloatPointer), ("n", .longLong),
            ("F", .int), ("form", .int)]),
        KernelDeclaration("bias_activation_forward_bf16", in: "activation.cu", [("y", .bf16Pointer),
            ("pre", .floatPointer), ("x", .constFloatPointer), ("bias", .constFloatPointer), ("n", .longLong),
            ("F", .int), ("form", .int)]),
        KernelDeclaration("activation_backward", in: "activation.cu", [("dx", .floatPointer),
            ("dy", .constFloatPointer), ("pre", .constFloatPointer), ("n", .longLong), ("form", .int)]),
        KernelDeclaration("activation_value_and_derivative", in: "activation.cu", [("y", .floatPointer),
            ("d", .floatPointer), ("x", .constFloatPointer), ("n", .longLong), ("form", .int)]),
        KernelDeclaration("activation_backward_saved", in: "activation.cu", [("dx", .floatPointer),
            ("dy", .constFloatPointer), ("d", .constFloatPointer), ("n", .longLong)]),
        KernelDeclaration("attention_softmax_forward_f32", in: "attention.cu", [("probs", .floatPointer),
            ("dropped", .floatPointer), ("scores", .constFloatPointer), ("key_bias", .constFloatPointer),
            ("key_ranges", .constIntPointer), ("A", .int), ("S", .int), ("p", .float), ("seed", .unsignedLongLong),
            ("stream", .unsignedLongLong), ("stream_S", .int)]),
        KernelDeclaration("attention_softmax_forward_bf16", in: "attention.cu", [("probs", .floatPointer),
            ("dropped", .bf16Pointer), ("scores", .constFloatPointer), ("key_bias", .constFloatPointer),
            ("key_ranges", .constIntPointer), ("A", .int), ("S", .int), ("p", .float), ("seed", .unsignedLongLong),
            ("stream", .unsignedLongLong), ("stream_S", .int)]),
        KernelDeclaration("attention_softmax_backward", in: "attention.cu", [("d_scores", .floatPointer),
            ("d_dropped", .constFloatPointer), ("probs", .constFloatPointer), ("S", .int), ("p", .float),
            ("seed", .unsignedLongLong), ("stream", .unsignedLongLong), ("stream_S", .int)]),
        KernelDeclaration("cross_entropy_forward", in: "cross_entropy.cu", [("loss", .floatPointer),
            ("lse", .floatPointer), ("correct", .intPointer), ("logits", .constFloatPointer),
            ("labels", .constIntPointer), ("C", .int), ("ld", .int)]),
        KernelDeclaration("cross_entropy_backward", in: "cross_entropy.cu", [("logits", .floatPointer),
            ("lse", .constFloatPointer), ("labels", .constIntPointer), ("C", .int), ("ld", .int), ("scale", .float)]),
        KernelDeclaration("dropout_apply", in: "dropout.cu", [("y", .floatPointer), ("x", .constFloatPointer),
            ("residual", .constFloatPointer), ("n", .longLong), ("p", .float), ("seed", .unsignedLongLong),
            ("stream", .unsignedLongLong), ("S", .longLong), ("W", .longLong), ("stream_S", .longLong),
            ("stream_W", .longLong)]),
        KernelDeclaration("embedding_forward", in: "embedding.cu", [("out", .floatPointer), ("ids", .constIntPointer),
            ("segments", .constIntPointer), ("positions", .constIntPointer), ("word", .constFloatPointer),
            ("position", .constFloatPointer), ("token_type", .constFloatPointer), ("S", .int), ("H", .int)]),
        KernelDeclaration("embedding_backward", in: "embedding.cu", [("d_word", .floatPointer),
            ("d_position", .floatPointer), ("d_token_type", .floatPointer), ("d_out", .constFloatPointer),
            ("ids", .constIntPointer), ("segments", .constIntPointer), ("positions", .constIntPointer), ("S", .int),
            ("H", .int), ("padding_id", .int)]),
        KernelDeclaration("layernorm_forward_f32", in: "layernorm.cu", [("y", .floatPointer), ("mean", .floatPointer),
            ("rstd", .floatPointer), ("x", .constFloatPointer), ("gamma", .constFloatPointer),
            ("beta", .constFloatPointer), ("H", .int), ("eps", .float)]),
        KernelDeclaration("layernorm_forward_bf16", in: "layernorm.cu", [("y", .bf16Pointer), ("mean", .floatPointer),
            ("rstd", .floatPointer), ("x", .constFloatPointer), ("gamma", .constFloatPointer),
            ("beta", .constFloatPointer), ("H", .int), ("eps", .float)]),
        KernelDeclaration("layernorm_backward", in: "layernorm.cu", [("dx", .floatPointer),
            ("partial", .floatPointer), ("dy", .constFloatPointer), ("x", .constFloatPointer),
            ("gamma", .constFloatPointer), ("mean", .constFloatPointer), ("rstd", .constFloatPointer), ("N", .int),
            ("H", .int)]),
        KernelDeclaration("chunk_sum_squares", in: "optimizer.cu", [("partial", .doublePointer),
            ("x", .constFloatPointer), ("chunks", .constChunkPointer), ("width", .int), ("column", .int)]),
        KernelDeclaration("tensor_sums", in: "optimizer.cu", [("sums", .doublePointer),
            ("partial", .constDoublePointer), ("first_chunk", .constIntPointer), ("tensors", .int), ("width", .int)]),
        KernelDeclaration("lamb_moments", in: "optimizer.cu", [("g", .floatPointer), ("m", .floatPointer),
            ("v", .floatPointer), ("w", .constFloatPointer), ("chunks", .constChunkPointer),
            ("tensor_decay", .constFloatPointer), ("base", .longLong), ("clip", .float), ("b1", .float),
            ("b2", .float), ("c1", .float), ("c2", .float), ("bc1", .float), ("bc2", .float), ("eps", .float)]),
        KernelDeclaration("scaled_update", in: "optimizer.cu", [("w", .floatPointer), ("u", .constFloatPointer),
            ("chunks", .constChunkPointer), ("tensor_scale", .constFloatPointer)]),
        KernelDeclaration("adamw_update", in: "optimizer.cu", [("w", .floatPointer), ("m", .floatPointer),
            ("v", .floatPointer), ("g", .constFloatPointer), ("chunks", .constChunkPointer),
            ("tensor_decay", .constFloatPointer), ("base", .longLong), ("clip", .float), ("b1", .float),
            ("b2", .float), ("c1", .float), ("c2", .float), ("lr", .float), ("step_size", .float),
            ("bc2_root", .float), ("eps", .float), ("bias_correction", .int)]),
        KernelDeclaration("lans_moments", in: "optimizer.cu", [("m", .floatPointer), ("v", .floatPointer),
            ("g", .constFloatPointer), ("chunks", .constChunkPointer), ("tensor_scale", .constFloatPointer),
            ("base", .longLong), ("b1", .float), ("b2", .float), ("c1", .float), ("c2", .float)]),
        KernelDeclaration("lans_direction_sums", in: "optimizer.cu", [("partial", .doublePointer),
            ("w", .constFloatPointer), ("m", .constFloatPointer), ("v", .constFloatPointer),
            ("g", .constFloatPointer), ("chunks", .constChunkPointer), ("tensor_decay", .constFloatPointer),
            ("tensor_scale", .constFloatPointer), ("base", .longLong), ("bc1", .float), ("bc2", .float),
            ("eps", .float)]),
        KernelDeclaration("lans_update", in: "optimizer.cu", [("w", .floatPointer), ("m", .constFloatPointer),
            ("v", .constFloatPointer), ("g", .constFloatPointer), ("chunks", .constChunkPointer),
            ("tensor_decay", .constFloatPointer), ("tensor_scale", .constFloatPointer),
            ("r_scale", .constFloatPointer), ("c_scale", .constFloatPointer), ("base", .longLong), ("bc1", .float),
            ("bc2", .float), ("eps", .float)]),
        KernelDeclaration("gather_rows", in: "rows.cu", [("out", .floatPointer), ("src", .constFloatPointer),
            ("rows", .constIntPointer), ("width", .int)]),
        KernelDeclaration("scatter_add_rows", in: "rows.cu", [("dst", .floatPointer), ("src", .constFloatPointer),
            ("rows", .constIntPointer), ("width", .int)]),
        KernelDeclaration("column_partial_sums", in: "rows.cu", [("partial", .floatPointer),
            ("m", .constFloatPointer), ("rows", .int), ("cols", .int), ("rows_per_part", .int)]),
        KernelDeclaration("add_partial_sums", in: "rows.cu", [("out", .floatPointer), ("partial", .constFloatPointer),
            ("parts", .int), ("cols", .int), ("ld", .int)]),
        KernelDeclaration("convert_to_bf16", in: "rows.cu", [("out", .bf16Pointer), ("in", .constFloatPointer),
            ("n", .longLong)]),
        KernelDeclaration("transpose", in: "rows.cu", [("out", .floatPointer), ("x", .constFloatPointer), ("R", .int),
            ("C", .int)]),
        KernelDeclaration("bias_residual_add", in: "rows.cu", [("out", .floatPointer), ("y", .constFloatPointer),
            ("bias", .constFloatPointer), ("residual", .constFloatPointer), ("n", .longLong), ("F", .int)]),
    ]

    /// The declaration of kernel `name`.
    public static func named(_ name: String) -> KernelDeclaration? { all.first { $0.name == name } }
}
