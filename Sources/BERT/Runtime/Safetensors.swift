import Foundation

/// The safetensors format (what Hugging Face checkpoints use): an 8-byte little-endian header length, a JSON header
/// mapping each name to `{dtype, shape, data_offsets}` (plus optional `__metadata__` strings), then the raw data.
public enum Safetensors {
    public enum DType: String, Sendable {
        case f32 = "F32", f16 = "F16", bf16 = "BF16", i32 = "I32", i64 = "I64", i8 = "I8", u8 = "U8", f64 = "F64"
        var size: Int {
            switch self {
            case .f64, .i64: return 8
            case .f32, .i32: return 4
            case .f16, .bf16: return 2
            case .i8, .u8: return 1
            }
        }
    }

    /// A tensor header entry.
    public struct Entry: Sendable {
        public let dtype: DType
        public let shape: [Int]
        let begin: Int, end: Int
        public var count: Int { shape.reduce(1, *) }
    }

    /// A file mapped into memory: its entries by name and typed accessors. The pages a tensor was read through are
    /// dropped once it is copied out (`MappedFile.release`), so a loaded checkpoint is held once (in the model), not
    /// twice (the model and the mapped file both counted in the process's resident memory).
    public struct File: Sendable {
        public let path: String
        public let entries: [String: Entry]
        public let metadata: [String: String]
        private let file: MappedFile
        private let dataStart: Int

