/// The subset of Python's pickle format that `torch.save` uses for state dicts, read without Python and without
/// running anything: pickle is a program for a stack machine whose GLOBAL opcode names any Python callable and whose
/// REDUCE calls it, so a hostile `.pt` can run `os.system`. This reader knows the opcodes of protocols 2–4 that hold
/// data (dicts, lists, tuples, strings, numbers, booleans, None, the memo) and resolves GLOBAL only against
/// `allowedGlobals` — the OrderedDict a state dict is, torch's tensor rebuild functions and its storage classes — and
/// refuses any other name before anything is built. `torch.load(weights_only=True)` follows the same idea.
enum TorchPickle {
    /// The element types of torch storages, by the storage class's name.
    enum DType: String, Sendable {
        case float32 = "FloatStorage", float16 = "HalfStorage", bfloat16 = "BFloat16Storage", float64 = "DoubleStorage"
        case int64 = "LongStorage", int32 = "IntStorage"

        var scalar: StoredScalar {
            switch self {
            case .float32: return .float32
            case .float16: return .float16
            case .bfloat16: return .bfloat16
            case .float64: return .float64
            case .int64: return .int64
            case .int32: return .int32
            }
        }
    }

    /// A tensor as the pickle describes it: a view (offset, shape, strides in elements) of storage `key`, whose bytes
    /// are the archive record `data/<key>`.
    struct Tensor: Sendable {
        let key: String, dtype: DType, storageCount: Int, offset: Int, shape: [Int], stride: [Int]
    }

    /// A value the reader builds.
    indirect enum Value: Sendable {
        case none, bool(Bool), int(Int), float(Double), string(String), bytes([UInt8])
        case list([Value]), tuple([Value]), dict([(key: Value, value: Value)])
        /// An allowed GLOBAL, `module.name`, not yet called.
        case global(String)
        case storage(key: String, dtype: DType, count: Int)
        case tensor(Tensor)

        var kind: String {
            switch self {
            case .none: return "None"
            case .bool: return "a bool"
            case .int: return "an int"
            case .float: return "a float"
            case .string: return "a string"
            case .bytes: return "bytes"
            case .list: return "a list"
            case .tuple: return "a tuple"
            case .dict: return "a dict"
            case .global(let name): return name
            case .storage: return "a storage"
            case .tensor: return "a tensor"
            }
        }
    }

    static let rebuildTensor = "torch._utils._rebuild_tensor_v2", rebuildParameter = "torch._utils._rebuild_parameter"
    static let orderedDict = "collections.OrderedDict"
    /// Every GLOBAL a state dict needs; any other is refused.
    static let allowedGlobals: Set<String> = Set([rebuildTensor, rebuildParameter, orderedDict]
                                                 + [DType.float32, .float16, .bfloat16, .float64, .int64, .int32].map { "torch." + $0.rawValue })

