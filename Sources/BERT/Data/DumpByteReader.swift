import CBZip2
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads a file's bytes chunk by chunk, decompressing bzip2 on the way when the file starts with `BZh`. Wikipedia
/// ships its dumps as bzip2, and its "multistream" dumps are many bzip2 streams laid end to end (so that an index
/// can seek to any of them): every stream is read, one after the other. Memory stays at two 1 MiB buffers.
final class DumpByteReader {
    private let path: String
    private let file: UnsafeMutablePointer<FILE>
    private let isBzip2: Bool
    private var stream = bz_stream()
    private var streamOpen = false
    private var input = [UInt8](repeating: 0, count: 1 << 20)
    private var inputStart = 0, inputEnd = 0
    private var fileEnded = false
    /// Bytes of the file read so far (compressed bytes for a bzip2 file).
    private(set) var fileBytesRead = 0

    /// True when the file at `path` starts with bzip2's magic `BZh`.
    static func isBzip2(path: String) -> Bool {
        guard let fp = fopen(path, "rb") else { return false }
        defer { fclose(fp) }
        var magic = [UInt8](repeating: 0, count: 3)
        return fread(&magic, 1, 3, fp) == 3 && magic == Array("BZh".utf8)
    }

    /// - Throws: `BertError.io` when the file cannot be opened.
    init(path: String) throws {
        guard let fp = fopen(path, "rb") else {
            throw BertError.io("\(path): cannot open the dump (\(String(cString: strerror(errno)))); check --input")
        }
        self.path = path
        file = fp
        isBzip2 = Self.isBzip2(path: path)
    }

    deinit {
        if streamOpen { BZ2_bzDecompressEnd(&stream) }
        fclose(file)
    }

    /// Appends the next chunk of the file's (decompressed) bytes to `buffer`.
    /// - Returns: false once the data has ended (nothing was appended).
    /// - Throws: `BertError.invalidInput` when the bzip2 data is corrupt or ends inside a stream (a truncated file).
    func read(appendingTo buffer: inout [UInt8]) throws -> Bool {
        if !isBzip2 {
            guard try refill() else { return false }
            buffer.append(contentsOf: input[inputStart..<inputEnd])
            inputStart = inputEnd
            return true
        }
        let chunk = 1 << 20
        var output = [UInt8](repeating: 0, count: chunk)
        while true {
            if inputStart == inputEnd {
                guard try refill() else {
                    if streamOpen {
                        throw BertError.invalidInput("\(path): the bzip2 data ends inside a stream, after \(fileBytesRead) bytes: "
                                                     + "the file is truncated; download it again")
                    }
                    return false
                }
            }
            if !streamOpen {
                let status = BZ2_bzDecompressInit(&stream, 0, 0)
                guard status == BZ_OK else { throw BertError.invalidInput("\(path): cannot start bzip2 decompression (code \(status))") }
                streamOpen = true
            }
            let (status, consumed, produced) = input.withUnsafeMutableBufferPointer { inBuf in
                output.withUnsafeMutableBufferPointer { outBuf in
                    stream.next_in = UnsafeMutableRawPointer(inBuf.baseAddress! + inputStart).assumingMemoryBound(to: CChar.self)
                    stream.avail_in = UInt32(inputEnd - inputStart)
                    stream.next_out = UnsafeMutableRawPointer(outBuf.baseAddress!).assumingMemoryBound(to: CChar.self)
                    stream.avail_out = UInt32(chunk)
                    let status = BZ2_bzDecompress(&stream)
                    return (status, inputEnd - inputStart - Int(stream.avail_in), chunk - Int(stream.avail_out))
                }
            }
            inputStart += consumed
            switch status {
            case BZ_OK: break
            case BZ_STREAM_END:
                // One stream is done; a multistream file goes on with the next one.
                BZ2_bzDecompressEnd(&stream)
                streamOpen = false
            default:
                throw BertError.invalidInput("\(path): corrupt bzip2 data near byte \(fileBytesRead - (inputEnd - inputStart)) "
                                             + "(libbz2 code \(status)); download the dump again")
            }
            if produced > 0 {
                buffer.append(contentsOf: output[..<produced])
                return true
            }
        }
    }

    /// Reads the next block of the file into `input`; false at the end of the file.
    private func refill() throws -> Bool {
        guard !fileEnded else { return false }
        let n = input.withUnsafeMutableBytes { fread($0.baseAddress!, 1, $0.count, file) }
        if n == 0 {
            if ferror(file) != 0 { throw BertError.io("\(path): read error (\(String(cString: strerror(errno))))") }
            fileEnded = true
            return false
        }
        inputStart = 0
        inputEnd = n
        fileBytesRead += n
        return true
    }
}
