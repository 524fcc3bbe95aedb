import Foundation
import Testing
@testable import BERT

/// `bert prepare` records a finished shard set in `<prefix>_manifest.json`; a set it did not finish, a shard that
/// changed or went missing, and a shard of an older run are refused by every reader of the directory.
@Suite struct ShardManifestTests {
    /// The shards `bert prepare` makes of the ten-article corpus, in `dir/shards`.
    func prepare(in dir: String, extra: [String] = []) throws -> BertProgram.Result {
        try PrepareCommandTests.writeCorpus(in: dir)
        return try BertProgram.run(["prepare", "--input", dir + "/wiki_00", "--vocab-file", PrepareCommandTests.vocab,
                                    "--output-dir", dir + "/shards", "--output-prefix", "wiki", "--num-shards", "2",
                                    "--max-seq-length", "64", "--max-predictions-per-seq", "10"] + extra)
    }

    /// A pid that belonged to a process now gone.
    func deadPid() throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/true")
        try process.run()
        process.waitUntilExit()
        return process.processIdentifier
    }

    @Test(.enabled(if: PrepareCommandTests.ready)) func aFinishedSetIsRecordedAndAcceptedAndStaleTemporariesGo() throws {
        let dir = try temporaryDirectory("manifest")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let shards = dir + "/shards", pid = try deadPid()
        try FileManager.default.createDirectory(atPath: shards + "/.prepare-tmp-\(pid)", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: shards + "/wiki_training_0.hdf5.tmp-\(pid)", contents: Data(count: 100))
        let r = try prepare(in: dir)
        #expect(r.status == 0, "\(r.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: shards).sorted()
                == ["wiki_manifest.json", "wiki_prepare.json", "wiki_training_0.hdf5", "wiki_training_1.hdf5"])
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let manifest = try decoder.decode(ShardManifest.self, from: Data(contentsOf: URL(fileURLWithPath: shards + "/wiki_manifest.json")))
        #expect(manifest.complete && manifest.maxSeqLength == 64 && manifest.shards.map(\.file) == ["wiki_training_0.hdf5", "wiki_training_1.hdf5"])
        for shard in manifest.shards {
            #expect(try readAndValidateShard(path: shards + "/" + shard.file, vocabSize: 30522).count == shard.instances)
            #expect(try fileChecksum(shards + "/" + shard.file) == shard.checksum)
        }
        #expect(try PretrainingLoader.shardFiles(in: shards).count == 2)
    }

    @Test(.enabled(if: PrepareCommandTests.ready)) func anIncompleteOrChangedSetIsRefused() throws {
        let dir = try temporaryDirectory("manifest-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let shards = dir + "/shards", manifestPath = shards + "/wiki_manifest.json"
        #expect(try prepare(in: dir).status == 0)
        let finished = try Data(contentsOf: URL(fileURLWithPath: manifestPath))
        func refusal() -> String {
            do { _ = try PretrainingLoader.shardFiles(in: shards); return "accepted" } catch { return "\(error)" }
        }

        // A prepare killed after its first shard of two: the manifest still says unfinished, whatever shards are there.
        try FileManager.default.removeItem(atPath: shards)
        let killed = try BertProgram.run(["prepare", "--input", dir + "/wiki_00", "--vocab-file", PrepareCommandTests.vocab,
                                          "--output-dir", shards, "--output-prefix", "wiki", "--num-shards", "2",
                                          "--max-seq-length", "64", "--max-predictions-per-seq", "10"],
                                         environment: ["BERT_FAULT_INJECTION": "kill-after-shard:1"])
        #expect(killed.signaled && killed.status == SIGKILL)
        #expect(FileManager.default.fileExists(atPath: shards + "/wiki_training_0.hdf5"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: shards).contains { $0.hasPrefix(".prepare-tmp-") })
        #expect(refusal().hasPrefix("\(manifestPath): `bert prepare` did not finish writing these shards"))
        let pretrain = try BertProgram.run(["pretrain", "--input-dir", shards, "--output-dir", dir + "/run", "--model", "bert-tiny",
                                            "--max-seq-length", "64", "--max-predictions-per-seq", "10", "--max-steps", "1"])
        #expect(pretrain.status != 0 && !pretrain.signaled && pretrain.err.contains("did not finish writing these shards"), "\(pretrain.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/run/ckpt_1"))
        #expect(try prepare(in: dir).status == 0)   // the rerun finishes the set and clears the dead run's temporaries
        #expect(try FileManager.default.contentsOfDirectory(atPath: shards).allSatisfy { !$0.hasPrefix(".") && !$0.contains(".tmp-") })
        #expect(refusal() == "accepted")
        #expect(try String(contentsOfFile: manifestPath, encoding: .utf8) == String(decoding: finished, as: UTF8.self))

        // A shard that changed size.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: shards + "/wiki_training_1.hdf5"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0]))
        try handle.close()
        #expect(refusal().hasPrefix("\(shards)/wiki_training_1.hdf5: "), "\(refusal())")
        #expect(refusal().contains("recorded"))
        try FileManager.default.removeItem(atPath: shards + "/wiki_training_1.hdf5")
        #expect(refusal().hasPrefix("\(shards)/wiki_training_1.hdf5: missing"), "\(refusal())")

        // A shard of an older, larger run beside the set.
        #expect(try prepare(in: dir).status == 0)
        try FileManager.default.copyItem(atPath: shards + "/wiki_training_0.hdf5", toPath: shards + "/wiki_training_7.hdf5")
        #expect(refusal().hasPrefix("\(shards)/wiki_training_7.hdf5: not in the set"), "\(refusal())")
    }

    @Test(.enabled(if: PrepareCommandTests.ready)) func moreShardsThanDocumentsIsRefusedBeforeWriting() throws {
        let dir = try temporaryDirectory("manifest-many")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try prepare(in: dir, extra: ["--num-shards", "200"])
        #expect(r.status != 0 && !r.signaled)
        #expect(r.err.contains("--num-shards 200 asks for more shards than the 10 training documents read"), "\(r.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/shards").filter { $0.hasSuffix(".hdf5") }.isEmpty)
    }

    @Test func onlyTheSetsOwnShardNamesBelongToIt() {
        #expect(ShardManifest.isShard("wiki_training_12.hdf5", of: "wiki"))
        #expect(ShardManifest.isShard("wiki_test_0.hdf5", of: "wiki"))
        #expect(!ShardManifest.isShard("wiki_v2_training_0.hdf5", of: "wiki"))
        #expect(!ShardManifest.isShard("wiki_training_.hdf5", of: "wiki"))
        #expect(!ShardManifest.isShard("other_training_0.hdf5", of: "wiki"))
    }
}
