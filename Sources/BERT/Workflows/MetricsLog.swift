import Foundation

/// One line of a pre-training metrics log (`bert train --json-summary FILE`): a `train` point, an `eval` point
/// or the closing `summary`.
///
/// ```
/// {"type":"train","step":12,"loss":7.1,"mlm_loss":6.4,"nsp_loss":0.69,"learning_rate":0.00012,"grad_norm":1.3,...}
/// {"type":"eval","step":50,"eval_mlm_loss":6.2,"eval_mlm_accuracy":0.081,"eval_nsp_loss":0.68,...,"eval_loss":6.9}
/// {"type":"summary","step":100,"e2e_train_time":250.1,"training_sequences_per_second":40.9,
///  "training_tokens_per_second":4790.2,"final_loss":6.1,...}
/// ```
public struct MetricsRecord: Equatable, Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case train, eval, summary
    }

    public var kind: Kind
    public var step: Int
    /// Every numeric field but `step`, under its key in the log (`loss`, `eval_mlm_accuracy`, …). A `NaN`,
    /// `Infinity` or `null` in the log is kept as a non-finite value, for the reader to skip or count.
    public var values: [String: Double]

    public init(kind: Kind, step: Int, values: [String: Double]) {
        self.kind = kind
        self.step = step
        self.values = values
    }

    /// The field `key`, or nil when the line did not have it.
    public subscript(key: String) -> Double? { values[key] }

    // Typed views of the fields the trainer writes.
    public var loss: Double? { values["loss"] }
    public var mlmLoss: Double? { values["mlm_loss"] }
    public var nspLoss: Double? { values["nsp_loss"] }
    public var learningRate: Double? { values["learning_rate"] }
    public var evalLoss: Double? { values["eval_loss"] }
    public var evalMLMAccuracy: Double? { values["eval_mlm_accuracy"] }
    public var evalNSPAccuracy: Double? { values["eval_nsp_accuracy"] }
}

