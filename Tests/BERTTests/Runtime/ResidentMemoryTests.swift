import Foundation
import Testing
@testable import BERT

/// What a model holds in memory beside its parameters: a checkpoint's mapped file is let go tensor by tensor as it is
/// copied in, and a model that only runs inference holds no gradient buffer.
@Suite struct ResidentMemoryTests {
    /// Resident kilobytes of this process's mappings of `path` (`/proc/self/smaps`), nil where that file is unavailable.
    func residentKilobytes(ofMappingsOf path: String) -> Int? {
        guard let smaps = try? String(contentsOfFile: "/proc/self/smaps", encoding: .utf8) else { return nil }
        var total = 0, inside = false
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let first = fields.first, first.contains("-"), fields.count >= 5 {   // a mapping's header line
                inside = fields.count >= 6 && fields[5...].joined(separator: " ") == path
            } else if inside, fields.first == "Rss:", fields.count >= 2, let kb = Int(fields[1]) {
                total += kb
            }
        }
        return total
    }

    @Test func copiedTensorsLeaveNoMappedPagesBehind() throws {
        let dir = try temporaryDirectory("bert-mapped")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = URL(fileURLWithPath: dir + "/model.safetensors").resolvingSymlinksInPath().path
        // Four tensors of 1 MiB each, with values that say where they came from.
        let names = ["a", "b", "c", "d"], count = 1 << 18
        let values = names.indices.map { t in (0..<count).map { Float(t * count + $0) } }
        let all = values.flatMap { $0 }
        try all.withUnsafeBufferPointer { floats in
            try Safetensors.write(names.indices.map { t in
                (names[t], .float(UnsafeBufferPointer(rebasing: floats[(t * count)..<((t + 1) * count)]), shape: [count]))
            }, to: path)
        }
        let file = try Safetensors.File(path: path)
        guard let before = residentKilobytes(ofMappingsOf: path) else {
            print("note: /proc/self/smaps is unavailable here; the mapped-file residency check is skipped")
            return
        }
        #expect(before <= 8, "only the header was read so far: \(before) kB resident")
        let destination = UnsafeMutablePointer<Float>.allocate(capacity: names.count * count)
        defer { destination.deallocate() }
        for (t, name) in names.enumerated() { try file.copyFloats(name, into: destination + t * count) }
        #expect(Array(UnsafeBufferPointer(start: destination, count: names.count * count)) == all)
        // At most the two partly shared pages at each tensor's ends (and the header's) stay: not the 4 MiB read.
        let after = residentKilobytes(ofMappingsOf: path) ?? 0
        #expect(after <= 64, "\(after) kB of the mapped file stayed resident after the copies")
        // Dropped pages come back from the file when read again.
        #expect(try file.floats("c") == values[2])
    }

    @Test func inferenceHoldsNoGradientBuffer() throws {
        guard BertProgram.present else { return }
        let dir = try temporaryDirectory("bert-rss")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        /// Peak resident MiB of an inference `bert bench` on a one-layer model with `vocab` word embeddings of 256.
        func peak(vocab: Int) throws -> Double {
            let config = dir + "/config-\(vocab).json"
            try #"{"vocab_size": \#(vocab), "hidden_size": 256, "num_hidden_layers": 1, "num_attention_heads": 4, "intermediate_size": 512, "max_position_embeddings": 64, "type_vocab_size": 2, "hidden_act": "gelu"}"#
                .write(toFile: config, atomically: true, encoding: .utf8)
            let run = try BertProgram.run(["bench", "--config-file", config, "--mode", "infer", "--head", "classification",
                                           "--batch", "1", "--seq-len", "16", "--steps", "1", "--warmup", "0", "--threads", "1"])
            #expect(run.status == 0, "\(run.err)")
            let report = try JSONSerialization.jsonObject(with: Data(run.out.utf8)) as? [String: Any]
            return report?["peak_rss_mb"] as? Double ?? .infinity
        }
        // 30,000 more words of 256 floats: 29.3 MiB more parameters; with a gradient buffer it would be 58.6 MiB more.
        let grown = try peak(vocab: 31_000) - peak(vocab: 1_000)
        #expect(grown < 29.3 * 1.4, "peak resident memory grew by \(grown) MiB for 29.3 MiB of parameters")
    }
}
