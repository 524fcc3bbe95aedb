import Foundation

/// TensorFlow's checkpoint format, the "tensor bundle" of `tensorflow/core/util/tensor_bundle/` that Google's BERT
/// checkpoints use: `<prefix>.index`, a sorted table (`SortedTable`) whose empty key holds a `BundleHeaderProto`
/// (number of data shards, endianness, format version) and whose other keys are tensor names mapped to
/// `BundleEntryProto`s (dtype, shape, shard, offset, size, masked CRC-32C of the bytes); and the data shards
/// `<prefix>.data-00000-of-00001` …, the tensors' little-endian bytes, row-major.
public struct TensorBundle {
    /// TensorFlow `DataType` values of the dtypes read here.
    enum DType: Int {
        case float = 1, double = 2, int32 = 3, int64 = 9, bfloat16 = 14, half = 19

        var scalar: StoredScalar {
            switch self {
            case .float: return .float32
            case .double: return .float64
            case .int32: return .int32
            case .int64: return .int64
            case .bfloat16: return .bfloat16
            case .half: return .float16
            }
        }
    }

    /// One tensor's `BundleEntryProto`.
    public struct Entry: Sendable {
        /// TensorFlow's `DataType` number (1 float, 19 half, …).
        public let dtype: Int
        public let shape: [Int]
        let shard: Int, offset: Int, size: Int
        /// As stored: masked (`CRC32.mask`).
        let maskedCRC: UInt32
    }

    /// `BundleHeaderProto.version.producer` that TensorFlow writes (`kTensorBundleVersion`).
    static let version = 1

    public let prefix: String
    /// Every tensor in the index by name (the header entry excluded).
    public let entries: [String: Entry]
    private let shards: [Data]

    public static func indexPath(_ prefix: String) -> String { prefix + ".index" }
    public static func dataPath(_ prefix: String, shard: Int, of count: Int) -> String {
        prefix + String(format: ".data-%05d-of-%05d", shard, count)
    }

    /// Reads the index of the bundle at `prefix` (checking every block's CRC) and maps its data shards.
    /// - Throws: `BertError.invalidCheckpoint` naming the file: a missing shard, a corrupt index, a big-endian or
    ///   newer-format bundle, an entry whose data lies outside its shard.
    public init(prefix: String) throws {
        self.prefix = prefix
        let indexPath = Self.indexPath(prefix)
        guard let index = FileManager.default.contents(atPath: indexPath) else { throw BertError.io("\(indexPath): cannot read it") }
        let table = try SortedTable.read([UInt8](index), path: indexPath)
        func bad(_ why: String) -> BertError { .invalidCheckpoint("\(indexPath): \(why)") }
        guard let header = table.first, header.key.isEmpty else { throw bad("no header entry (not a tensor bundle?)") }
        var shardCount = 1
        for field in try Protobuf.fields(header.value, what: indexPath) {
            switch field.number {
            case 1: shardCount = field.value.integer ?? 1
            case 2: if field.value.integer != 0 { throw bad("a big-endian bundle; convert it on a big-endian machine") }
            case 3:
                let version = try Protobuf.fields(field.value.message ?? [], what: indexPath)
                if let minConsumer = version.first(where: { $0.number == 2 })?.value.integer, minConsumer > Self.version {
                    throw bad("needs a reader of bundle format \(minConsumer); this one reads format \(Self.version)")
                }
            default: break
            }
        }
        guard (1...100_000).contains(shardCount) else { throw bad("header names \(shardCount) data shards") }
        var entries: [String: Entry] = [:]
        for (key, value) in table.dropFirst() {
            let name = String(decoding: key, as: UTF8.self)
            var dtype = 0, shape: [Int] = [], shard = 0, offset = 0, size = 0, crc: UInt32 = 0
            for field in try Protobuf.fields(value, what: "\(indexPath) entry \(name)") {
                switch (field.number, field.value) {
                case (1, _): dtype = field.value.integer ?? 0
                case (2, .bytes(let message)):
                    for dim in try Protobuf.fields(message, what: indexPath) where dim.number == 2 {
                        let size = try Protobuf.fields(dim.value.message ?? [], what: indexPath).first { $0.number == 1 }
                        shape.append(size?.value.integer ?? 0)
                    }
                case (3, _): shard = field.value.integer ?? 0
                case (4, _): offset = field.value.integer ?? 0
                case (5, _): size = field.value.integer ?? 0
                case (6, .fixed32(let v)): crc = v
                case (7, _): throw bad("tensor \(name) is saved in slices (a partitioned variable), which is not supported")
                default: break
                }
            }
            guard shard < shardCount, offset >= 0, size >= 0, shape.allSatisfy({ $0 >= 0 }) else {
                throw bad("entry \(name) is malformed (shard \(shard), offset \(offset), size \(size), shape \(shape))")
            }
            entries[name] = Entry(dtype: dtype, shape: shape, shard: shard, offset: offset, size: size, maskedCRC: crc)
        }
        self.entries = entries
        shards = try (0..<shardCount).map { shard in
            let path = Self.dataPath(prefix, shard: shard, of: shardCount)
            do { return try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
                throw BertError.io("\(path): cannot read this data shard of \(indexPath) (\(error.localizedDescription))")
            }
        }
        for (name, e) in entries where e.offset + e.size > shards[e.shard].count {
            throw bad("tensor \(name) lies at [\(e.offset), \(e.offset + e.size)) beyond the \(shards[e.shard].count) bytes of its data file (truncated?)")
        }
    }

