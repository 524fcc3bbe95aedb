/// Named float tensors that a checkpoint loader copies into a model's flat buffer by name (`Checkpoint.load`): a
/// safetensors file read in place, or a `TensorMap` built from a TensorFlow or PyTorch checkpoint after its names were
/// mapped to Hugging Face's.
public protocol TensorSource {
    /// The file the tensors come from, for error messages.
    var path: String { get }
    var tensorNames: [String] { get }
    /// The shape of `name` (PyTorch layout), nil when absent.
    func shape(of name: String) -> [Int]?
    /// Copies tensor `name`, row-major, into `destination`.
    func copyFloats(_ name: String, into destination: UnsafeMutablePointer<Float>) throws
}

extension Safetensors.File: TensorSource {
    public var tensorNames: [String] { Array(entries.keys) }
    public func shape(of name: String) -> [Int]? { entries[name]?.shape }
}

/// Tensors held in memory by name, in insertion order.
public struct TensorMap: TensorSource {
    public let path: String
    public private(set) var tensorNames: [String] = []
    private var tensors: [String: (shape: [Int], values: [Float])] = [:]

    public init(path: String) { self.path = path }

    /// Adds `name`; false (and nothing added) when the name is already present.
    public mutating func add(_ name: String, shape: [Int], values: [Float]) -> Bool {
        precondition(shape.reduce(1, *) == values.count, "TensorMap: \(name) shape \(shape) does not match its data")
        guard tensors[name] == nil else { return false }
        tensorNames.append(name)
        tensors[name] = (shape, values)
        return true
    }

    public func shape(of name: String) -> [Int]? { tensors[name]?.shape }

    public func values(_ name: String) -> [Float]? { tensors[name]?.values }

    public func copyFloats(_ name: String, into destination: UnsafeMutablePointer<Float>) throws {
        guard let values = tensors[name]?.values else { throw BertError.invalidCheckpoint("\(path): no tensor named \(name)") }
        destination.update(from: values, count: values.count)
    }
}
