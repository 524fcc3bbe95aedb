import Foundation
import Testing
@testable import BERT

/// Writes that run out of space, on a real small file system (a 1 MiB tmpfs; it needs root, and the tests say they
/// are skipped without it): one clear error, a non-zero exit, and nothing half-written under a final name.
@Suite(.serialized) struct FullDiskTests {
    /// A fresh 1 MiB tmpfs, or nil (with a note) where this machine does not allow mounting one.
    static func smallFileSystem() throws -> String? {
        let mountPoint = try temporaryDirectory("small-fs")
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mountPoint]
        mount.standardError = FileHandle.nullDevice
        if (try? mount.run()) != nil { mount.waitUntilExit() }
        guard mount.terminationStatus == 0 else {
            print("note: cannot mount a small tmpfs here (needs root); full-disk tests skipped")
            try? FileManager.default.removeItem(atPath: mountPoint)
            return nil
        }
        return mountPoint
    }

    static func release(_ mountPoint: String) {
        let umount = Process()
        umount.executableURL = URL(fileURLWithPath: "/bin/umount")
        umount.arguments = [mountPoint]
        if (try? umount.run()) != nil { umount.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: mountPoint)
    }

    @Test(.enabled(if: PrepareCommandTests.ready)) func aCheckpointThatDoesNotFitLeavesNothingBehind() throws {
        guard let full = try Self.smallFileSystem() else { return }
        defer { Self.release(full) }
        let dir = try temporaryDirectory("full-disk")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try PrepareCommandTests.writeCorpus(in: dir)
        #expect(try BertProgram.run(["prepare", "--input", dir + "/wiki_00", "--vocab-file", PrepareCommandTests.vocab,
                                     "--output-dir", dir + "/shards", "--max-seq-length", "64", "--max-predictions-per-seq", "10"]).status == 0)
        // bert-tiny's weights alone are 6 MB: its first checkpoint cannot fit in 1 MiB.
        let r = try BertProgram.run(["pretrain", "--input-dir", dir + "/shards", "--output-dir", full + "/run", "--model", "bert-tiny",
                                     "--max-seq-length", "64", "--max-predictions-per-seq", "10", "--train-batch-size", "4",
                                     "--max-steps", "2", "--num-steps-per-checkpoint", "2"])
        #expect(r.status != 0 && !r.signaled)
        let errors = r.err.split(separator: "\n").filter { $0.hasPrefix("Error: ") }
        #expect(errors.count == 1 && errors[0].contains(full + "/run/") && errors[0].hasSuffix("No space left on device"), "\(r.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: full + "/run").filter { !$0.hasSuffix(".jsonl") } == [],
                "no checkpoint, complete or partial")
    }

    @Test(.enabled(if: BertProgram.present)) func predictionsThatDoNotFitAreNeitherWritten() throws {
        guard let full = try Self.smallFileSystem() else { return }
        defer { Self.release(full) }
        let w = ProbeSuiteTests.w
        let squad = #"{"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": "Paris is the capital of France and its largest city.", "qas": [{"id": "q1", "question": "What is the capital of France?", "answers": [{"text": "Paris", "answer_start": 0}]}]}]}]}"#
        try squad.write(toFile: w + "/one.json", atomically: true, encoding: .utf8)
        // Fill the file system, then free one page: the small predictions.json fits, the n-best list after it does not.
        try FileManager.default.createDirectory(atPath: full + "/answers", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: full + "/filler", contents: nil)
        let filler = try FileHandle(forWritingTo: URL(fileURLWithPath: full + "/filler"))
        while (try? filler.write(contentsOf: Data(count: 4096))) != nil {}
        let size = try filler.seekToEnd()
        try filler.truncate(atOffset: size / 4096 * 4096 - (size % 4096 == 0 ? 4096 : 0))
        try filler.close()
        let r = try BertProgram.run(["predict", "squad", "--checkpoint", w + "/qa", "--predict-file", w + "/one.json", "--output", full + "/answers",
                                     "--max-seq-length", "64", "--doc-stride", "32", "--max-query-length", "16"])
        #expect(r.status != 0 && !r.signaled)
        #expect(r.err.contains("Error: cannot write \(full)/answers/") && r.err.contains("No space left on device"), "\(r.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: full + "/answers") == [], "both files or neither")
    }
}
