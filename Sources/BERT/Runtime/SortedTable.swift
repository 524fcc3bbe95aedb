/// LevelDB's sorted string table, as TensorFlow's `tensorflow/core/lib/io/table*.cc` and `format.cc` write it for a
/// tensor bundle's `.index` file (uncompressed). The layout:
///
///     data block … | metaindex block | index block | footer (48 bytes)
///     block   = entries, restart offsets (u32 each), restart count (u32), then a 5-byte trailer:
///               compression type (0 = none) and the masked CRC-32C of the block and that type byte
///     entry   = varint shared key bytes, varint unshared key bytes, varint value bytes, unshared key, value
///               (keys are prefix-compressed against the previous key, reset at every restart point)
///     index   = one entry per data block: a key ≥ its last key, and its BlockHandle (varint offset, varint size)
///     footer  = metaindex and index BlockHandles, zero-padded to 40 bytes, then the magic number (u64)
enum SortedTable {
    static let magic: UInt64 = 0xDB47_7524_8B80_FB57
    static let footerSize = 48
    static let trailerSize = 5
    /// LevelDB's default distance between restart points.
    static let restartInterval = 16

    /// Every key and value of the table at `bytes`, in key order; each block's CRC-32C is checked.
    /// - Throws: `BertError.invalidCheckpoint` naming `path` for a bad magic number, a CRC mismatch, a compressed
    ///   block or any structure that runs past its block.
    static func read(_ bytes: [UInt8], path: String) throws -> [(key: [UInt8], value: ArraySlice<UInt8>)] {
        var footer = ByteCursor(bytes[max(0, bytes.count - footerSize)...], what: path)
        guard bytes.count >= footerSize else { throw footer.error("\(bytes.count) bytes is too short for a table (truncated?)") }
        for _ in 0..<2 { _ = try footer.varint() }              // the metaindex handle: TensorFlow stores nothing there
        let indexOffset = try footer.length(limit: bytes.count), indexSize = try footer.length(limit: bytes.count)
        footer.position = bytes.count - 8
        guard try footer.fixed(8) == magic else { throw footer.error("not a TensorFlow index (bad magic number; truncated?)") }
        var entries: [(key: [UInt8], value: ArraySlice<UInt8>)] = []
        for (_, handle) in try blockEntries(bytes, offset: indexOffset, size: indexSize, path: path) {
            var h = ByteCursor(handle, what: path)
            let offset = try h.length(limit: bytes.count), size = try h.length(limit: bytes.count)
            entries += try blockEntries(bytes, offset: offset, size: size, path: path)
        }
        return entries
    }

    /// The entries of the block at `offset` (`size` bytes before its trailer), after checking the trailer.
    private static func blockEntries(_ bytes: [UInt8], offset: Int, size: Int, path: String) throws -> [(key: [UInt8], value: ArraySlice<UInt8>)] {
        var whole = ByteCursor(bytes[...], what: path)
        whole.position = offset
        let block = try whole.take(size)
        let type = try whole.byte(), stored = UInt32(try whole.fixed(4))
        guard type == 0 else { throw whole.error("block at \(offset) is compressed (type \(type)); only uncompressed tables are read") }
        let crc = bytes[offset...(offset + size)].withUnsafeBytes { CRC32.castagnoli.checksum($0) }
        guard crc == CRC32.unmask(stored) else {
            throw whole.error("block at \(offset) fails its CRC-32C check (stored \(CRC32.unmask(stored)), computed \(crc)): the file is corrupt")
        }
        var tail = ByteCursor(block, what: path)
        guard size >= 4 else { throw tail.error("block at \(offset) is \(size) bytes") }
        tail.position = block.endIndex - 4
        let restarts = Int(try tail.fixed(4))
        guard restarts >= 1, 4 + 4 * restarts <= size else { throw tail.error("block at \(offset) has \(restarts) restart points in \(size) bytes") }
        var cursor = ByteCursor(block[..<(block.endIndex - 4 - 4 * restarts)], what: path)
        var entries: [(key: [UInt8], value: ArraySlice<UInt8>)] = [], key: [UInt8] = []
        while !cursor.atEnd {
            let shared = try cursor.length(limit: key.count), unshared = try cursor.length(limit: size), valueSize = try cursor.length(limit: size)
            key = Array(key[..<shared]) + (try cursor.take(unshared))
            entries.append((key, try cursor.take(valueSize)))
        }
        return entries
    }

    /// A table holding `entries` (keys strictly ascending, bytewise): one data block, an empty metaindex block, an
    /// index block with one entry, and the footer.
    static func write(_ entries: [(key: [UInt8], value: [UInt8])]) -> [UInt8] {
        var file: [UInt8] = []
        func appendBlock(_ entries: [(key: [UInt8], value: [UInt8])]) -> (offset: Int, size: Int) {
            var block: [UInt8] = [], restarts: [Int] = [], previous: [UInt8] = []
            for (i, (key, value)) in entries.enumerated() {
                var shared = 0
                if i % restartInterval == 0 { restarts.append(block.count) } else {
                    while shared < min(key.count, previous.count), key[shared] == previous[shared] { shared += 1 }
                }
                block.appendVarint(UInt64(shared))
                block.appendVarint(UInt64(key.count - shared))
                block.appendVarint(UInt64(value.count))
                block += key[shared...]
                block += value
                previous = key
            }
            if restarts.isEmpty { restarts = [0] }
            for r in restarts { block.appendFixed(UInt64(r), width: 4) }
            block.appendFixed(UInt64(restarts.count), width: 4)
            let handle = (offset: file.count, size: block.count)
            block.append(0)
            let crc = block.withUnsafeBytes { CRC32.castagnoli.checksum($0) }
            file += block
            file.appendFixed(UInt64(CRC32.mask(crc)), width: 4)
            return handle
        }
        func encode(_ handle: (offset: Int, size: Int)) -> [UInt8] {
            var bytes: [UInt8] = []
            bytes.appendVarint(UInt64(handle.offset))
            bytes.appendVarint(UInt64(handle.size))
            return bytes
        }
        let data = appendBlock(entries)
        let metaindex = appendBlock([])
        let index = appendBlock(entries.last.map { [($0.key, encode(data))] } ?? [])
        var footer = encode(metaindex) + encode(index)
        footer += [UInt8](repeating: 0, count: footerSize - 8 - footer.count)
        footer.appendFixed(magic, width: 8)
        return file + footer
    }
}
