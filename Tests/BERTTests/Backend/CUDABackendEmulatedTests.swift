import BERTCUDA
import BERTKernels
import Testing
@testable import BERT

/// `CUDABackend` on `EmulatedRuntime` (device-only memory, a Swift reference of each kernel's `.cu` source and of the
/// cuBLASLt descriptors) against `CPUBackend`: every `Backend` operation on random inputs within 1e-5 relative in fp32
/// with dropout masks equal, whole training steps (pre-training, QA, classification) within a stated fp32 tolerance,
/// and bf16 GEMM inputs within a stated band. This proves the backend's launches, leading dimensions, strides and
/// scratch layouts; it does not prove that the kernels or cuBLASLt behave so on a GPU (nothing here ran on one).
@Suite struct CUDABackendEmulatedTests {
    static func cuda(_ precision: Precision = .fp32) -> CUDABackend {
        CUDABackend(runtime: EmulatedRuntime(), precision: precision)
    }

    /// A buffer of an operation under test: data uploaded to both backends, or scratch each sizes for itself.
    enum Buffer {
        case floats([Float]), ints([Int32]), attentionScratch(batch: Int, seqLength: Int, heads: Int), normScratch(Int)
    }

    /// An operation on inputs, run on both backends, every non-scratch buffer compared afterwards.
    struct Operation: Sendable, CustomTestStringConvertible {
        let name: String
        let buffers: @Sendable () -> [Buffer]
        let body: @Sendable (any Backend, [UInt]) -> Void
        var testDescription: String { name }
    }

    /// Runs `operation` on `backend`; the final contents of its float buffers (nil for ints and scratch).
    static func run(_ operation: Operation, on backend: any Backend) -> [[Float]?] {
        let buffers = operation.buffers()
        let held: [DeviceBuffer] = buffers.map { buffer in
            switch buffer {
            case let .floats(values):
                let b = DeviceBuffer(backend: backend, count: values.count)
                b.upload(values)
                return b
            case let .ints(values):
                let b = DeviceBuffer(backend: backend, count: values.count)
                backend.upload(values, to: b.base.reinterpreted(as: Int32.self))
                return b
            case let .attentionScratch(B, S, A): return DeviceBuffer(backend: backend, count: backend.attentionScratchCount(batch: B, seqLength: S, heads: A))
            case let .normScratch(H): return DeviceBuffer(backend: backend, count: backend.layerNormScratchCount(features: H))
            }
        }
        operation.body(backend, held.map(\.base.address))
        return zip(buffers, held).map { buffer, b in
            if case .floats = buffer { return b.array() }
            return nil
        }
    }

    /// max |a − b| / max |a| over one buffer.
    static func relativeDifference(_ a: [Float], _ b: [Float]) -> Float {
        let scale = max(a.map(abs).max() ?? 0, 1e-30)
        return zip(a, b).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
    }

    // Shapes: B batch, S sequence, A heads, D head size, H hidden, I intermediate, T tokens, V vocabulary.
    static let (B, S, A, D, V) = (2, 5, 2, 4, 11)
    static let (H, I, T) = (A * D, 12, B * S)
    static func random(_ n: Int, seed: UInt64, scale: Float = 1) -> Buffer {
        var r = TestRandom(seed)
        return .floats(r.normal(n, scale: scale))
    }
    static func zeros(_ n: Int) -> Buffer { .floats([Float](repeating: 0, count: n)) }
    static let ids: Buffer = .ints([0, 3, 3, 10, 1, 0, 7, 3, 2, 9])
    static let segments: Buffer = .ints([0, 0, 1, 1, 1, 0, 0, 0, 1, 1])
    static let keyBias: Buffer = .floats([0, 0, 0, -10000, -10000, 0, 0, 0, 0, 0])
    static let rng = CounterRNG(seed: 17, stream: 5)

    static func f(_ a: UInt) -> DeviceFloats { DeviceFloats(address: a) }
    static func n(_ a: UInt) -> DeviceInts { DeviceInts(address: a) }

