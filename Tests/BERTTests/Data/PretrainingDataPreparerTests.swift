import Foundation
import Testing
@testable import BERT

/// The whole of `bert prepare` below the command line, on the pre-tokenized fixture text.
@Suite struct PretrainingDataPreparerTests {
    static func run(threads: Int, into dir: String, shards: Int = 3) throws -> PrepareSummary {
        let tokens = try ShardFixtures.referenceTokens()
        var options = PrepareOptions()
        options.inputs = [ShardFixtures.path("reference_input.txt")]
        options.format = .google
        options.outputDirectory = dir
        options.outputPrefix = "fixture"
        options.instance.maxSeqLength = 64
        options.instance.maxPredictionsPerSeq = 10
        options.instance.dupeFactor = 2
        options.trainingShards = shards
        options.evalFraction = 0.2
        options.threads = threads
        let preparer = PretrainingDataPreparer(options: options, vocabulary: ShardFixtures.maskingVocabulary(tokens),
                                               encode: ShardFixtures.encoder(tokens))
        return try preparer.prepare()
    }

    @Test func shardsDependOnTheSeedNotOnThreads() throws {
        let one = try ShardFixtures.temporaryDirectory("prep1"), two = try ShardFixtures.temporaryDirectory("prep2")
        defer { try? FileManager.default.removeItem(atPath: one); try? FileManager.default.removeItem(atPath: two) }
        let a = try Self.run(threads: 1, into: one)
        let b = try Self.run(threads: 2, into: two)
        #expect(a.documents == 38 && b.documents == 38)
        #expect(a.training == b.training && a.test == b.test)
        #expect(a.shardPaths.map { ($0 as NSString).lastPathComponent }
                == ["fixture_training_0.hdf5", "fixture_training_1.hdf5", "fixture_training_2.hdf5", "fixture_test_0.hdf5"])
        // Only the finished shards and their manifest are left: no temporary files.
        #expect(try FileManager.default.contentsOfDirectory(atPath: one).sorted()
                == (a.shardPaths.map { ($0 as NSString).lastPathComponent } + ["fixture_manifest.json"]).sorted())
        let vocabSize = try ShardFixtures.referenceTokens().count
        var rows = 0
        for (p, q) in zip(a.shardPaths, b.shardPaths) {
            let x = try readAndValidateShard(path: p, vocabSize: vocabSize)
            #expect(x == (try readAndValidateShard(path: q, vocabSize: vocabSize)))
            #expect(x.seqLength == 64 && x.maxPredictions == 10)
            rows += x.count
        }
        #expect(rows == a.training.instances + a.test.instances)
        #expect(a.test.instances > 0 && a.training.instances > 2 * a.test.instances)
        // The loader takes the training shards as they are.
        let loader = try PretrainingLoader(shardPaths: try PretrainingLoader.shardFiles(in: one), seed: 1, microBatchSize: 4)
        #expect(loader.samplesPerEpoch == a.training.instances && loader.seqLength == 64)
        _ = try loader.nextStep()
    }

    @Test func anotherShardCountGivesOtherShardsSameCorpus() throws {
        let dir = try ShardFixtures.temporaryDirectory("prep3")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try Self.run(threads: 2, into: dir, shards: 1)
        #expect(s.documents == 38 && s.shardPaths.count == 2)
        #expect(s.training.instances > 0)
    }
}
