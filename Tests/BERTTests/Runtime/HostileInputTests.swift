import Foundation
import Testing
@testable import BERT

/// Sizes and inputs from outside that used to trap or give a wrong result with exit 0: each now ends in one clear
/// error, and no half-written output is left under a final name.
@Suite struct HostileInputTests {
    /// A safetensors file of `header` (as the JSON text after the 8-byte length) and `payload` bytes of data.
    func safetensors(length: UInt64? = nil, header: String, payload: Int = 0) throws -> String {
        let path = try temporaryDirectory("hostile") + "/model.safetensors"
        var size = (length ?? UInt64(header.utf8.count)).littleEndian
        var data = Data(bytes: &size, count: 8)
        data.append(Data(header.utf8))
        data.append(Data(count: payload))
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func safetensorsSizesThatOverflowAreErrors() throws {
        let cases: [(UInt64?, String, String)] = [
            (1 << 63, "{}", "header length 9223372036854775808 exceeds the file"),
            (UInt64.max, "{}", "header length 18446744073709551615 exceeds the file"),
            (nil, #"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}"#, #"tensor "w" has shape"#),
            (nil, #"{"w":{"dtype":"F64","shape":[1152921504606846976,2],"data_offsets":[0,16]}}"#, #"tensor "w" has shape"#),
            (nil, #"{"w":{"dtype":"F32","shape":[-2,-2],"data_offsets":[0,16]}}"#, #"tensor "w" has shape"#),
            (nil, #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, "does not fit"),
        ]
        for (length, header, message) in cases {
            let path = try safetensors(length: length, header: header, payload: 16)
            defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
            #expect {
                _ = try Safetensors.File(path: path)
            } throws: { error in
                "\(error)".contains(path) && "\(error)".contains(message)
            }
        }
    }

    @Test func configSizesBeyondMemoryAreErrors() throws {
        let dir = try temporaryDirectory("hostile-config")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (key, value) in [("vocab_size", "4611686018427387904"), ("hidden_size", "3037000500"), ("num_hidden_layers", "9223372036854775807"),
                             ("intermediate_size", "9223372036854775807"), ("max_position_embeddings", "9223372036854775807")] {
            var fields = ["\"vocab_size\": 100", "\"hidden_size\": 32", "\"num_hidden_layers\": 2", "\"num_attention_heads\": 2",
                          "\"intermediate_size\": 64", "\"max_position_embeddings\": 64", "\"type_vocab_size\": 2"]
            fields = fields.map { $0.hasPrefix("\"\(key)\"") ? "\"\(key)\": \(value)" : $0 }
            try ("{" + fields.joined(separator: ", ") + "}").write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
            #expect("\(key)", performing: { _ = try BertConfig.load(contentsOf: dir + "/config.json") }, throws: { error in
                "\(error)".contains("more than this machine's")
            })
        }
    }

    static let repeatedIds = #"""
    {"version": "1.1", "data": [{"title": "t", "paragraphs": [
      {"context": "Paris is the capital of France.", "qas": [
        {"id": "q1", "question": "What is the capital of France?", "answers": [{"text": "Paris", "answer_start": 0}]},
        {"id": "q1", "question": "Which country is Paris the capital of?", "answers": [{"text": "France", "answer_start": 24}]}]}]}]}
    """#

    @Test func aRepeatedQuestionIdIsRefusedForPrediction() throws {
        let dataset = try SQuADDataset(data: Data(Self.repeatedIds.utf8), source: "dup.json")
        #expect(throws: BertError.invalidInput(#"squad dup.json: question id "q1" appears more than once; each question needs its own id"#)) {
            _ = try dataset.examples(training: false)
        }
        #expect(try dataset.examples(training: true).examples.count == 2, "training has no use for the ids")
    }

    @Test func anEmptyAnswerIsNamedAsSuch() throws {
        let json = Self.repeatedIds.replacingOccurrences(of: #""text": "Paris""#, with: #""text": """#)
        let dataset = try SQuADDataset(data: Data(json.utf8), source: "empty.json")
        #expect(throws: BertError.invalidInput("squad empty.json: question q1: the answer text is empty")) {
            _ = try dataset.examples(training: true)
        }
    }