    static let operations: [Operation] = {
        var ops: [Operation] = []
        func op(_ name: String, _ buffers: @escaping @Sendable () -> [Buffer], _ body: @escaping @Sendable (any Backend, [UInt]) -> Void) {
            ops.append(Operation(name: name, buffers: buffers, body: body))
        }
        op("fill and copy", { [random(T, seed: 1), zeros(T)] }) { k, p in
            k.fill(f(p[0]) + 2, count: 3, value: -1.5)
            k.copy(f(p[0]), to: f(p[1]) + 1, count: T - 1)
        }
        op("embeddingForward", { [ids, segments, random(V * H, seed: 2), random(S * H, seed: 3), random(2 * H, seed: 4), zeros(T * H)] }) { k, p in
            k.embeddingForward(ids: n(p[0]), segments: n(p[1]), word: f(p[2]), position: f(p[3]), tokenType: f(p[4]),
                               out: f(p[5]), batch: B, seqLength: S, hidden: H)
        }
        for padding in [Int32(0), nil] {
            op("embeddingBackward padding \(padding.map(String.init) ?? "none")", { [random(T * H, seed: 5), ids, segments, random(V * H, seed: 6), zeros(S * H), zeros(2 * H)] }) { k, p in
                k.embeddingBackward(dOut: f(p[0]), ids: n(p[1]), segments: n(p[2]), dWord: f(p[3]), dPosition: f(p[4]),
                                    dTokenType: f(p[5]), batch: B, seqLength: S, hidden: H, paddingId: padding)
            }
        }
        op("layerNormForward", { [random(T * H, seed: 7, scale: 3), random(H, seed: 8), random(H, seed: 9), zeros(T * H), zeros(T), zeros(T)] }) { k, p in
            k.layerNormForward(x: f(p[0]), gamma: f(p[1]), beta: f(p[2]), y: f(p[3]), mean: f(p[4]), rstd: f(p[5]),
                               rows: T, features: H, eps: 1e-12)
        }
        op("layerNormBackward", { [random(T * H, seed: 10), random(T * H, seed: 11), random(H, seed: 12), zeros(T), zeros(T), zeros(T * H), random(H, seed: 13), random(H, seed: 14), .normScratch(H)] }) { k, p in
            k.layerNormForward(x: f(p[1]), gamma: f(p[2]), beta: f(p[2]), y: f(p[5]), mean: f(p[3]), rstd: f(p[4]),
                               rows: T, features: H, eps: 1e-5)
            k.layerNormBackward(dy: f(p[0]), x: f(p[1]), gamma: f(p[2]), mean: f(p[3]), rstd: f(p[4]), dx: f(p[0]),
                                dGamma: f(p[6]), dBeta: f(p[7]), rows: T, features: H, scratch: f(p[8]))
        }
        for bias in [true, false] {
            op("linearForward bias \(bias)", { [random(T * H, seed: 15), random(I * H, seed: 16), random(I, seed: 17), zeros(T * I)] }) { k, p in
                k.linearForward(x: f(p[0]), weight: f(p[1]), bias: bias ? f(p[2]) : nil, y: f(p[3]), rows: T, inFeatures: H,
                                outFeatures: I)
            }
        }
        op("addBias", { [random(T * H, seed: 18), random(H, seed: 19), random(T * H, seed: 20), zeros(T * H)] }) { k, p in
            k.addBias(f(p[0]), bias: f(p[1]), residual: f(p[2]), f(p[3]), rows: T, outFeatures: H)
        }
        for (accumulate, withDx, withBias) in [(false, true, true), (true, true, false), (false, false, true)] {
            op("linearBackward accumulate \(accumulate) dx \(withDx) dBias \(withBias)", { [random(T * I, seed: 21), random(T * H, seed: 22), random(I * H, seed: 23), random(T * H, seed: 24), random(I * H, seed: 25), random(I, seed: 26)] }) { k, p in
                k.linearBackward(dy: f(p[0]), x: f(p[1]), weight: f(p[2]), dx: withDx ? f(p[3]) : nil, dWeight: f(p[4]),
                                 dBias: withBias ? f(p[5]) : nil, rows: T, inFeatures: H, outFeatures: I,
                                 accumulateInput: accumulate)
            }
        }
        for activation in [Activation.geluErf, .geluTanh, .tanh, .relu] {
            op("activations \(activation)", { [random(T * I, seed: 27, scale: 3), random(I, seed: 28), zeros(T * I), zeros(T * I), zeros(T * I), random(T * I, seed: 29), zeros(T * I), zeros(T * I)] }) { k, p in
                k.activationForward(activation, f(p[0]), bias: f(p[1]), f(p[2]), rows: T, features: I)
                k.activationForward(activation, f(p[0]), bias: nil, f(p[3]), rows: T, features: I)
                k.activationValueAndDerivative(activation, f(p[0]), f(p[4]), f(p[7]), count: T * I)
                k.activationBackward(f(p[5]), derivative: f(p[7]), f(p[6]), count: T * I)
                k.activationBackward(activation, f(p[5]), x: f(p[0]), f(p[5]), count: T * I)
            }
        }
        for (p, training) in [(Float(0.1), true), (0, true), (0, false)] {
            op("attention dropout \(p) training \(training)", { [random(T * 3 * H, seed: 30), keyBias, zeros(B * A * S * S), zeros(T * H), random(T * H, seed: 31), zeros(T * 3 * H), .attentionScratch(batch: B, seqLength: S, heads: A)] }) { k, q in
                k.attentionForward(qkv: f(q[0]), keyBias: f(q[1]), probs: training ? f(q[2]) : nil, context: f(q[3]), batch: B,
                                   seqLength: S, heads: A, headSize: D, dropout: p, rng: rng, scratch: f(q[6]))
                guard training else { return }
                k.attentionBackward(dContext: f(q[4]), qkv: f(q[0]), probs: f(q[2]), dQKV: f(q[5]), batch: B, seqLength: S,
                                    heads: A, headSize: D, dropout: p, rng: rng, scratch: f(q[6]))
            }
        }
        op("dropout", { [random(T * H, seed: 32), random(T * H, seed: 33), zeros(T * H), zeros(T * H), zeros(T * H)] }) { k, p in
            k.dropoutForward(f(p[0]), residual: nil, f(p[2]), count: T * H, probability: 0.3, rng: rng)
            k.dropoutForward(f(p[0]), residual: f(p[1]), f(p[3]), count: T * H, probability: 0.3, rng: rng)
            k.dropoutBackward(f(p[1]), f(p[4]), count: T * H, probability: 0.3, rng: rng)
        }
        op("crossEntropy", { [random(T * 8, seed: 34, scale: 4), .ints([0, 6, 2, 2, 5, 1, 0, 3, 4, 6]), zeros(T)] }) { k, p in
            let (loss, correct) = k.crossEntropyForward(logits: f(p[0]), labels: n(p[1]), rows: T, classes: 7, ld: 8, logSumExp: f(p[2]))
            k.fill(f(p[2]) + (T - 1), count: 1, value: Float(loss) + Float(correct) * 1000)   // the returned values compared too
            k.crossEntropyBackward(logitsToGradient: f(p[0]), labels: n(p[1]), rows: T - 1, classes: 7, ld: 8,
                                   logSumExp: f(p[2]), scale: 0.25)
        }
        op("rows", { [random(V * H, seed: 35), .ints([3, 0, 3, 10]), zeros(4 * H), random(V * H, seed: 36), zeros(V * H)] }) { k, p in
            k.gatherRows(f(p[0]), indices: n(p[1]), count: 4, width: H, into: f(p[2]))
            k.scatterAddRows(f(p[2]), indices: n(p[1]), count: 4, width: H, into: f(p[3]))
            k.transpose(f(p[0]), rows: V, columns: H, into: f(p[4]))
        }
        return ops
    }()

