import BERTKernels
import Foundation

/// `CPUBackend.bf16Inference`'s and `inference`'s packed weights, made on first use.
///
/// In fp32 the packed copy replaces the weight: once a weight is packed, the whole pages of its fp32 copy are given
/// back to the system (`MADV_DONTNEED`) and closed (`PROT_NONE`), so an inference model holds its linear weights
/// once — bert-base at batch 1 peaked at 796 MB with both copies against PyTorch's 778 — and a read of a given-back
/// weight faults at once instead of reading zeros. A word-embedding table (what `embeddingForward` reads) is not
/// packed in fp32, even when a tied decoder multiplies by it. The pages get their access back before the allocation holding
/// them is freed.
final class PackedWeights: @unchecked Sendable {
    private let lock = NSLock()
    private let precision: GEMMPrecision
    /// nil for a weight left unpacked.
    private var byAddress: [UnsafeMutablePointer<Float>: (outFeatures: Int, inFeatures: Int, packed: PackedWeight?)] = [:]
    /// This backend's live allocations (start → bytes): pages are given back only inside one.
    private var allocations: [UnsafeMutableRawPointer: Int] = [:]
    /// Pages given back, by the allocation that holds them.
    private var givenBack: [UnsafeMutableRawPointer: [UnsafeMutableRawBufferPointer]] = [:]
    /// Word-embedding tables seen.
    private var tables: Set<UnsafeMutablePointer<Float>> = []

    init(precision: GEMMPrecision) { self.precision = precision }

    /// The weights seen so far, how many of them were packed, and the bytes given back.
    var counts: (seen: Int, packed: Int, givenBack: Int) {
        lock.withLock {
            (byAddress.count, byAddress.values.count { $0.packed != nil },
             givenBack.values.joined().reduce(0) { $0 + $1.count })
        }
    }

    /// The packed copy of `weight`, or nil to use it as it is. In fp32 the layout is oneDNN's faster one for the rows
    /// each thread computes in the weight's first product, `rows` split over the threads
    /// (`OneDNNPackedWeight.Layout`: a single request's few rows take the two-thread layout, a batch's thousands the
    /// one-thread one; later products of other sizes get the same bits, at most a few per cent slower); the
    /// one-thread layout where the two-thread one would grow the weight by more than half (bert-mini's 256-wide
    /// weights: 2.1×). A weight either would grow by more than half stays unpacked: oneDNN pads a matrix of few
    /// outputs a lot (a classifier's 2 × 768 takes 1.6 MB). So does, in fp32, a word-embedding table a tied decoder
    /// multiplies by: it must stay readable, a packed copy beside it would be memory on top (bert-mini's MLM head:
    /// 30 MB more, and no faster at its few masked rows).
    func packed(_ weight: UnsafeMutablePointer<Float>, outFeatures: Int, inFeatures: Int,
                rows: Int) -> PackedWeight? {
        lock.withLock {
            if let known = byAddress[weight], known.outFeatures == outFeatures, known.inFeatures == inFeatures {
                return known.packed
            }
            guard precision == .bf16 || !tables.contains(weight) else {
                byAddress[weight] = (outFeatures, inFeatures, nil)
                return nil
            }
            let made: PackedWeight?
            switch precision {
            case .bf16: made = .bf16(BF16PackedWeight(weight: weight, outFeatures: outFeatures, inFeatures: inFeatures))
            case .fp32:
                let rowsPerThread = (rows + Parallel.threadCount - 1) / Parallel.threadCount
                let layouts: [OneDNNPackedWeight.Layout] =
                    OneDNNPackedWeight.Layout.forProducts(ofRows: rowsPerThread) == .twoThreads
                        ? [.twoThreads, .oneThread] : [.oneThread]
                let layout = layouts.first {
                    OneDNNPackedWeight.bytes(outFeatures: outFeatures, inFeatures: inFeatures, layout: $0)
                        .map { 2 * $0 <= 3 * 4 * outFeatures * inFeatures } ?? false
                }
                made = layout.flatMap {
                    OneDNNPackedWeight(weight: weight, outFeatures: outFeatures, inFeatures: inFeatures, layout: $0)
                }.map { .fp32($0) }
                if made != nil { giveBack(weight, bytes: 4 * outFeatures * inFeatures) }
            }
            byAddress[weight] = (outFeatures, inFeatures, made)
            return made
        }
    }

    func allocated(_ start: UnsafeMutableRawPointer, bytes: Int) { lock.withLock { allocations[start] = bytes } }

    /// Opens the pages given back inside the allocation at `start`, which is about to be freed.
    func willRelease(_ start: UnsafeMutableRawPointer) {
        lock.withLock {
            for pages in givenBack.removeValue(forKey: start) ?? [] {
                precondition(mprotect(pages.baseAddress, pages.count, PROT_READ | PROT_WRITE) == 0,
                             "cannot reopen the pages of a packed weight")
            }
            allocations[start] = nil
        }
    }

    /// `embeddingForward` reads `table`: it must keep its pages.
    func readsAsTable(_ table: UnsafeMutablePointer<Float>) {
        lock.withLock {
            guard tables.insert(table).inserted else { return }
            precondition(byAddress[table]?.packed == nil || precision != .fp32,
                         "a word-embedding table was packed before it was read as a table")
        }
    }

    /// The whole pages inside `weight`'s `bytes`, within one allocation, given back and closed.
    private func giveBack(_ weight: UnsafeMutablePointer<Float>, bytes: Int) {
        let page = Int(getpagesize()), from = UInt(bitPattern: weight), to = from + UInt(bytes)
        guard let start = allocations.first(where: {
            UInt(bitPattern: $0.key) <= from && to <= UInt(bitPattern: $0.key) + UInt($0.value)
        })?.key else { return }
        let first = (from + UInt(page) - 1) / UInt(page) * UInt(page), end = to / UInt(page) * UInt(page)
        guard end > first, let pages = UnsafeMutableRawPointer(bitPattern: first) else { return }
        let length = Int(end - first)
        guard madvise(pages, length, MADV_DONTNEED) == 0, mprotect(pages, length, PROT_NONE) == 0 else { return }
        givenBack[start, default: []].append(UnsafeMutableRawBufferPointer(start: pages, count: length))
    }
}
