import Foundation

/// The zip container `torch.save` writes (PyTorch ≥ 1.6, `caffe2/serialize/inline_container.cc`): every record
/// stored uncompressed under one top-level folder (`<archive>/data.pkl`, `<archive>/data/0`, …), its data 64-byte
/// aligned by padding the local header's extra field. Reading goes through the central directory (torch writes the
/// sizes in data descriptors after each record, not in the local headers) and checks each record's CRC-32.
enum StoredZip {
    static let localSignature: UInt64 = 0x0403_4B50, centralSignature: UInt64 = 0x0201_4B50, endSignature: UInt64 = 0x0605_4B50
    /// Data alignment torch uses, so a reader may map tensors in place.
    static let alignment = 64

    /// Every record of the archive `bytes` by name, as a range of `bytes`.
    /// - Throws: `BertError.invalidCheckpoint` naming `path`: not a zip, a compressed or zip64 record, a CRC mismatch,
    ///   anything that runs past the file.
    static func records(_ bytes: [UInt8], path: String) throws -> [String: Range<Int>] {
        var cursor = ByteCursor(bytes[...], what: path)
        // The end-of-central-directory record is the last 22 bytes unless a comment (≤ 64 KiB) follows it.
        guard let end = stride(from: bytes.count - 22, through: max(0, bytes.count - 22 - 65_535), by: -1).first(where: { at in
            at >= 0 && bytes[at] == 0x50 && bytes[at + 1] == 0x4B && bytes[at + 2] == 5 && bytes[at + 3] == 6
        }) else { throw cursor.error("not a zip archive (no end of central directory; truncated?)") }
        cursor.position = end + 10
        let count = Int(try cursor.fixed(2)), _ = try cursor.fixed(4)
        let directory = Int(try cursor.fixed(4))
        guard count != 0xFFFF, directory != 0xFFFF_FFFF else { throw cursor.error("a zip64 archive (over 4 GiB), which is not supported") }
        cursor.position = directory
        var records: [String: Range<Int>] = [:]
        for _ in 0..<count {
            guard try cursor.fixed(4) == centralSignature else { throw cursor.error("corrupt central directory") }
            _ = try cursor.take(6)
            let method = try cursor.fixed(2)
            _ = try cursor.take(4)
            let crc = UInt32(try cursor.fixed(4)), compressed = Int(try cursor.fixed(4)), size = Int(try cursor.fixed(4))
            let nameLength = Int(try cursor.fixed(2)), extraLength = Int(try cursor.fixed(2)), commentLength = Int(try cursor.fixed(2))
            _ = try cursor.take(8)
            let localOffset = Int(try cursor.fixed(4))
            let name = String(decoding: try cursor.take(nameLength), as: UTF8.self)
            _ = try cursor.take(extraLength + commentLength)
            guard method == 0, compressed == size else { throw cursor.error("record \(name) is compressed (method \(method)); torch.save stores records uncompressed") }
            guard size != 0xFFFF_FFFF, localOffset != 0xFFFF_FFFF else { throw cursor.error("record \(name) needs zip64, which is not supported") }
            var local = ByteCursor(bytes[...], what: path)
            local.position = localOffset
            guard try local.fixed(4) == localSignature else { throw local.error("record \(name) has no local header at \(localOffset)") }
            local.position = localOffset + 26
            let skip = Int(try local.fixed(2)) + Int(try local.fixed(2))
            _ = try local.take(skip)
            let start = local.position
            let data = try local.take(size)
            let actual = data.withUnsafeBytes { CRC32.ieee.checksum($0) }
            guard actual == crc else { throw local.error("record \(name) fails its CRC-32 check: the file is corrupt") }
            records[name] = start..<(start + size)
        }
        return records
    }

    /// An archive of `records` in order, stored, each record's data 64-byte aligned.
    static func write(_ records: [(name: String, data: [UInt8])]) -> [UInt8] {
        var file: [UInt8] = [], central: [UInt8] = []
        for (name, data) in records {
            let nameBytes = Array(name.utf8), crc = CRC32.ieee.checksum(data), offset = file.count
            // Pad with an extra field (id "FB", as torch does) so that the data starts on the alignment.
            let padding = (alignment - (offset + 30 + nameBytes.count + 4) % alignment) % alignment
            let extra: [UInt8] = {
                var e: [UInt8] = []
                e.appendFixed(0x4246, width: 2)
                e.appendFixed(UInt64(padding), width: 2)
                return e + [UInt8](repeating: 0x5A, count: padding)
            }()
            func header(central: Bool) -> [UInt8] {
                var h: [UInt8] = []
                h.appendFixed(central ? centralSignature : localSignature, width: 4)
                if central { h.appendFixed(20, width: 2) }      // version made by
                h.appendFixed(20, width: 2)                      // version needed
                h.appendFixed(0x0800, width: 2)                  // UTF-8 names
                h.appendFixed(0, width: 2)                       // stored
                h.appendFixed(0, width: 4)                       // time, date
                h.appendFixed(UInt64(crc), width: 4)
                h.appendFixed(UInt64(data.count), width: 4)
                h.appendFixed(UInt64(data.count), width: 4)
                h.appendFixed(UInt64(nameBytes.count), width: 2)
                h.appendFixed(UInt64(central ? 0 : extra.count), width: 2)
                if central {
                    h.appendFixed(0, width: 6)                   // comment length, disk, internal attributes
                    h.appendFixed(0, width: 4)                   // external attributes
                    h.appendFixed(UInt64(offset), width: 4)
                }
                return h + nameBytes + (central ? [] : extra)
            }
            file += header(central: false) + data
            central += header(central: true)
        }
        var end: [UInt8] = []
        end.appendFixed(endSignature, width: 4)
        end.appendFixed(0, width: 4)                             // disk numbers
        end.appendFixed(UInt64(records.count), width: 2)
        end.appendFixed(UInt64(records.count), width: 2)
        end.appendFixed(UInt64(central.count), width: 4)
        end.appendFixed(UInt64(file.count), width: 4)
        end.appendFixed(0, width: 2)                             // comment length
        return file + central + end
    }
}