    /// Runs the pickle `bytes` (the archive's `data.pkl`) on the restricted machine and returns what it builds.
    /// Containers are values here, so a memo entry keeps a dict or list as it was when memoized; state dicts never
    /// refer back to a container (only to globals, strings and tensors, which do not change).
    /// - Throws: `BertError.invalidCheckpoint` naming `path`: a GLOBAL outside `allowedGlobals` (named in the message),
    ///   an opcode outside the subset, a malformed stream.
    static func load(_ bytes: [UInt8], path: String) throws -> Value {
        var cursor = ByteCursor(bytes[...], what: path)
        var stack: [Value] = [], marks: [Int] = [], memo: [Int: Value] = [:]
        func pop() throws -> Value {
            guard let v = stack.popLast() else { throw cursor.error("malformed pickle (stack underflow)") }
            return v
        }
        func popMark() throws -> [Value] {
            guard let mark = marks.popLast(), mark <= stack.count else { throw cursor.error("malformed pickle (no MARK)") }
            defer { stack.removeSubrange(mark...) }
            return Array(stack[mark...])
        }
        func string(_ count: Int) throws -> Value { .string(String(decoding: try cursor.take(count), as: UTF8.self)) }
        func line() throws -> String {
            guard let end = bytes[cursor.position...].firstIndex(of: 0x0A) else { throw cursor.error("malformed pickle (unterminated GLOBAL)") }
            defer { cursor.position = end + 1 }
            return String(decoding: bytes[cursor.position..<end], as: UTF8.self)
        }
        func global(_ module: String, _ name: String) throws -> Value {
            let qualified = module + "." + name
            guard allowedGlobals.contains(qualified) else {
                throw BertError.invalidCheckpoint("\(path): refused: the pickle calls \(qualified), which a checkpoint of tensors never holds (loading it would run code; nothing was run)")
            }
            return .global(qualified)
        }
        func setItems(_ items: [Value]) throws {
            guard items.count % 2 == 0, case .dict(var pairs) = try pop() else { throw cursor.error("malformed pickle (SETITEMS outside a dict)") }
            for i in stride(from: 0, to: items.count, by: 2) { pairs.append((items[i], items[i + 1])) }
            stack.append(.dict(pairs))
        }
        func append(_ items: [Value]) throws {
            guard case .list(let list) = try pop() else { throw cursor.error("malformed pickle (APPENDS outside a list)") }
            stack.append(.list(list + items))
        }
        while true {
            let op = try cursor.byte()
            switch op {
            case 0x80: _ = try cursor.byte()                                   // PROTO
            case 0x95: _ = try cursor.fixed(8)                                 // FRAME
            case 0x2E: return try pop()                                        // STOP
            case 0x28: marks.append(stack.count)                               // MARK
            case 0x7D: stack.append(.dict([]))                                 // EMPTY_DICT
            case 0x5D: stack.append(.list([]))                                 // EMPTY_LIST
            case 0x29: stack.append(.tuple([]))                                // EMPTY_TUPLE
            case 0x74: stack.append(.tuple(try popMark()))                     // TUPLE
            case 0x6C: stack.append(.list(try popMark()))                      // LIST
            case 0x85: stack.append(.tuple([try pop()]))                       // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); stack.append(.tuple([a, b]))                    // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(.tuple([a, b, c]))  // TUPLE3
            case 0x4E: stack.append(.none)                                     // NONE
            case 0x88: stack.append(.bool(true))                               // NEWTRUE
            case 0x89: stack.append(.bool(false))                              // NEWFALSE
            case 0x4A: stack.append(.int(Int(Int32(truncatingIfNeeded: try cursor.fixed(4)))))  // BININT
            case 0x4B: stack.append(.int(Int(try cursor.byte())))                             // BININT1
            case 0x4D: stack.append(.int(Int(try cursor.fixed(2))))                           // BININT2
            case 0x8A:                                                          // LONG1
                let n = Int(try cursor.byte())
                guard n <= 8 else { throw cursor.error("an integer of \(n) bytes") }
                let raw = try cursor.fixed(n), shift = UInt64(64 - 8 * n)     // little-endian two's complement
                stack.append(.int(n == 0 ? 0 : Int(Int64(bitPattern: raw << shift) >> Int64(shift))))
            case 0x47: stack.append(.float(Double(bitPattern: try cursor.take(8).reduce(0) { $0 << 8 | UInt64($1) })))  // BINFLOAT (big-endian)
            case 0x58: stack.append(try string(Int(try cursor.fixed(4))))       // BINUNICODE
            case 0x8C: stack.append(try string(Int(try cursor.byte())))         // SHORT_BINUNICODE
            case 0x8D: stack.append(try string(Int(try cursor.fixed(8))))       // BINUNICODE8
            case 0x55: stack.append(try string(Int(try cursor.byte())))         // SHORT_BINSTRING
            case 0x54: stack.append(try string(Int(try cursor.fixed(4))))       // BINSTRING
            case 0x43: stack.append(.bytes(Array(try cursor.take(Int(try cursor.byte())))))   // SHORT_BINBYTES
            case 0x42: stack.append(.bytes(Array(try cursor.take(Int(try cursor.fixed(4)))))) // BINBYTES
            case 0x71: memo[Int(try cursor.byte())] = stack.last               // BINPUT
            case 0x72: memo[Int(try cursor.fixed(4))] = stack.last             // LONG_BINPUT
            case 0x94: memo[memo.count] = stack.last                           // MEMOIZE
            case 0x68, 0x6A:                                                    // BINGET, LONG_BINGET
                let key = Int(op == 0x68 ? UInt64(try cursor.byte()) : try cursor.fixed(4))
                guard let v = memo[key] else { throw cursor.error("malformed pickle (memo \(key) unset)") }
                stack.append(v)
            case 0x63: stack.append(try global(try line(), try line()))        // GLOBAL
            case 0x93:                                                          // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else { throw cursor.error("malformed STACK_GLOBAL") }
                stack.append(try global(module, name))
            case 0x73: let v = try pop(), k = try pop(); try setItems([k, v])   // SETITEM
            case 0x75: try setItems(try popMark())                              // SETITEMS
            case 0x61: try append([try pop()])                                  // APPEND
            case 0x65: try append(try popMark())                                // APPENDS
            case 0x51: stack.append(try storage(try pop(), cursor))             // BINPERSID
            case 0x52:                                                          // REDUCE
                let args = try pop(), callable = try pop()
                stack.append(try call(callable, args, cursor))
            case 0x62:                                                          // BUILD: an OrderedDict's attributes (`_metadata`)
                guard case .dict = try pop(), case .dict = stack.last else { throw cursor.error("BUILD of something other than a dict's attributes") }
            default:
                throw cursor.error(String(format: "pickle opcode 0x%02x at offset %d is outside what a state dict uses; refused", op, cursor.position - 1))
            }
        }
    }

