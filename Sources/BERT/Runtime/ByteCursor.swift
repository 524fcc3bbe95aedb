/// A bounds-checked reader over the bytes of a container file (TensorFlow index, protobuf message, zip archive,
/// pickle): little-endian fixed-width integers, LEB128 varints and byte runs. Every read past the end throws a
/// `BertError.invalidCheckpoint` naming `what`, so a truncated or corrupt file is a one-line error, never a crash.
struct ByteCursor {
    let bytes: ArraySlice<UInt8>
    /// The index of the next byte in `bytes` (indices of a slice are those of its base array).
    var position: Int
    /// The file or record being read, for error messages.
    let what: String

    init(_ bytes: ArraySlice<UInt8>, what: String) {
        self.bytes = bytes
        position = bytes.startIndex
        self.what = what
    }

    var atEnd: Bool { position >= bytes.endIndex }

    func error(_ why: String) -> BertError { .invalidCheckpoint("\(what): \(why)") }

    mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.endIndex - position else {
            throw error("truncated (\(count) bytes wanted at offset \(position - bytes.startIndex), \(bytes.endIndex - position) left)")
        }
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    mutating func byte() throws -> UInt8 { try take(1).first! }

    /// A little-endian unsigned integer of `width` bytes.
    mutating func fixed(_ width: Int) throws -> UInt64 {
        try take(width).reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// A LEB128 varint (protobuf's and LevelDB's), at most 10 bytes.
    mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 70, by: 7) {
            let b = try byte()
            value |= UInt64(b & 0x7F) << UInt64(shift)
            if b & 0x80 == 0 { return value }
        }
        throw error("a varint longer than 10 bytes")
    }

    /// A varint that must fit an `Int` and be at most `limit` (a length or offset inside the file).
    mutating func length(limit: Int = Int.max) throws -> Int {
        let v = try varint()
        guard v <= UInt64(limit) else { throw error("length \(v) exceeds \(limit)") }
        return Int(v)
    }
}

extension Array where Element == UInt8 {
    /// Appends `value` as `width` little-endian bytes.
    mutating func appendFixed(_ value: UInt64, width: Int) {
        for i in 0..<width { append(UInt8(truncatingIfNeeded: value >> UInt64(8 * i))) }
    }

    /// Appends `value` as a LEB128 varint.
    mutating func appendVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 { append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        append(UInt8(v))
    }
}