    /// When the second file cannot be placed, the first is taken back: both prediction files or neither.
    @Test func squadPredictionsAreWrittenBothOrNeither() throws {
        let dir = try temporaryDirectory("hostile-predictions")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let prediction = SQuADPrediction(id: "q1", nBest: [SQuADCandidate(text: "Paris", probability: 1, startLogit: 2, endLogit: 3)])
        try FileManager.default.createDirectory(atPath: dir + "/nbest_predictions.json", withIntermediateDirectories: false)
        #expect(throws: BertError.self) { try SQuADPostProcessor.write([prediction], to: dir) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["nbest_predictions.json"], "no predictions.json, no temporaries")
        try FileManager.default.removeItem(atPath: dir + "/nbest_predictions.json")
        try SQuADPostProcessor.write([prediction], to: dir)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["nbest_predictions.json", "predictions.json"])
    }

    /// Output that cannot be written (a full disk: /dev/full) fails the command instead of exiting 0 with nothing.
    @Test(.enabled(if: BertProgram.present && FileManager.default.fileExists(atPath: "/dev/full")))
    func aFailedWriteToStandardOutputFailsTheCommand() throws {
        let dir = try temporaryDirectory("hostile-stdout")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.repeatedIds.replacingOccurrences(of: #""id": "q1", "question": "Which"#, with: #""id": "q2", "question": "Which"#)
            .write(toFile: dir + "/dev.json", atomically: true, encoding: .utf8)
        try #"{"q1": "Paris", "q2": "France"}"#.write(toFile: dir + "/predictions.json", atomically: true, encoding: .utf8)
        let evaluate = [BertProgram.path, "evaluate", "squad", "--dataset", dir + "/dev.json", "--predictions", dir + "/predictions.json"]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "\"$@\" > /dev/full 2> \"\(dir)/err\"", "sh"] + evaluate
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 1)
        #expect(try String(contentsOfFile: dir + "/err", encoding: .utf8) == "bert: cannot write to standard output: No space left on device\n")
        #expect(try BertProgram.run(Array(evaluate.dropFirst())).out == "{\"exact_match\": 100.0, \"f1\": 100.0}\n")
    }

    /// Foundation's file errors reach the user as one line with the operation, the file and the cause.
    @Test(.enabled(if: BertProgram.present)) func fileSystemErrorsAreOneLineNamingTheFile() throws {
        let dir = try temporaryDirectory("hostile-fs")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        FileManager.default.createFile(atPath: dir + "/file", contents: Data("x".utf8))
        try "Some text for the corpus.\n".write(toFile: dir + "/corpus.txt", atomically: true, encoding: .utf8)
        let prepare = try BertProgram.run(["prepare", "--input", dir + "/corpus.txt", "--vocab-file", PrepareCommandTests.vocab,
                                           "--output-dir", dir + "/file/shards"])
        #expect(prepare.status != 0 && !prepare.signaled)
        #expect(prepare.err == "Error: cannot write \(dir)/file/shards: Not a directory\n")
    }

    @Test func aFractionalSizeIsNamed() throws {
        let dir = try temporaryDirectory("hostile-fraction")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #"{"vocab_size": 100, "hidden_size": 128.5, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}"#
            .write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        #expect(throws: BertError.invalidConfig("\(dir)/config.json is not a BERT config: \"hidden_size\": 128.5 is not a whole number")) {
            _ = try BertConfig.load(contentsOf: dir + "/config.json")
        }
    }

    /// A question-answering model given to `predict mrpc` is named as such, not as a list of missing pooler tensors.
    @Test(.enabled(if: BertProgram.present)) func aCheckpointOfAnotherTaskIsNamed() throws {
        let dir = try temporaryDirectory("hostile-task")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: fixture("heads/qa"), toPath: dir + "/qa")
        try "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tA b.\tA c.\n".write(toFile: dir + "/dev.tsv", atomically: true, encoding: .utf8)
        let r = try BertProgram.run(["predict", "mrpc", "--checkpoint", dir + "/qa", "--predict-file", dir + "/dev.tsv",
                                     "--output", dir + "/out.tsv", "--set", "dev"])
        #expect(r.status != 0 && !r.signaled)
        #expect(r.err.hasPrefix("Error: \(dir)/qa (a BertForQuestionAnswering checkpoint) has no mrpc head (bert.pooler.dense.weight, "
                                + "bert.pooler.dense.bias, classifier.weight, classifier.bias)"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.tsv"))
    }

    @Test func aDirectoryNamedLikeAShardIsNamedAsSuch() throws {
        let dir = try temporaryDirectory("hostile-shard-dir")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/x_training_0.hdf5", withIntermediateDirectories: false)
        #expect(throws: ShardError("\(dir)/x_training_0.hdf5: a directory, not a shard file; move it out of --input-dir")) {
            _ = try readAndValidateShard(path: dir + "/x_training_0.hdf5", vocabSize: 100)
        }
    }
}
