/// The protocol buffer wire format, as much as TensorFlow's `BundleHeaderProto` and `BundleEntryProto` need: a message
/// is a run of fields, each a varint key (`field number << 3 | wire type`) and a value — a varint (type 0), 8 bytes
/// (type 1), a varint length and that many bytes (type 2: strings and nested messages), or 4 bytes (type 5).
enum Protobuf {
    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case bytes(ArraySlice<UInt8>)
        case fixed32(UInt32)

        var integer: Int? {
            switch self {
            case .varint(let v): return Int(truncatingIfNeeded: v)
            case .fixed64(let v): return Int(truncatingIfNeeded: v)
            case .fixed32(let v): return Int(v)
            case .bytes: return nil
            }
        }

        var message: ArraySlice<UInt8>? { if case .bytes(let b) = self { return b } else { return nil } }
    }

    /// The fields of `message` in order (repeated fields appear once per value).
    /// - Throws: `BertError.invalidCheckpoint` naming `what` for a truncated field or an unknown wire type.
    static func fields(_ message: ArraySlice<UInt8>, what: String) throws -> [(number: Int, value: Value)] {
        var cursor = ByteCursor(message, what: what), fields: [(number: Int, value: Value)] = []
        while !cursor.atEnd {
            let key = try cursor.varint()
            let value: Value
            switch key & 7 {
            case 0: value = .varint(try cursor.varint())
            case 1: value = .fixed64(try cursor.fixed(8))
            case 2: value = .bytes(try cursor.take(try cursor.length(limit: message.count)))
            case 5: value = .fixed32(UInt32(try cursor.fixed(4)))
            default: throw cursor.error("protobuf field \(key >> 3) has wire type \(key & 7), which this reader does not know")
            }
            fields.append((Int(key >> 3), value))
        }
        return fields
    }
}

extension Array where Element == UInt8 {
    /// Appends a varint field (types `int32`, `int64`, enums, `bool`); zero is left out, as proto3 does.
    mutating func appendProtoVarint(_ number: Int, _ value: Int) {
        guard value != 0 else { return }
        appendVarint(UInt64(number << 3))
        appendVarint(UInt64(bitPattern: Int64(value)))
    }

    /// Appends a length-delimited field (a string or a nested message).
    mutating func appendProtoBytes(_ number: Int, _ value: [UInt8]) {
        appendVarint(UInt64(number << 3 | 2))
        appendVarint(UInt64(value.count))
        self += value
    }

    /// Appends a `fixed32` field.
    mutating func appendProtoFixed32(_ number: Int, _ value: UInt32) {
        appendVarint(UInt64(number << 3 | 5))
        appendFixed(UInt64(value), width: 4)
    }
}
