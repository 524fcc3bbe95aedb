import Foundation
import Testing
@testable import BERT

@Suite struct ConfigTests {
    @Test func decodesGoogleAndHuggingFaceKeys() throws {
        // Google's bert_config.json has no layer_norm_eps; HF's config.json carries extra keys.
        let google = #"{"attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072, "max_position_embeddings": 512, "num_attention_heads": 12, "num_hidden_layers": 12, "type_vocab_size": 2, "vocab_size": 30522}"#
        let config = try JSONDecoder().decode(BertConfig.self, from: Data(google.utf8))
        #expect(config == (try BertConfig.preset("bert-base")))
        #expect(config.layerNormEps == 1e-12)
        #expect(try config.activation() == .geluErf)
        var tanh = config
        for name in ["gelu_new", "gelu_pytorch_tanh"] { tanh.hiddenAct = name; #expect(try tanh.activation() == .geluTanh) }
    }

    @Test func roundTripsThroughConfigJSON() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bert-config-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in BertConfig.presets.keys {
            let config = try BertConfig.preset(name)
            try config.write(to: dir + "/config.json")
            #expect(try BertConfig.load(contentsOf: dir + "/config.json") == config)
        }
    }

    @Test func presetsHaveThePublishedShapes() throws {
        let shapes = ["bert-tiny": [2, 128, 2], "bert-mini": [4, 256, 4], "bert-small": [4, 512, 8], "bert-medium": [8, 512, 8],
                      "bert-base": [12, 768, 12], "bert-large": [24, 1024, 16], "bert-1.5b": [48, 1600, 25], "bert-5b": [63, 2560, 40]]
        for (name, shape) in shapes {
            let c = try BertConfig.preset(name)
            #expect([c.numHiddenLayers, c.hiddenSize, c.numAttentionHeads] == shape)
        }
        #expect(try BertConfig.preset("bert-1.5b").intermediateSize == 6400)
        #expect(try BertConfig.preset("bert-5b").intermediateSize == 10240)
        #expect(throws: BertError.self) { try BertConfig.preset("bert-huge") }
    }

    @Test func rejectsBadConfigsByKey() throws {
        var c = try BertConfig.preset("bert-tiny")
        c.numAttentionHeads = 3
        #expect(throws: BertError.invalidConfig("hidden_size 128 is not a multiple of num_attention_heads 3")) { try c.validate() }
        c = try BertConfig.preset("bert-tiny")
        c.hiddenAct = "swish"
        #expect(throws: BertError.self) { try c.validate() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bert-badconfig-\(UUID()).json").path
        try Data(#"{"hidden_size": 64"#.utf8).write(to: URL(fileURLWithPath: dir))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do { _ = try BertConfig.load(contentsOf: dir); Issue.record("malformed JSON loaded") } catch {
            #expect("\(error)".contains(dir) && "\(error)".contains("is not a BERT config"))
        }
    }
}
