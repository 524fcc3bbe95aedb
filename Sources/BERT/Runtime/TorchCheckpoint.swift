import Foundation

/// A `torch.save` file (PyTorch ≥ 1.6): a stored zip (`StoredZip`) whose `<archive>/data.pkl` pickles the saved
/// object (`TorchPickle`) and whose `<archive>/data/<key>` records hold the storages' raw little-endian bytes. Reads
/// a state dict — Hugging Face's `pytorch_model.bin` — or NVIDIA's DeepLearningExamples checkpoint, a dict whose
/// `model` entry is the state dict beside `optimizer`, `master params` and trainer state, which are skipped.
public struct TorchCheckpoint {
    public let path: String
    /// The state dict's tensor names in file order.
    public let names: [String]
    /// The top-level entries besides the state dict (NVIDIA's `optimizer`, `master params`, `epoch`, …).
    public let skipped: [String]
    private let tensors: [String: TorchPickle.Tensor]
    private let bytes: [UInt8]
    private let records: [String: Range<Int>]
    private let archive: String

    /// The key of NVIDIA's checkpoints that holds the model's state dict.
    static let modelKey = "model"

    /// Reads the archive and its pickle (nothing in it is executed) and finds the state dict.
    /// - Throws: `BertError.invalidCheckpoint` naming `path`: a legacy (pre-1.6) file, a refused pickle, a state dict
    ///   with something other than tensors in it.
    public init(path: String) throws {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path) else { throw BertError.io("\(path): cannot read it") }
        bytes = [UInt8](data)
        func bad(_ why: String) -> BertError { .invalidCheckpoint("\(path): \(why)") }
        if bytes.starts(with: [0x80, 0x02]) {
            throw bad("a legacy torch.save file (PyTorch < 1.6), which is not read: re-save it with a current PyTorch, torch.save(torch.load(f, weights_only=True), f)")
        }
        guard bytes.starts(with: [0x50, 0x4B, 0x03, 0x04]) else { throw bad("not a torch.save file (no zip header)") }
        records = try StoredZip.records(bytes, path: path)
        guard let pickle = records.keys.first(where: { $0.hasSuffix("/data.pkl") && $0.split(separator: "/").count == 2 }) else {
            throw bad("no <archive>/data.pkl record: not a torch.save file")
        }
        archive = String(pickle.dropLast("data.pkl".count))
        let top = try TorchPickle.load(Array(bytes[records[pickle]!]), path: path)
        guard case .dict(let entries) = top else { throw bad("holds \(top.kind), not a state dict") }
        var stateDict = entries, skipped: [String] = []
        if let model = entries.first(where: { if case .string(Self.modelKey) = $0.key { return true } else { return false } }),
           case .dict(let inner) = model.value {
            stateDict = inner
            skipped = entries.compactMap { if case .string(let k) = $0.key, k != Self.modelKey { return k } else { return nil } }
        }
        var names: [String] = [], tensors: [String: TorchPickle.Tensor] = [:], foreign: [String] = []
        for (key, value) in stateDict {
            guard case .string(let name) = key else { throw bad("a state dict key is \(key.kind), not a string") }
            guard case .tensor(let tensor) = value else { foreign.append("\(name) (\(value.kind))"); continue }
            names.append(name)
            tensors[name] = tensor
        }
        guard foreign.isEmpty else { throw bad("the state dict holds values that are not tensors: \(foreign.joined(separator: ", "))") }
        self.names = names
        self.tensors = tensors
        self.skipped = skipped
    }

    /// The shape of tensor `name`.
    public func shape(_ name: String) -> [Int]? { tensors[name]?.shape }

    /// Tensor `name` as Floats, row-major (float32, float16, bfloat16, float64 and the integer types convert; any
    /// strides and storage offset are followed).
    public func floats(_ name: String) throws -> [Float] {
        guard let t = tensors[name] else { throw BertError.invalidCheckpoint("\(path): no tensor named \(name)") }
        let record = archive + "data/" + t.key
        guard let range = records[record] else { throw BertError.invalidCheckpoint("\(path): tensor \(name) needs record \(record), which is absent") }
        let count = t.shape.reduce(1, *)
        let last = t.offset + zip(t.shape, t.stride).reduce(0) { $0 + max(0, $1.0 - 1) * $1.1 }
        guard range.count >= t.storageCount * t.dtype.scalar.size, t.offset >= 0, t.stride.allSatisfy({ $0 >= 0 }),
              count == 0 || last < t.storageCount else {
            throw BertError.invalidCheckpoint("\(path): tensor \(name) (shape \(t.shape), strides \(t.stride), offset \(t.offset)) does not fit its storage of \(range.count) bytes (truncated?)")
        }
        let rowMajor = t.shape.indices.map { t.shape[($0 + 1)...].reduce(1, *) }
        return bytes.withUnsafeBytes { raw in
            let p = raw.baseAddress! + range.lowerBound
            if t.dtype == .float32, zip(t.shape, zip(t.stride, rowMajor)).allSatisfy({ $0.0 == 1 || $0.1.0 == $0.1.1 }) {
                // Contiguous (every state dict torch.save writes): one copy.
                return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(start: p + 4 * t.offset, count: 4 * count))
                    initialized = count
                }
            }
            // The storage element index of each row-major position.
            var indices = [Int](repeating: t.offset, count: count)
            var block = count
            for (size, stride) in zip(t.shape, t.stride) where size > 0 {
                block /= size
                for i in 0..<count { indices[i] += (i / block) % size * stride }
            }
            return indices.map { t.dtype.scalar.float(p, $0) }
        }
    }

    /// Writes `tensors` (float32) as a state dict the way `torch.save` does, through a temporary file and a rename.
    /// - Throws: when the archive would pass 4 GiB (zip64 is not written).
    public static func write(_ tensors: [(name: String, shape: [Int], values: [Float])], to path: String) throws {
        let archive = ((path as NSString).lastPathComponent as NSString).deletingPathExtension + "/"
        var records: [(name: String, data: [UInt8])] = [
            (archive + "data.pkl", TorchPickle.stateDict(tensors.map { ($0.name, $0.shape) })),
            (archive + "byteorder", Array("little".utf8)),
        ]
        for (i, t) in tensors.enumerated() { records.append((archive + "data/\(i)", t.values.withUnsafeBytes { Array($0) })) }
        records.append((archive + "version", Array("3\n".utf8)))
        guard records.reduce(0, { $0 + $1.data.count + 200 }) < Int(UInt32.max) else {
            throw BertError.invalidInput("\(path): over 4 GiB of tensors, which needs zip64; write --to hf (safetensors) instead")
        }
        try writeFileAtomically(Data(StoredZip.write(records)), to: path)
    }
}