    @Test(arguments: operations)
    func operationMatchesTheCPUBackend(_ operation: Operation) {
        let cpu = Self.run(operation, on: CPUBackend.shared), device = Self.run(operation, on: Self.cuda())
        for (i, (a, b)) in zip(cpu, device).enumerated() {
            guard let a, let b else { continue }
            let difference = Self.relativeDifference(a, b)
            #expect(difference <= 1e-5, "\(operation.name): buffer \(i) differs by \(difference) relative")
            #expect(a.map { $0 == 0 } == b.map { $0 == 0 }, "\(operation.name): buffer \(i) has other zeros (dropout masks)")
        }
    }

    @Test func everyOperationRunsOnTheDevice() throws {
        let runtime = EmulatedRuntime(), backend = CUDABackend(runtime: runtime, precision: .fp32)
        for operation in Self.operations { _ = Self.run(operation, on: backend) }
        let used = Set(runtime.launchCounts.keys)
        #expect(runtime.launchCounts["matmul", default: 0] > 20)
        for kernel in ["embedding_forward", "embedding_backward", "layernorm_forward_f32", "layernorm_backward",
                       "add_partial_sums", "column_partial_sums", "bias_residual_add", "bias_activation_forward_f32",
                       "activation_value_and_derivative", "activation_backward_saved", "activation_backward",
                       "attention_softmax_forward_f32", "attention_softmax_backward", "dropout_apply",
                       "cross_entropy_forward", "cross_entropy_backward", "gather_rows", "scatter_add_rows", "transpose"] {
            #expect(used.contains(kernel), "\(kernel) never launched")
        }
        #expect(!used.contains("convert_to_bf16"), "fp32 mode makes no bf16 copies")
    }

