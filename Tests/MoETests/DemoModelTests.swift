import Foundation
import Testing
@testable import MoE

/// The embedded demo model (Models/demo-austen-moe.gguf): it loads, its greedy continuation of
/// the demo prompt is llama.cpp's, and its held-out perplexity agrees with llama.cpp's and stays
/// under the bound recorded at training time.
@Suite("Demo model")
struct DemoModelTests {
    static let models = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Models")
    static let path = models.appendingPathComponent("demo-austen-moe.gguf").path
    nonisolated(unsafe) static let reference = try! JSONSerialization.jsonObject(
        with: Data(contentsOf: models.appendingPathComponent("demo-austen-moe.reference.json"))) as! [String: Any]

    @Test("the model is the promised size and shape")
    func shape() throws {
        let size = try FileManager.default.attributesOfItem(atPath: Self.path)[.size] as! Int
        #expect(size < 20_000_000)
        let model = try Model(path: Self.path)
        #expect(model.spec.name == "qwen3moe")
        #expect(model.config.experts == 16 && model.config.expertsUsed == 2 && model.config.layers == 6)
        #expect(try model.tokenizer().vocabulary.count == 4096)
    }

    @Test("the demo prompt tokenizes as llama.cpp does and its greedy continuation is llama.cpp's")
    func greedyContinuation() throws {
        let model = try Model(path: Self.path)
        let prompt = Self.reference["prompt"] as! String
        let tokens = try model.tokenizer().encode(prompt)
        #expect(tokens.map(Int.init) == Self.reference["prompt_tokens"] as! [Int])
        let greedy = (Self.reference["greedy"] as! [Int]).map(Int32.init)
        var options = GenerationOptions()
        options.sampling = .greedy
        options.maxTokens = greedy.count
        options.stopAtEndOfGeneration = false
        let result = try model.makeSession(contextLength: 256, threads: 2).generate(tokens: tokens, options: options) { _ in true }
        #expect(result.generatedTokens == greedy)
    }

    @Test("held-out perplexity agrees with llama.cpp's and is under the recorded bound")
    func perplexity() throws {
        let model = try Model(path: Self.path)
        let tokens = (Self.reference["heldout_tokens"] as! [Int]).map(Int32.init)
        let heldout = try String(contentsOf: Self.models.appendingPathComponent("demo-austen-moe.heldout.txt"), encoding: .utf8)
        #expect(Array(try model.tokenizer().encode(heldout, addSpecial: false).prefix(tokens.count)) == tokens)
        let ours = try model.perplexity(of: tokens, window: Self.reference["window"] as! Int, threads: 2)
        let llama = Self.reference["perplexity_llama_cpp"] as! Double
        print("demo perplexity: swift-moe \(ours.perplexity), llama.cpp \(llama)")
        #expect(ours.scored == Self.reference["heldout_scored"] as! Int)
        #expect(abs(ours.perplexity - llama) / llama < 0.005, "ours \(ours.perplexity), llama.cpp \(llama)")
        #expect(ours.perplexity <= Self.reference["perplexity_bound"] as! Double)
    }
}
