import CMPI
import Foundation

/// Finds out, before a blocking MPI collective, whether every rank has reached it, and if not which ranks have not.
///
/// A blocking collective cannot be interrupted, and a rank that stops without dying (a hung filesystem, a deadlocked
/// thread, a sleeping process) leaves the others inside it for ever: mpirun only acts on ranks that exit. So each
/// rank first announces its arrival to every other rank with non-blocking point-to-point messages on a duplicate of
/// the world communicator (its own message space: these never match the collectives' traffic), and polls with
/// `MPI_Test` until it has heard from all of them. Only then does it enter the collective, which every rank has then
/// reached. If `timeout` seconds pass first, the ranks not heard from are the stalled ones, and it throws
/// `CommunicatorError.stalled` naming them; the caller aborts the job (`MPI_Abort`, which mpirun propagates).
///
/// The message carries the collective's kind, so ranks that call different collectives at the same point (a bug
/// that would otherwise deadlock or mix buffers) stop with `CommunicatorError.mismatch`.
///
/// Cost: 2·(W−1) messages of 8 bytes per rank and collective, and the latency of one round (tens of µs on one
/// machine), next to collectives that move megabytes. Polling spins for the first ≈ 1,000 tests, then sleeps 100 µs
/// between tests, so a rank waiting a long time for a slow one does not hold a core.
final class MPIArrivalGate {
    /// The collectives, by the code their arrival notice carries.
    static let operations = ["allReduceSum", "reduceScatterSum", "allGather", "broadcast", "barrier"]

    private let comm: MPI_Comm
    private let rank: Int
    private let size: Int
    /// What this rank sends (its collective's code) and what it received from each rank: kept for the life of the
    /// gate, because a notice to a stalled rank may still be pending when the gate gives up.
    private let sent = UnsafeMutablePointer<Int64>.allocate(capacity: 1)
    private let received: UnsafeMutablePointer<Int64>

    /// Duplicates `world` (a collective call: every rank creates its gate at the same point).
    init(world: MPI_Comm, rank: Int, size: Int) throws {
        var duplicate: MPI_Comm?
        let code = MPI_Comm_dup(world, &duplicate)
        try MPICommunicator.check(code, "MPI_Comm_dup", rank: rank)
        comm = duplicate!
        self.rank = rank
        self.size = size
        received = .allocate(capacity: size)
    }

    deinit {
        sent.deallocate()
        received.deallocate()
    }

    /// Returns once every other rank has announced `operation`; throws `stalled` naming those not heard from within
    /// `timeout` seconds, or `mismatch` when a rank announced another collective.
    func pass(_ operation: String, timeout: Double) throws {
        guard let code = Self.operations.firstIndex(of: operation) else { preconditionFailure("unknown collective \(operation)") }
        sent.pointee = Int64(code)
        let peers = (0..<size).filter { $0 != rank }
        var receives = [MPI_Request?](repeating: nil, count: peers.count)
        var sends = [MPI_Request?](repeating: nil, count: peers.count)
        for (i, peer) in peers.enumerated() {
            try check(MPI_Irecv(received + peer, 1, swmpi_int64(), Int32(peer), 0, comm, &receives[i]), "MPI_Irecv")
            try check(MPI_Isend(sent, 1, swmpi_int64(), Int32(peer), 0, comm, &sends[i]), "MPI_Isend")
        }
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeout * 1e9)
        var waiting = Set(peers.indices), tests = 0
        while true {
            for i in waiting {
                var done: Int32 = 0
                try check(MPI_Test(&receives[i], &done, swmpi_status_ignore()), "MPI_Test")
                if done != 0 { waiting.remove(i) }
            }
            if waiting.isEmpty { break }
            if DispatchTime.now().uptimeNanoseconds > deadline {
                throw CommunicatorError.stalled(operation: operation, rank: rank, missingRanks: waiting.map { peers[$0] }.sorted(),
                                                timeout: timeout)
            }
            tests += 1
            if tests > 1000 { usleep(100) }
        }
        // Every peer has arrived, so it has posted its receive: the sends complete.
        for i in sends.indices { try check(MPI_Wait(&sends[i], swmpi_status_ignore()), "MPI_Wait") }
        if let other = peers.first(where: { received[$0] != Int64(code) }) {
            let theirs = Self.operations.indices.contains(Int(received[other])) ? Self.operations[Int(received[other])] : "?"
            throw CommunicatorError.mismatch(operation: operation, rank: rank,
                                             message: "rank \(other) called \(theirs) where this rank called \(operation)")
        }
    }

    private func check(_ code: Int32, _ operation: String) throws { try MPICommunicator.check(code, operation, rank: rank) }
}