    @Test func theEmulatorRejectsLaunchesOutsideTheirBuffers() throws {
        let runtime = EmulatedRuntime()
        let x = try runtime.allocate(bytes: 4 * 8), y = try runtime.allocate(bytes: 4 * 8)
        // One block per row: 3 rows of 4 read 12 floats from an 8-float buffer.
        #expect(throws: CUDAError.self) {
            try runtime.launch("layernorm_forward_f32", grid: Dim3(3), block: Dim3(32),
                               [.pointer(y), .pointer(y), .pointer(y), .pointer(x), .pointer(x), .pointer(x), .int(4), .float(1e-5)])
        }
        #expect(throws: CUDAError.self) {   // a row kernel's reductions need whole warps
            try runtime.launch("layernorm_forward_f32", grid: Dim3(2), block: Dim3(20),
                               [.pointer(y), .pointer(y), .pointer(y), .pointer(x), .pointer(x), .pointer(x), .int(4), .float(1e-5)])
        }
        // A leading dimension below the rows of a column-major layout.
        let bad = MatmulDescription(transposeA: false, transposeB: false, m: 2, n: 2, k: 2, a: .init(address: x, ld: 1),
                                    b: .init(address: x, ld: 2), c: .init(address: y, ld: 2))
        #expect(throws: CUDAError.self) { try runtime.matmul(bad) }
    }

    // MARK: Whole training steps

    /// How two runs differ: losses (and downloaded outputs) as max |Δ| / max |loss|; the weights as the share of
    /// elements off by more than 1e-5 of the largest weight, and the largest difference in units of the learning rate.
    /// A gradient that is zero in exact arithmetic (the key projection's bias: softmax ignores a constant per row) is
    /// rounding noise on both sides, and Adam-type optimizers (LANS also normalises per tensor) turn any noise into
    /// steps of up to the learning rate; so those few elements may differ by O(lr) while the rest agree.
    static func differences(_ a: (losses: [Float], weights: [Float]), _ b: (losses: [Float], weights: [Float]))
        -> (losses: Float, weightsOff: Double, worstInLearningRates: Float) {
        let scale = a.weights.map(abs).max() ?? 1
        let off = zip(a.weights, b.weights).filter { abs($0 - $1) > 1e-5 * scale }.count
        let worst = zip(a.weights, b.weights).map { abs($0 - $1) }.max() ?? 0
        return (relativeDifference(a.losses, b.losses), Double(off) / Double(a.weights.count), worst / 1e-2)
    }

    /// The fp32 tolerance: losses and outputs within 5e-4 of their largest (measured: at most 1.6e-4, QA's logits),
    /// at most 2 % of the weights off (measured: at most 0.54 %), none by more than 4 learning rates (measured: 2.05,
    /// LANS over 3 steps, where noise tensors take full-size steps).
    static func expectFP32Agreement(_ d: (losses: Float, weightsOff: Double, worstInLearningRates: Float), _ what: String) {
        print("CUDA backend (emulated) \(what): losses \(d.losses) relative; weights off \(d.weightsOff * 100) %, "
              + "worst \(d.worstInLearningRates) lr")
        #expect(d.losses < 5e-4 && d.weightsOff < 0.02 && d.worstInLearningRates < 4, "\(what)")
    }

    /// fp32 through the emulated CUDA backend against the CPU after 3 LAMB/LANS/AdamW steps: the sums run in other
    /// orders (the matmul's k loop against BLAS's blocks), so not bit for bit, but within `expectFP32Agreement`.
    @Test(arguments: [OptimizerKind.lamb, .lans, .adamw])
    func pretrainingStepsMatchTheCPUBackend(optimizer: OptimizerKind) throws {
        let cpu = try EmulatedDeviceTests.pretraining(CPUBackend.shared, optimizer: optimizer)
        let device = try EmulatedDeviceTests.pretraining(Self.cuda(), optimizer: optimizer)
        Self.expectFP32Agreement(Self.differences(cpu, device), "pre-training \(optimizer)")
        #expect(cpu.losses.count == 6 && cpu.losses.allSatisfy(\.isFinite))
    }

    @Test func questionAnsweringAndClassificationStepsMatchTheCPUBackend() throws {
        for (task, run) in [("QA", EmulatedDeviceTests.questionAnswering), ("classification", EmulatedDeviceTests.classification)] {
            Self.expectFP32Agreement(Self.differences(try run(CPUBackend.shared), try run(Self.cuda())), task)
        }
    }

    /// ZeRO stage 2 over two in-process ranks, each with its own emulated device, against the CPU ranks.
    @Test func zeroOverInProcessRanksMatchesTheCPUBackend() throws {
        func run(cuda: Bool) throws -> [(losses: [Float], weights: [Float])] {
            try LocalCommunicatorGroup(size: 2).run { comm in
                let backend: any Backend = cuda ? Self.cuda() : CPUBackend.shared
                let model = try BertForPreTraining(config: EmulatedDeviceTests.config, seed: 11, backend: backend)
                return try EmulatedDeviceTests.train(model, steps: 2, optimizer: .lamb, communicator: comm, zeroStage: 2) {
                    try model.forward(EmulatedDeviceTests.pretrainingBatch(seed: UInt64($0)), dropout: $1).loss
                }
            }
        }
        let cpu = try run(cuda: false), device = try run(cuda: true)
        #expect(device[0].weights == device[1].weights, "every rank ends with the same weights")
        Self.expectFP32Agreement(Self.differences(cpu[0], device[0]), "ZeRO stage 2, rank 0")
    }

    /// bf16 GEMM inputs (8 significant bits) against fp32 over 4 LAMB steps of the tiny model: each loss within 2 %,
    /// and not equal, so the bf16 copies were used.
    @Test func bf16GEMMInputsStayWithinTwoPercentOfFP32() throws {
        let runtime = EmulatedRuntime()
        let fp32 = try EmulatedDeviceTests.pretraining(CPUBackend.shared, steps: 4)
        let bf16 = try EmulatedDeviceTests.pretraining(CUDABackend(runtime: runtime, precision: .bf16), steps: 4)
        let worst = Self.differences(fp32, bf16).losses
        print("CUDA backend (emulated) bf16: worst relative loss difference \(worst) over \(fp32.losses.count) micro-batches")
        #expect(worst < 0.02)
        #expect(fp32.losses != bf16.losses)
        #expect(runtime.launchCounts["convert_to_bf16", default: 0] > 0 && runtime.launchCounts["attention_softmax_forward_bf16", default: 0] > 0)
    }
}
