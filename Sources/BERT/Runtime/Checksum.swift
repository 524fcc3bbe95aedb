import Foundation

/// A fast 64-bit checksum of a file (FNV-1a over 8-byte words, then the tail bytes): enough to tell a truncated or
/// damaged checkpoint file from a good one, at memory speed. Not a cryptographic hash.
public func fileChecksum(_ path: String) throws -> String {
    let data: Data
    do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
        throw BertError.io("cannot read \(path) to check it")
    }
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    data.withUnsafeBytes { raw in
        let words = raw.count / 8
        for i in 0..<words { h = (h ^ raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) &* 0x100_0000_01B3 }
        for i in (8 * words)..<raw.count { h = (h ^ UInt64(raw[i])) &* 0x100_0000_01B3 }
    }
    return String(format: "%016llx-%llu", h, UInt64(data.count))
}

/// Writes `data` to `path` through a temporary file that is fsync'd and renamed (see `writeAtomically`).
public func writeFileAtomically(_ data: Data, to path: String) throws {
    try writeAtomically(path) { try $0.write(contentsOf: data) }
}

/// fsyncs a directory, so that renames inside it survive a crash.
func syncDirectory(_ path: String) {
    let fd = open(path, O_RDONLY)
    if fd >= 0 { fsync(fd); close(fd) }
}
