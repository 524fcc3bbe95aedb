import Foundation

/// Faults a test can inject into a real run through the environment variable `BERT_FAULT_INJECTION`, to prove the
/// crash and error paths on the actual program rather than on a mock:
///   `kill-during-checkpoint:<step>` — SIGKILL this process halfway through writing that step's checkpoint;
///   `nan-at-step:<step>` — turn a weight into NaN before that optimizer step's forward pass;
///   `kill-at-step:<step>` — SIGKILL this process before that optimizer step;
///   `sleep-at-step:<step>` — hang (sleep for good, without dying) before that optimizer step;
///   `stall-loader-at-step:<step>` — hang inside the data loader's delivery of that step's batches;
///   `kill-after-shard:<n>` — SIGKILL `bert prepare` once it has written n shards.
/// With `BERT_FAULT_RANK=r` as well, only rank r of a multi-process run is affected. Unset (always, outside tests)
/// it does nothing.
enum FaultInjection {
    static let setting: (fault: String, step: Int)? = {
        guard let value = ProcessInfo.processInfo.environment["BERT_FAULT_INJECTION"] else { return nil }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let step = Int(parts[1]) else { return nil }
        return (String(parts[0]), step)
    }()

    static let rank = ProcessInfo.processInfo.environment["BERT_FAULT_RANK"].flatMap { Int($0) }

    static func active(_ fault: String, step: Int, rank: Int = 0) -> Bool {
        setting?.fault == fault && setting?.step == step && (self.rank == nil || self.rank == rank)
    }

    /// A rank that stops answering without dying: what the collective and loader watchdogs must catch.
    static func hang() -> Never {
        while true { sleep(3600) }
    }
}
