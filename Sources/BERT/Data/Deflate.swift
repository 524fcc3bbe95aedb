import CHDF5
import Foundation

/// zlib-format compression of HDF5 chunks (the bytes HDF5's gzip filter stores).
///
/// Level 0 (`fastLevel`, `bert prepare`'s default) is `RunLengthDeflate`: runs and Huffman codes only. Levels 1–9 use
/// libdeflate when its shared library is present (`libdeflate.so.0`, loaded at run time with `dlopen`, no
/// build-time dependency): it is about 2–3× faster than zlib and emits the same standard zlib streams, which
/// every HDF5 reader inflates. Otherwise, or with `BERT_DEFLATE=zlib` in the environment, zlib's `compress2`.
/// The two may produce different compressed bytes for the same data; the decompressed shards are identical.
struct ChunkCompressor {
    private typealias Alloc = @convention(c) (Int32) -> OpaquePointer?
    private typealias Compress = @convention(c) (OpaquePointer?, UnsafeRawPointer?, Int, UnsafeMutableRawPointer?, Int) -> Int
    private typealias Bound = @convention(c) (OpaquePointer?, Int) -> Int
    private typealias Free = @convention(c) (OpaquePointer?) -> Void
    private typealias Adler32 = @convention(c) (UInt32, UnsafeRawPointer?, Int) -> UInt32

    private struct Library: @unchecked Sendable {
        let alloc: Alloc, compress: Compress, bound: Bound, free: Free, adler32: Adler32
    }

    /// The level that selects `RunLengthDeflate` (HDF5's filter records level 1 for it).
    static let fastLevel: Int32 = 0

    private static let library: Library? = {
        if ProcessInfo.processInfo.environment["BERT_DEFLATE"] == "zlib" { return nil }
        guard let h = dlopen("libdeflate.so.0", RTLD_NOW) ?? dlopen("libdeflate.so", RTLD_NOW),
              let a = dlsym(h, "libdeflate_alloc_compressor"), let c = dlsym(h, "libdeflate_zlib_compress"),
              let b = dlsym(h, "libdeflate_zlib_compress_bound"), let f = dlsym(h, "libdeflate_free_compressor"),
              let s = dlsym(h, "libdeflate_adler32")
        else { return nil }
        return Library(alloc: unsafeBitCast(a, to: Alloc.self), compress: unsafeBitCast(c, to: Compress.self),
                       bound: unsafeBitCast(b, to: Bound.self), free: unsafeBitCast(f, to: Free.self),
                       adler32: unsafeBitCast(s, to: Adler32.self))
    }()

    /// "libdeflate" or "zlib".
    static var backend: String { library == nil ? "zlib" : "libdeflate" }

    private let level: Int32
    private let handle: OpaquePointer?
    private let runs: RunLengthDeflate.Scratch?

    /// One per thread: a libdeflate compressor is not thread-safe.
    /// - Parameter level: `fastLevel`, or a gzip level 1…9.
    init(level: Int32) {
        self.level = level
        runs = level == ChunkCompressor.fastLevel ? RunLengthDeflate.Scratch() : nil
        handle = runs == nil ? ChunkCompressor.library.flatMap { $0.alloc(level) } : nil
    }

    func release() { if let lib = ChunkCompressor.library, let handle { lib.free(handle) } }

    /// The Adler-32 checksum of `bytes` (libdeflate's vectorized one when present).
    static func adler32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        if let lib = library { return lib.adler32(1, bytes.baseAddress, bytes.count) }
        var sum = CHDF5.adler32(0, nil, 0)
        var p = bytes.baseAddress?.assumingMemoryBound(to: Bytef.self), left = bytes.count
        while left > 0 {   // zlib takes a 32-bit length
            let k = min(left, 1 << 30)
            sum = CHDF5.adler32(sum, p, uInt(k))
            p = p.map { $0 + k }
            left -= k
        }
        return UInt32(sum)
    }

    /// The zlib stream of `input`, or nil when compression failed.
    func compress(_ input: [UInt8]) -> [UInt8]? {
        if let runs {
            return input.withUnsafeBytes { RunLengthDeflate.compress($0, scratch: runs, adler32: ChunkCompressor.adler32) }
        }
        if let lib = ChunkCompressor.library, let handle {
            let bound = lib.bound(handle, input.count)
            var out = [UInt8](repeating: 0, count: bound)
            let n = input.withUnsafeBytes { src in
                out.withUnsafeMutableBytes { lib.compress(handle, src.baseAddress, src.count, $0.baseAddress, bound) }
            }
            guard n > 0 else { return nil }
            out.removeLast(out.count - n)
            return out
        }
        var destLength = compressBound(uLong(input.count))
        var dest = [UInt8](repeating: 0, count: Int(destLength))
        guard compress2(&dest, &destLength, input, uLong(input.count), level) == Z_OK else { return nil }
        dest.removeLast(dest.count - Int(destLength))
        return dest
    }
}