    /// BINPERSID: torch's persistent id `('storage', <storage class>, key, location, element count)`.
    private static func storage(_ id: Value, _ cursor: ByteCursor) throws -> Value {
        guard case .tuple(let t) = id, t.count == 5, case .string("storage") = t[0], case .global(let type) = t[1],
              case .string(let key) = t[2], case .int(let count) = t[4],
              let dtype = DType(rawValue: String(type.dropFirst("torch.".count))) else {
            throw cursor.error("a persistent id that is not a torch storage")
        }
        return .storage(key: key, dtype: dtype, count: count)
    }

    /// REDUCE on an allowed GLOBAL: `OrderedDict()`, `_rebuild_tensor_v2(storage, offset, size, stride, …)`,
    /// `_rebuild_parameter(tensor, requires_grad, hooks)`.
    private static func call(_ callable: Value, _ args: Value, _ cursor: ByteCursor) throws -> Value {
        guard case .global(let name) = callable, case .tuple(let a) = args else { throw cursor.error("REDUCE of \(callable.kind)") }
        func ints(_ v: Value) -> [Int]? {
            guard case .tuple(let items) = v else { return nil }
            let values = items.compactMap { if case .int(let i) = $0 { return i } else { return nil } }
            return values.count == items.count ? values : nil
        }
        switch name {
        case orderedDict where a.isEmpty: return .dict([])
        case rebuildTensor where a.count >= 4:
            guard case .storage(let key, let dtype, let count) = a[0], case .int(let offset) = a[1],
                  let shape = ints(a[2]), let stride = ints(a[3]), shape.count == stride.count else {
                throw cursor.error("\(rebuildTensor) with arguments it never takes")
            }
            return .tensor(Tensor(key: key, dtype: dtype, storageCount: count, offset: offset, shape: shape, stride: stride))
        case rebuildParameter where a.count >= 1:
            guard case .tensor = a[0] else { throw cursor.error("\(rebuildParameter) of \(a[0].kind)") }
            return a[0]
        default: throw cursor.error("\(name) called with \(a.count) arguments, which a state dict never does")
        }
    }

    /// A pickle of an `OrderedDict` from each name to a float32 tensor (contiguous, storage `data/<i>` for the i-th
    /// name), written with the same opcodes `torch.save` uses (protocol 2), so `torch.load(weights_only=True)` reads it.
    static func stateDict(_ tensors: [(name: String, shape: [Int])]) -> [UInt8] {
        var out: [UInt8] = [0x80, 2]
        func global(_ module: String, _ name: String) { out.append(0x63); out += Array("\(module)\n\(name)\n".utf8) }
        func string(_ s: String) { let b = Array(s.utf8); out.append(0x58); out.appendFixed(UInt64(b.count), width: 4); out += b }
        func int(_ i: Int) { out.append(0x4A); out.appendFixed(UInt64(UInt32(truncatingIfNeeded: i)), width: 4) }
        func tuple(_ values: [Int]) { out.append(0x28); values.forEach(int); out.append(0x74) }
        global("collections", "OrderedDict"); out += [0x29, 0x52]                       // OrderedDict()
        out.append(0x28)                                                                // MARK for SETITEMS
        for (i, (name, shape)) in tensors.enumerated() {
            let count = shape.reduce(1, *)
            let stride = shape.indices.map { shape[($0 + 1)...].reduce(1, *) }
            string(name)
            global("torch._utils", "_rebuild_tensor_v2")
            out.append(0x28)                                                            // MARK for the arguments
            out.append(0x28); string("storage"); global("torch", "FloatStorage"); string("\(i)"); string("cpu"); int(count)
            out += [0x74, 0x51]                                                         // TUPLE, BINPERSID
            int(0); tuple(shape); tuple(stride)
            out.append(0x89)                                                            // requires_grad False
            global("collections", "OrderedDict"); out += [0x29, 0x52]                   // backward hooks
            out += [0x74, 0x52]                                                         // TUPLE, REDUCE
        }
        out += [0x75, 0x2E]                                                             // SETITEMS, STOP
        return out
    }
}
