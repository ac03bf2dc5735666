import Testing
@testable import MoE

/// `moe info`'s numbers, worked out by hand from each fixture's geometry (see tools/make_tiny_models.py).
@Suite("Model summary")
struct ModelSummaryTests {
    @Test("qwen3moe: hyperparameters, routed bytes and the per-token active set")
    func qwen3moe() throws {
        let s = ModelSummary(file: try GGUFFile(path: Fixtures.path("models/tiny-qwen3moe-q8_0.gguf")))
        #expect(s.architecture == "qwen3moe" && s.name == "tiny-qwen3moe")
        #expect(s.layers == 2 && s.embeddingLength == 64 && s.headCount == 4 && s.headCountKV == 2 && s.headDimension == 16)
        #expect(s.expertCount == 8 && s.expertUsedCount == 2 && s.expertFeedForwardLength == 32 && s.sharedExpertCount == nil)
        #expect(s.tokenizerModel == "gpt2" && s.vocabularySize == 259 && s.hasChatTemplate)
        #expect(s.ropeFreqBase == 1_000_000)
        // Q8_0 is 34 bytes per 32 weights.
        func q8(_ n: Int) -> Int { n / 32 * 34 }
        let embedding = q8(259 * 64), output = q8(259 * 64)
        let attention = q8(64 * 64) + q8(32 * 64) * 2 + q8(64 * 64)
        let expertsPerLayer = 3 * q8(8 * 32 * 64)
        let norms = 64 * 4 + 2 * (64 + 16 + 16 + 64 + 8 * 64) * 4  // output norm; per layer: 2 norms, q/k norms, router
        #expect(s.routedExpertBytes == 2 * expertsPerLayer)
        #expect(s.tensorBytes == embedding + output + 2 * attention + 2 * expertsPerLayer + norms)
        // One token: everything but experts and the embedding table, one embedding row, 2 of 8 experts.
        #expect(s.activeBytesPerToken == output + 2 * attention + norms + q8(64) + 2 * expertsPerLayer * 2 / 8)
        // A step reads each routed expert it ran once: k per layer is one token, all of them the
        // whole file less the embedding rows no token used.
        #expect(s.routedExpertLayers == 2 && s.bytesPerRoutedExpert == Double(expertsPerLayer) / 8)
        #expect(s.bytesPerStep(expertsPerLayer: 2) == Double(s.activeBytesPerToken))
        #expect(s.bytesPerStep(expertsPerLayer: 8) == Double(s.tensorBytes - embedding + q8(64)))
        #expect(s.types.map(\.type) == [.q8_0, .f32])
        #expect(s.types[0].tensors == 16 && s.types[1].tensors == 11)
    }

    @Test("Mixtral-style llama with a tied output head reads the whole embedding table per token")
    func tiedMixtral() throws {
        let s = ModelSummary(file: try GGUFFile(path: Fixtures.path("models/tiny-mixtral-q4_0.gguf")))
        #expect(s.architecture == "llama" && s.expertCount == 4 && s.expertUsedCount == 2)
        #expect(s.expertFeedForwardLength == 64, "taken from the expert tensors' shape when the key is absent")
        func q4(_ n: Int) -> Int { n / 32 * 18 }
        let embedding = q4(258 * 64)
        let attention = q4(64 * 64) * 2 + q4(32 * 64) * 2
        let expertsPerLayer = 3 * q4(4 * 64 * 64)
        let norms = 64 * 4 + 2 * (64 + 64 + 4 * 64) * 4
        #expect(s.tensorBytes == embedding + 2 * attention + 2 * expertsPerLayer + norms)
        #expect(s.activeBytesPerToken == embedding + 2 * attention + norms + 2 * expertsPerLayer / 2)
    }

    @Test("a dense model has no routed bytes and every byte is active")
    func dense() throws {
        var w = GGUFWriter(architecture: "llama")
        w.set("llama.block_count", .uint32(1))
        try w.addTensor("token_embd.weight", type: .f32, shape: [4, 10], data: .zeros)
        try w.addTensor("output.weight", type: .f32, shape: [4, 10], data: .zeros)
        try w.addTensor("blk.0.ffn_up.weight", type: .f32, shape: [4, 8], data: .zeros)
        let s = ModelSummary(file: try GGUFFile(path: Fixtures.write(try w.serialized())))
        #expect(s.routedExpertBytes == 0 && s.expertCount == nil && s.routedExpertLayers == 0)
        #expect(s.bytesPerStep(expertsPerLayer: 0) == Double(s.activeBytesPerToken))
        #expect(s.activeBytesPerToken == 16 + 160 + 128)
    }

    @Test("the JSON form carries the same numbers and is valid JSON")
    func json() throws {
        let s = ModelSummary(file: try GGUFFile(path: Fixtures.path("models/tiny-qwen3moe-q8_0.gguf")))
        let text = s.json.serialized(indent: 2)
        #expect(text.contains("\"routed_experts\": \(s.routedExpertBytes)"))
        #expect(text.contains("\"expert_shared_count\": null"))
        #expect(JSONValue.object([("s", "a\"b\\\n\u{1}")]).serialized() == #"{"s":"a\"b\\\n\u0001"}"#)
        #expect(JSONValue.array([.double(.nan), .double(0.5), .int(3)]).serialized() == "[null,0.5,3]")
    }
}
