/// A value for one kernel parameter.
public enum KernelArgument: Sendable, Equatable {
    /// A device address, for any pointer parameter (0 for a null pointer where the kernel allows one).
    case pointer(UInt64)
    case int(Int32)
    case longLong(Int64)
    case unsignedLongLong(UInt64)
    case float(Float)

    /// Whether this value may be passed for a parameter of `type`.
    func fits(_ type: KernelDeclaration.ParameterType) -> Bool {
        switch (self, type) {
        case (.pointer, _): return type.isPointer
        case (.int, .int), (.longLong, .longLong), (.unsignedLongLong, .unsignedLongLong), (.float, .float): return true
        default: return false
        }
    }

    /// The value's bytes at the start of an 8-byte little-endian slot (cuLaunchKernel reads each parameter's size
    /// from the kernel, so a 4-byte parameter reads the slot's first 4 bytes).
    var slot: UInt64 {
        switch self {
        case let .pointer(address): return address
        case let .int(value): return UInt64(UInt32(bitPattern: value))
        case let .longLong(value): return UInt64(bitPattern: value)
        case let .unsignedLongLong(value): return value
        case let .float(value): return UInt64(value.bitPattern)
        }
    }
}

extension KernelDeclaration {
    /// Checks `arguments` against this declaration and calls `body` with the parameter array cuLaunchKernel takes
    /// (one pointer per parameter, to its value), valid only during the call.
    /// - Throws: `CUDAError.launchArguments` when the count or a type does not match.
    public func withPackedArguments<R>(_ arguments: [KernelArgument],
                                       _ body: (UnsafeMutablePointer<UnsafeMutableRawPointer?>) throws -> R) throws -> R {
        guard arguments.count == parameters.count else {
            throw CUDAError.launchArguments(kernel: name,
                                            problem: "\(arguments.count) arguments for \(parameters.count) parameters")
        }
        for (argument, parameter) in zip(arguments, parameters) where !argument.fits(parameter.type) {
            throw CUDAError.launchArguments(kernel: name,
                                            problem: "\(argument) given for \(parameter.type.rawValue) \(parameter.name)")
        }
        var slots = arguments.map(\.slot)
        return try slots.withUnsafeMutableBufferPointer { slots in
            var pointers = (0..<slots.count).map { UnsafeMutableRawPointer(slots.baseAddress! + $0) as UnsafeMutableRawPointer? }
            return try pointers.withUnsafeMutableBufferPointer { try body($0.baseAddress!) }
        }
    }
}