/// Reads metrics logs: one JSON object per line. Objects of an unknown `type` (or none) and unknown keys are
/// ignored; blank lines are skipped; anything else that is not a JSON object is an error naming the file and line.
/// `NaN`, `Infinity` and `-Infinity` (as Python's `json` writes them, bare or quoted, any case) are accepted.
public enum MetricsLog {
    /// The records of the log at `path`, in file order.
    /// - Throws: `BertError.io` when the file cannot be read; `BertError.invalidInput("path:line: …")` for a
    ///   line that is not a JSON object, or a train/eval/summary line without an integral `step`.
    public static func read(path: String) throws -> [MetricsRecord] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw BertError.io("\(path): no such file")
        }
        guard !isDirectory.boolValue, let data = FileManager.default.contents(atPath: path) else {
            throw BertError.io("\(path): cannot read the file")
        }
        return try parse(data, source: path)
    }

    /// The records of a log held in memory; `source` names it in errors.
    public static func parse(_ data: Data, source: String) throws -> [MetricsRecord] {
        var records: [MetricsRecord] = []
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let bytes = Array(line)
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            do {
                if let record = try record(from: bytes) { records.append(record) }
            } catch let error as LineError {
                throw BertError.invalidInput("\(source):\(lineNumber): \(error.message)")
            }
        }
        return records
    }

    /// One line's record, or nil for an object of another type.
    static func record(from bytes: [UInt8]) throws -> MetricsRecord? {
        var scanner = JSONScanner(bytes)
        let fields = try scanner.topLevelObject()
        guard case .string(let type)? = fields["type"], let kind = MetricsRecord.Kind(rawValue: type) else { return nil }
        guard case .number(let step)? = fields["step"], step.isFinite, step == step.rounded(), abs(step) < 1e15 else {
            throw LineError(message: "a \(type) record needs an integral \"step\"")
        }
        var values: [String: Double] = [:]
        for (key, value) in fields where key != "step" {
            switch value {
            case .number(let x): values[key] = x
            case .null: values[key] = .nan
            case .string(let s): if let x = nonFinite(s) { values[key] = x }
            case .other: break
            }
        }
        return MetricsRecord(kind: kind, step: Int(step), values: values)
    }

    /// `NaN`, `Infinity`, `-Infinity`, `inf`, `-inf` (any case) as a Double; nil for anything else.
    static func nonFinite(_ token: String) -> Double? {
        switch token.lowercased() {
        case "nan", "-nan": return .nan
        case "infinity", "inf", "+infinity", "+inf": return .infinity
        case "-infinity", "-inf": return -.infinity
        default: return nil
        }
    }

    struct LineError: Error { var message: String }

    /// A top-level field: what the log reader keeps of it.
    enum Field: Equatable { case number(Double), string(String), null, other }

    /// A strict JSON reader for one line (RFC 8259 plus bare `NaN`/`Infinity`), which keeps the top-level
    /// object's fields and checks, then drops, nested arrays and objects.
    struct JSONScanner {
        let bytes: [UInt8]
        var i = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        mutating func topLevelObject() throws -> [String: Field] {
            skipSpace()
            guard peek == UInt8(ascii: "{") else {
                throw LineError(message: "not a JSON object (expected '{', found \(describe(peek)))")
            }
            let fields = try object(keep: true)
            skipSpace()
            guard i == bytes.count else { throw LineError(message: "not a JSON object (text after the closing '}')") }
            return fields
        }

        private var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

        private func describe(_ byte: UInt8?) -> String {
            guard let byte else { return "end of line" }
            return byte >= 0x20 && byte < 0x7F ? "'\(Character(UnicodeScalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
        }

        private func fail(_ what: String) -> LineError {
            LineError(message: "not a JSON object (\(what) at column \(i + 1), found \(describe(peek)))")
        }

        private mutating func skipSpace() {
            while let b = peek, b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0A { i += 1 }
        }

        private mutating func expect(_ c: Character) throws {
            skipSpace()
            guard peek == c.asciiValue else { throw fail("expected '\(c)'") }
            i += 1
        }

        private mutating func object(keep: Bool) throws -> [String: Field] {
            try expect("{")
            var fields: [String: Field] = [:]
            skipSpace()
            if peek == UInt8(ascii: "}") { i += 1; return fields }
            while true {
                skipSpace()
                guard peek == UInt8(ascii: "\"") else { throw fail("expected a key") }
                let key = try string()
                try expect(":")
                let value = try self.value()
                if keep { fields[key] = value }
                skipSpace()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                if peek == UInt8(ascii: "}") { i += 1; return fields }
                throw fail("expected ',' or '}'")
            }
        }

        private mutating func array() throws {
            try expect("[")
            skipSpace()
            if peek == UInt8(ascii: "]") { i += 1; return }
            while true {
                _ = try value()
                skipSpace()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                if peek == UInt8(ascii: "]") { i += 1; return }
                throw fail("expected ',' or ']'")
            }
        }

        private mutating func value() throws -> Field {
            skipSpace()
            guard let b = peek else { throw fail("expected a value") }
            switch b {
            case UInt8(ascii: "{"): _ = try object(keep: false); return .other
            case UInt8(ascii: "["): try array(); return .other
            case UInt8(ascii: "\""): return .string(try string())
            default: break
            }
            let start = i
            while let c = peek, c == UInt8(ascii: "-") || c == UInt8(ascii: "+") || c == UInt8(ascii: ".")
                    || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || (c | 0x20 >= UInt8(ascii: "a") && c | 0x20 <= UInt8(ascii: "z")) {
                i += 1
            }
            let token = String(decoding: bytes[start..<i], as: UTF8.self)
            switch token {
            case "true", "false": return .other
            case "null": return .null
            default: break
            }
            if let x = MetricsLog.nonFinite(token) { return .number(x) }
            guard Self.isJSONNumber(bytes[start..<i]), let x = Double(token) else {
                i = start
                throw fail("expected a value")
            }
            return .number(x)
        }

        /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
        static func isJSONNumber(_ s: ArraySlice<UInt8>) -> Bool {
            var j = s.startIndex
            func digits() -> Int {
                let from = j
                while j < s.endIndex, s[j] >= UInt8(ascii: "0"), s[j] <= UInt8(ascii: "9") { j += 1 }
                return j - from
            }
            if j < s.endIndex, s[j] == UInt8(ascii: "-") { j += 1 }
            let first = j
            let integer = digits()
            guard integer > 0, integer == 1 || s[first] != UInt8(ascii: "0") else { return false }
            if j < s.endIndex, s[j] == UInt8(ascii: ".") { j += 1; guard digits() > 0 else { return false } }
            if j < s.endIndex, s[j] | 0x20 == UInt8(ascii: "e") {
                j += 1
                if j < s.endIndex, s[j] == UInt8(ascii: "+") || s[j] == UInt8(ascii: "-") { j += 1 }
                guard digits() > 0 else { return false }
            }
            return j == s.endIndex
        }

        private mutating func string() throws -> String {
            try expect("\"")
            var out: [UInt8] = []
            while let b = peek {
                i += 1
                switch b {
                case UInt8(ascii: "\""): return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard let e = peek else { throw fail("unfinished escape") }
                    i += 1
                    switch e {
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "u"):
                        guard i + 4 <= bytes.count,
                              let code = UInt32(String(decoding: bytes[i..<(i + 4)], as: UTF8.self), radix: 16) else {
                            throw fail("bad \\u escape")
                        }
                        i += 4
                        // Surrogate halves become U+FFFD: the reader only compares keys and `type`.
                        out += Array(String(UnicodeScalar(code).map(Character.init) ?? "\u{FFFD}").utf8)
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                    default: i -= 1; throw fail("bad escape")
                    }
                case 0..<0x20: i -= 1; throw fail("control character in a string")
                default: out.append(b)
                }
            }
            throw fail("unterminated string")
        }
    }
}
