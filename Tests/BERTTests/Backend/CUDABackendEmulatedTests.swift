import BERTCUDA
import BERTKernels
import Testing
@testable import BERT

/// `CUDABackend` on `EmulatedRuntime` (device-only memory, a Swift reference of each kernel's `.cu` source and of the
/// cuBLASLt descriptors) against `CPUBackend`: every `Backend` operation within 1e-5 relative in fp32 with dropout
/// masks equal, whole training steps (pre-training, QA, classification) within a stated fp32 tolerance,
/// and bf16 GEMM inputs within a stated band. This proves the backend's launches, leading dimensions, strides and
/// scratch layouts; it does not prove that the kernels or cuBLASLt behave so on a GPU (nothing here ran on one).
@Suite struct CUDABackendEmulatedTests {
    static func cuda(_ precision: Precision = .fp32) -> CUDABackend {
        CUDABackend(runtime: EmulatedRuntime(), precision: precision)
    }

    /// Every `Backend` operation through `BackendParity` (what `bert check-device` runs on a GPU), each within 1e-5 of
    /// the CPU backend in fp32 (tighter than the harness's 5e-5 for GEMMs; the worst is printed), and within the bf16
    /// band with bf16 GEMM inputs, where the GEMMs must show rounding.
    @Test func everyOperationMatchesTheCPUBackend() {
        let results = BackendParity.run(candidate: Self.cuda())
        #expect(results.count == 23)
        for r in results { #expect(r.passed && r.maxRelativeError <= 1e-5, "\(r.operation): \(r.maxRelativeError)") }
        print("CUDA backend (emulated) fp32: worst operation error \(results.map(\.maxRelativeError).max() ?? 0) relative")
        let bf16 = BackendParity.run(candidate: Self.cuda(.bf16), precision: .bf16)
        for r in bf16 { #expect(r.passed, "bf16 \(r.operation): \(r.maxRelativeError)") }
        #expect(bf16.first { $0.operation == "linear forward" }.map { $0.maxRelativeError > 1e-4 } == true,
                "bf16 GEMM inputs round")
    }

    /// Dropout draws the CPU's Philox counters: the same elements are dropped, bit for bit the same kept values.
    @Test func dropoutMasksEqualTheCPUs() {
        func dropped(_ backend: any Backend) -> [Float] {
            let x = DeviceBuffer(backend: backend, count: 4096), y = DeviceBuffer(backend: backend, count: 4096)
            x.upload((0..<4096).map { Float($0 % 97) + 1 })
            backend.dropoutForward(x.base, residual: nil, y.base, count: 4096, probability: 0.25,
                                   rng: CounterRNG(seed: 17, stream: 5))
            return y.array()
        }
        let cpu = dropped(CPUBackend.shared), device = dropped(Self.cuda())
        #expect(cpu == device)
        #expect((800..<1250).contains(cpu.filter { $0 == 0 }.count), "about a quarter dropped")
    }

    @Test func everyOperationRunsOnTheDevice() {
        let runtime = EmulatedRuntime()
        _ = BackendParity.run(candidate: CUDABackend(runtime: runtime, precision: .fp32))
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
        return (Float(BackendParity.worstRelativeError(b.losses, a.losses)), Double(off) / Double(a.weights.count), worst / 1e-2)
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