        /// Reads and validates the header: sizes, offsets within the file, byte counts matching shapes.
        public init(path: String) throws {
            self.path = path
            guard FileManager.default.fileExists(atPath: path) else { throw BertError.io("\(path): no such file") }
            func bad(_ why: String) -> BertError { .invalidCheckpoint("\(path) is not a valid safetensors file: \(why)") }
            let file = try MappedFile(path: path)
            let data = file.bytes
            guard data.count >= 8 else { throw bad("only \(data.count) bytes") }
            let headerLength = UInt64(littleEndian: data.loadUnaligned(as: UInt64.self))
            guard headerLength > 1, headerLength <= UInt64(data.count - 8) else { throw bad("header length \(headerLength) exceeds the file (truncated?)") }
            let headerSize = Int(headerLength)
            guard let json = try? JSONSerialization.jsonObject(with: Data(data[8..<(8 + headerSize)])),
                  let header = json as? [String: Any] else { throw bad("header is not a JSON object") }
            var entries: [String: Entry] = [:], metadata: [String: String] = [:]
            let payload = data.count - 8 - headerSize
            for (name, value) in header {
                if name == "__metadata__" { metadata = value as? [String: String] ?? [:]; continue }
                guard let e = value as? [String: Any], let dt = e["dtype"] as? String, let shape = e["shape"] as? [Int],
                      let offsets = e["data_offsets"] as? [Int], offsets.count == 2 else { throw bad("malformed entry \"\(name)\"") }
                guard let dtype = DType(rawValue: dt) else { throw bad("tensor \"\(name)\" has unsupported dtype \(dt)") }
                guard let bytes = checkedProduct(shape + [dtype.size]) else { throw bad("tensor \"\(name)\" has shape \(shape): negative or too large") }
                let entry = Entry(dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
                guard 0 <= entry.begin, entry.begin <= entry.end, entry.end <= payload, entry.end - entry.begin == bytes else {
                    throw bad("tensor \"\(name)\" data [\(entry.begin), \(entry.end)) does not fit \(payload) bytes of data or its shape (truncated?)")
                }
                entries[name] = entry
            }
            self.entries = entries
            self.metadata = metadata
            self.file = file
            self.dataStart = 8 + headerSize
        }

        /// Runs `body` on the tensor's bytes, then drops the pages they were read through.
        private func withBytes<R>(_ e: Entry, _ body: (UnsafeRawPointer) throws -> R) rethrows -> R {
            let range = (dataStart + e.begin)..<(dataStart + e.end)
            defer { file.release(range) }
            return try body(file.bytes.baseAddress! + range.lowerBound)
        }

        /// The tensor as Floats (F32, F16, BF16 and F64 convert).
        public func floats(_ name: String) throws -> [Float] {
            let e = try entry(name)
            return withBytes(e) { p -> [Float] in
                switch e.dtype {
                case .f32: return (0..<e.count).map { p.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
                case .f64: return (0..<e.count).map { Float(p.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self)) }
                case .f16: return (0..<e.count).map { Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
                case .bf16: return (0..<e.count).map { Float(bitPattern: UInt32(p.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) << 16) }
                case .i32: return (0..<e.count).map { Float(p.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
                case .i64: return (0..<e.count).map { Float(p.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
                case .i8: return (0..<e.count).map { Float(p.loadUnaligned(fromByteOffset: $0, as: Int8.self)) }
                case .u8: return (0..<e.count).map { Float(p.loadUnaligned(fromByteOffset: $0, as: UInt8.self)) }
                }
            }
        }

        /// The tensor as Int32 (integer dtypes only).
        public func ints(_ name: String) throws -> [Int32] {
            let e = try entry(name)
            return try withBytes(e) { p -> [Int32] in
                switch e.dtype {
                case .i32: return (0..<e.count).map { p.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self) }
                case .i64: return (0..<e.count).map { Int32(truncatingIfNeeded: p.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
                case .i8: return (0..<e.count).map { Int32(p.loadUnaligned(fromByteOffset: $0, as: Int8.self)) }
                case .u8: return (0..<e.count).map { Int32(p.loadUnaligned(fromByteOffset: $0, as: UInt8.self)) }
                default: throw BertError.invalidCheckpoint("\(path): tensor \"\(name)\" is \(e.dtype.rawValue), expected an integer type")
                }
            }
        }

        /// Copies an F32 tensor straight into `destination` (the fast path for checkpoint loading).
        public func copyFloats(_ name: String, into destination: UnsafeMutablePointer<Float>) throws {
            let e = try entry(name)
            guard e.dtype == .f32 else {
                let values = try floats(name)
                destination.update(from: values, count: values.count)
                return
            }
            withBytes(e) { UnsafeMutableRawPointer(destination).copyMemory(from: $0, byteCount: e.count * 4) }
        }

        public func entry(_ name: String) throws -> Entry {
            guard let e = entries[name] else { throw BertError.invalidCheckpoint("\(path): no tensor named \"\(name)\"") }
            return e
        }
    }

    /// A tensor to write: F32 or I32 data with its shape.
    public enum Tensor {
        case float(UnsafeBufferPointer<Float>, shape: [Int])
        case int32([Int32], shape: [Int])
    }

    /// Writes `tensors` (sorted by name, data 8-byte aligned, header padded with spaces as HF does) to `path`
    /// through a temporary file, fsync'd and renamed, so a crash never leaves a half-written file under `path`.
    public static func write(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], to path: String) throws {
        let sorted = tensors.sorted { $0.0 < $1.0 }
        var header: [String: Any] = [:]
        var offset = 0
        for (name, tensor) in sorted {
            let (dtype, shape, bytes): (String, [Int], Int)
            switch tensor {
            case .float(let b, let s): (dtype, shape, bytes) = ("F32", s, b.count * 4)
            case .int32(let a, let s): (dtype, shape, bytes) = ("I32", s, a.count * 4)
            }
            precondition(shape.reduce(1, *) * 4 == bytes, "safetensors: \(name) shape \(shape) does not match its data")
            header[name] = ["dtype": dtype, "shape": shape, "data_offsets": [offset, offset + bytes]]
            offset += bytes
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        try writeAtomically(path) { handle in
            var size = UInt64(json.count).littleEndian
            try handle.write(contentsOf: Data(bytes: &size, count: 8))
            try handle.write(contentsOf: json)
            for (_, tensor) in sorted {
                switch tensor {
                case .float(let b, _): try handle.write(contentsOf: Data(buffer: b))
                case .int32(let a, _): try a.withUnsafeBufferPointer { try handle.write(contentsOf: Data(buffer: $0)) }
                }
            }
        }
    }
}

/// A whole file mapped read-only and private. Its pages are the file's, so dropping them (`release`) loses nothing:
/// a later read faults them in again from the file.
private final class MappedFile: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    init(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw BertError.io("\(path): cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw BertError.io("\(path): cannot stat (\(String(cString: strerror(errno))))") }
        let count = Int(status.st_size)
        guard count > 0 else { bytes = UnsafeRawBufferPointer(start: nil, count: 0); return }
        guard let base = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw BertError.io("\(path): cannot map (\(String(cString: strerror(errno))))")
        }
        bytes = UnsafeRawBufferPointer(start: base, count: count)
    }

    deinit { if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) } }

    /// Drops the whole pages inside `range` from memory (the pages at its ends may hold a neighbour's bytes too).
    func release(_ range: Range<Int>) {
        guard let base = bytes.baseAddress else { return }
        let page = Self.pageSize
        let first = (range.lowerBound + page - 1) / page * page, end = range.upperBound / page * page
        if end > first { madvise(UnsafeMutableRawPointer(mutating: base + first), end - first, MADV_DONTNEED) }
    }
}

/// Writes a file through `path.tmp-<pid>`: `body` fills it, then it is fsync'd and renamed over `path`. On any error
/// the temporary file is removed and `path` is untouched.
public func writeAtomically(_ path: String, _ body: (FileHandle) throws -> Void) throws {
    let temporary = path + ".tmp-\(ProcessInfo.processInfo.processIdentifier)"
    guard FileManager.default.createFile(atPath: temporary, contents: nil),
          let handle = FileHandle(forWritingAtPath: temporary) else {
        throw BertError.io("cannot create \(temporary): check that the directory exists and is writable")
    }
    do {
        try body(handle)
        try handle.synchronize()
        try handle.close()
        guard rename(temporary, path) == 0 else { throw BertError.io("cannot rename \(temporary) to \(path)") }
    } catch {
        try? handle.close()
        try? FileManager.default.removeItem(atPath: temporary)
        throw BertError.fromFoundation(error, path: path)
    }
}