    /// The tensor `name` as Floats (float, half, bfloat16 and double convert), after checking its byte count against
    /// its shape and its CRC-32C against the index.
    public func floats(_ name: String) throws -> [Float] {
        guard let e = entries[name] else { throw BertError.invalidCheckpoint("\(Self.indexPath(prefix)): no tensor named \(name)") }
        let dataPath = Self.dataPath(prefix, shard: e.shard, of: shards.count)
        guard let scalar = DType(rawValue: e.dtype)?.scalar, scalar.isFloatingPoint else {
            throw BertError.invalidCheckpoint("\(dataPath): tensor \(name) has TensorFlow dtype \(e.dtype), not a floating-point type")
        }
        let count = e.shape.reduce(1, *)
        guard count * scalar.size == e.size else {
            throw BertError.invalidCheckpoint("\(dataPath): tensor \(name) holds \(e.size) bytes, its shape \(e.shape) needs \(count * scalar.size)")
        }
        return try shards[e.shard].withUnsafeBytes { raw in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[e.offset..<(e.offset + e.size)])
            let crc = CRC32.castagnoli.checksum(bytes)
            guard crc == CRC32.unmask(e.maskedCRC) else {
                throw BertError.invalidCheckpoint("\(dataPath): tensor \(name) fails its CRC-32C check (index \(CRC32.unmask(e.maskedCRC)), data \(crc)): the checkpoint is corrupt")
            }
            return (0..<count).map { scalar.float(bytes.baseAddress!, $0) }
        }
    }

    /// Writes `tensors` (float32) as a one-shard bundle at `prefix`: the data file first, then the index, each through
    /// a temporary file and a rename, so TensorFlow never sees an index without its data.
    public static func write(_ tensors: [(name: String, shape: [Int], values: [Float])], prefix: String) throws {
        var data: [UInt8] = [], entries: [(key: [UInt8], value: [UInt8])] = []
        for (name, shape, values) in tensors.sorted(by: { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }) {
            precondition(shape.reduce(1, *) == values.count, "TensorBundle: \(name) shape \(shape) does not match its data")
            let offset = data.count
            values.withUnsafeBytes { data += $0 }
            let crc = data[offset...].withUnsafeBytes { CRC32.castagnoli.checksum($0) }
            var shapeProto: [UInt8] = []
            for size in shape {
                var dim: [UInt8] = []
                dim.appendProtoVarint(1, size)
                shapeProto.appendProtoBytes(2, dim)
            }
            var entry: [UInt8] = []
            entry.appendProtoVarint(1, DType.float.rawValue)
            entry.appendProtoBytes(2, shapeProto)
            entry.appendProtoVarint(4, offset)
            entry.appendProtoVarint(5, values.count * 4)
            entry.appendProtoFixed32(6, CRC32.mask(crc))
            entries.append((Array(name.utf8), entry))
        }
        var version: [UInt8] = [], header: [UInt8] = []
        version.appendProtoVarint(1, Self.version)
        header.appendProtoVarint(1, 1)
        header.appendProtoBytes(3, version)
        try writeFileAtomically(Data(data), to: dataPath(prefix, shard: 0, of: 1))
        try writeFileAtomically(Data(SortedTable.write([([], header)] + entries)), to: indexPath(prefix))
    }
}
