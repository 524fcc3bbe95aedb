import Foundation

/// The memory of an emulated device: host allocations handed out under addresses the host cannot use. The addresses
/// start at 2⁶², outside the canonical x86-64 and AArch64 address ranges, so any read through one without the
/// backend's translation faults at once. A `CPUBackend` built with `CPUBackend.emulatedDevice` computes with the CPU
/// kernels on the translated addresses but reports no host address (`hostAddress` is nil): every crossing the model
/// and trainer make must then be an explicit upload or download, exactly as on a GPU. Training through it and
/// through the plain CPU backend giving the same bits proves the host side of a device backend without a device.
/// `EmulatedRuntime` keeps the CUDA backend's memory the same way.
public final class EmulatedMemory: @unchecked Sendable {
    private struct Allocation { let device: UInt, bytes: Int, host: UnsafeMutableRawPointer }
    private static let base: UInt = 1 << 62
    private var allocations: [Allocation] = []   // sorted by device address
    private var next = EmulatedMemory.base
    private let lock = NSLock()

    public init() {}

    public func allocate(bytes: Int) -> UInt {
        let host = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        host.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        lock.lock()
        defer { lock.unlock() }
        let device = next
        next += UInt((bytes + 4095) / 4096 * 4096 + 4096)   // a gap between allocations: an overrun is not another's memory
        allocations.append(Allocation(device: device, bytes: bytes, host: host))
        return device
    }

    public func release(_ device: UInt) {
        lock.lock()
        defer { lock.unlock() }
        guard let i = allocations.firstIndex(where: { $0.device == device }) else {
            preconditionFailure("emulated device: release of \(device), which is not an allocation")
        }
        allocations.remove(at: i).host.deallocate()
    }

    /// The host memory behind `bytes` from `device`; nil unless they all lie inside one allocation.
    public func host(_ device: UInt, bytes: Int) -> UnsafeMutableRawPointer? {
        guard let a = allocation(containing: device), device + UInt(max(bytes, 0)) <= a.device + UInt(a.bytes) else {
            return nil
        }
        return a.host + Int(device - a.device)
    }

    /// The host address behind `device`, which must lie inside an allocation.
    public func host(_ device: UInt) -> UInt {
        guard let a = allocation(containing: device) else {
            preconditionFailure("emulated device: address \(String(device, radix: 16)) is in no allocation")
        }
        return UInt(bitPattern: a.host) + (device - a.device)
    }

    private func allocation(containing device: UInt) -> Allocation? {
        lock.lock()
        defer { lock.unlock() }
        var lo = 0, hi = allocations.count
        while lo < hi {   // the last allocation starting at or below `device`
            let mid = (lo + hi) / 2
            if allocations[mid].device <= device { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0, case let a = allocations[lo - 1], device < a.device + UInt(a.bytes) else { return nil }
        return a
    }
}
