import Foundation

/// Calls a handler when a guarded call has not returned within its time limit: for waits that cannot be
/// interrupted, such as a shard read on a hung network filesystem, where the handler ends the job
/// (`Communicator.abort`) instead of letting every rank wait for ever.
///
/// One thread per watchdog, started on first use, sleeps until the armed deadline; `guarding` arms it before the
/// call and disarms it after, so an unarmed watchdog costs nothing but a sleeping thread.
public final class Watchdog: @unchecked Sendable {
    /// The state the watching thread shares with the watchdog (the thread must not keep the watchdog alive).
    private final class Shared: @unchecked Sendable {
        let condition = NSCondition()
        var armed: (deadline: Date, onExpiry: @Sendable () -> Void)?
        var stopped = false
    }

    private let shared = Shared()
    private var started = false

    public init() {}

    deinit {
        shared.condition.lock()
        shared.stopped = true
        shared.condition.broadcast()
        shared.condition.unlock()
    }

    /// Runs `body`; if it has not returned after `timeout` seconds, calls `onExpiry` on the watchdog's thread (once;
    /// `body` is not interrupted). A `timeout` of 0 runs `body` unguarded.
    public func guarding<T>(timeout: Double, onExpiry: @escaping @Sendable () -> Void, _ body: () throws -> T) rethrows -> T {
        guard timeout > 0 else { return try body() }
        let shared = shared
        shared.condition.lock()
        shared.armed = (Date(timeIntervalSinceNow: timeout), onExpiry)
        if !started {
            started = true
            Thread { Self.watch(shared) }.start()
        }
        shared.condition.broadcast()
        shared.condition.unlock()
        defer {
            shared.condition.lock()
            shared.armed = nil
            shared.condition.broadcast()
            shared.condition.unlock()
        }
        return try body()
    }

    /// The watching thread: sleeps until armed, then until the deadline or a disarm; calls the handler at expiry.
    private static func watch(_ shared: Shared) {
        shared.condition.lock()
        while !shared.stopped {
            guard let armed = shared.armed else { shared.condition.wait(); continue }
            if Date() >= armed.deadline {
                shared.armed = nil
                shared.condition.unlock()
                armed.onExpiry()
                shared.condition.lock()
            } else {
                _ = shared.condition.wait(until: armed.deadline)   // woken early or timed out: the loop looks again
            }
        }
        shared.condition.unlock()
    }
}
