import Foundation
import Testing
@testable import MoE

/// Chat formats render exactly the text llama.cpp builds for the same messages.
@Suite("Chat templates")
struct ChatTemplateTests {
    nonisolated(unsafe) static let fixture = Fixtures.json("text/chat-templates.json") as! [String: Any]
    nonisolated(unsafe) static let cases = fixture["cases"] as! [[String: Any]]

    @Test("every format renders llama.cpp's text for the recorded conversations")
    func renderedTextMatches() throws {
        #expect(Self.cases.count >= 80)
        for c in Self.cases {
            let name = c["format"] as! String
            let format = try #require(ChatTemplate.detect(name), "\(name) is not a format name")
            let messages = (c["messages"] as! [[String]]).map { ChatMessage(role: $0[0], content: $0[1]) }
            let text = format.render(messages, addAssistant: c["add_assistant"] as! Bool, eos: c["eos"] as? String ?? "</s>")
            #expect(text == c["text"] as! String, "\(name) add_assistant=\(c["add_assistant"]!)")
        }
    }

    @Test("formats are recognised from template text")
    func detection() {
        #expect(ChatTemplate.detect(Self.fixture["tulu_template"] as! String) == .tulu)
        #expect(ChatTemplate.detect("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>{% endfor %}") == .chatml)
        #expect(ChatTemplate.detect("{{ '<|start_header_id|>' + role + '<|end_header_id|>\n\n' }}") == .llama3)
        #expect(ChatTemplate.detect("{{ bos_token }}{% for m in messages %}{{ '[INST] ' + m['content'] + ' [/INST]' }}{% endfor %}") == nil)
        #expect(ChatTemplate.detect("{{ ' [INST] ' + system_message }}") == .mistralV1)
        #expect(ChatTemplate.detect("[SYSTEM_PROMPT] [INST]") == .mistralV7)
        #expect(ChatTemplate.detect("<<SYS>> [INST]") == .llama2)
        #expect(ChatTemplate.detect("<|user|> <|assistant|> <|end|>") == .phi3)
        #expect(ChatTemplate.detect("'Assistant: ' + message['content'] + eos_token") == .deepseek2)
        #expect(ChatTemplate.detect("<｜User｜><｜Assistant｜><｜end▁of▁sentence｜>") == .deepseek3)
        #expect(ChatTemplate.detect("<start_of_turn>") == .gemma)
        #expect(ChatTemplate.detect("{{ message }}") == nil)
    }

    @Test("an unknown or missing template is a clear error naming the --chat-template choices")
    func unknownTemplate() throws {
        let vocabulary = try Vocabulary(file: GGUFFile(path: Fixtures.path("models/tiny-mixtral-q4_0.gguf")))
        #expect(throws: MoEError.self) { try ChatTemplate.resolve(name: nil, vocabulary: vocabulary) }
        do {
            _ = try ChatTemplate.resolve(name: "nope", vocabulary: vocabulary)
        } catch {
            #expect(error.code == .invalidArgument && error.message.contains("chatml"))
        }
        #expect(try ChatTemplate.resolve(name: "zephyr", vocabulary: vocabulary) == .zephyr)
    }
}

/// The sampler's stages give the distributions they promise (checked with a fixed seed).
@Suite("Sampler")
struct SamplerTests {
    static let logits: [Float] = [log(0.5), log(0.3), log(0.15), log(0.05)]

    func frequencies(_ options: SamplingOptions, draws: Int = 20000) throws -> [Double] {
        var sampler = try Sampler(options)
        var counts = [Int](repeating: 0, count: Self.logits.count)
        for _ in 0..<draws { counts[Int(sampler.sample(Self.logits))] += 1 }
        return counts.map { Double($0) / Double(draws) }
    }

    func plain() -> SamplingOptions {
        var o = SamplingOptions()
        o.temperature = 1; o.topK = 0; o.topP = 1; o.minP = 0; o.seed = 42
        return o
    }

    @Test("temperature 1 with no truncation draws from the softmax")
    func softmaxDistribution() throws {
        let f = try frequencies(plain())
        for (got, want) in zip(f, [0.5, 0.3, 0.15, 0.05]) { #expect(abs(got - want) < 0.015, "\(f)") }
    }

    @Test("top-k, top-p and min-p cut the tail and renormalise")
    func truncation() throws {
        var o = plain(); o.topK = 2
        var f = try frequencies(o)
        #expect(f[2] == 0 && f[3] == 0 && abs(f[0] - 0.625) < 0.015)
        o = plain(); o.topP = 0.7
        f = try frequencies(o)
        #expect(f[2] == 0 && f[3] == 0 && abs(f[0] - 0.625) < 0.015)
        o = plain(); o.minP = 0.2  // threshold 0.1: drops only the 0.05 token
        f = try frequencies(o)
        #expect(f[3] == 0 && abs(f[0] - 0.5 / 0.95) < 0.015)
    }

    @Test("low temperature sharpens, temperature 0 is greedy")
    func temperature() throws {
        var o = plain(); o.temperature = 0.25
        let f = try frequencies(o)
        #expect(f[0] > 0.85)
        var greedy = try Sampler(.greedy)
        #expect((0..<100).allSatisfy { _ in greedy.sample(Self.logits) == 0 })
    }

    @Test("the same seed gives the same tokens; another seed other tokens")
    func seeds() throws {
        func run(_ seed: UInt64) throws -> [Int32] {
            var o = plain(); o.seed = seed
            var s = try Sampler(o)
            return (0..<64).map { _ in s.sample(Self.logits) }
        }
        #expect(try run(7) == run(7))
        #expect(try run(7) != run(8))
    }

    @Test("repetition, frequency and presence penalties push recent tokens down")
    func penalties() throws {
        var o = SamplingOptions.greedy
        o.repetitionPenalty = 10
        var s = try Sampler(o)
        #expect(s.sample(Self.logits) == 0)
        s.accept(0)
        #expect(s.sample(Self.logits) == 1)
        o = .greedy; o.presencePenalty = 1
        s = try Sampler(o)
        s.accept(0)
        #expect(s.sample(Self.logits) == 1)  // log .5 - 1 < log .3
        o = .greedy; o.frequencyPenalty = 0.3
        s = try Sampler(o)
        s.accept(0)
        #expect(s.sample(Self.logits) == 0)  // one use: log .5 - .3 > log .3
        s.accept(0)
        #expect(s.sample(Self.logits) == 1)  // two uses: log .5 - .6 < log .3
    }

    @Test("the bounded-heap top-k equals sorting everything and cutting, ties included")
    func topKSelection() {
        var rng = SeededGenerator(seed: 3)
        let all: [(id: Int32, logit: Float)] = (0..<5000).map { (Int32($0), Float(rng.next() % 64) / 8) }  // many ties
        for k in [1, 2, 40, 999, 4999] {
            let heap = Sampler.best(all, k: k)
            let sorted = Array(all.sorted(by: Sampler.before).prefix(k))
            #expect(heap.map(\.id) == sorted.map(\.id), "k = \(k)")
        }
    }

    @Test("options out of range are refused")
    func validation() {
        var o = SamplingOptions(); o.topP = 0
        #expect(throws: MoEError.self) { try Sampler(o) }
        o = SamplingOptions(); o.topK = -1
        #expect(throws: MoEError.self) { try Sampler(o) }
        o = SamplingOptions(); o.temperature = .nan
        #expect(throws: MoEError.self) { try Sampler(o) }
    }
}

/// Streaming text: whole characters only, stop strings found across pieces.
@Suite("Streaming text")
struct StreamingTests {
    @Test("a character split across tokens is held until complete")
    func utf8Boundaries() {
        let emoji = Array("🦙".utf8)  // 4 bytes
        #expect(TextStreamer.completePrefix(Array(emoji[0..<1])) == 0)
        #expect(TextStreamer.completePrefix(Array(emoji[0..<3])) == 0)
        #expect(TextStreamer.completePrefix(emoji) == 4)
        #expect(TextStreamer.completePrefix(Array("ab".utf8) + emoji[0..<2]) == 2)
        #expect(TextStreamer.completePrefix([0xFF, 0x41]) == 2)  // invalid bytes are released at once
    }

    @Test("stop strings are found across pieces and never printed")
    func stopStrings() {
        var m = StopMatcher(["</end>", "STOP"])
        var out = ""
        for piece in ["Hello </", "en", "d> more"] {
            let (text, hit) = m.push(piece)
            out += text
            if hit { break }
        }
        #expect(out == "Hello ")
        var n = StopMatcher(["STOP"])
        #expect(n.push("ST").0 == "")
        #expect(n.push("x").0 == "STx")
        #expect(n.finish("ST") == "ST")
    }
}

/// Generation on a fixture model: llama.cpp's greedy tokens, and text equal to their decoding.
@Suite("Generation")
struct GenerationTests {
    nonisolated(unsafe) static let references = Fixtures.json("forward/references.json") as! [String: Any]

    @Test("greedy generation gives llama.cpp's continuation, and the streamed text is its decoding",
          arguments: ["qwen3moe-q8_0.gguf", "llama-q4_0.gguf", "olmoe-q4_k_m.gguf"])
    func greedyGeneration(file: String) throws {
        let models = Self.references["models"] as! [[String: Any]]
        let ref = try #require(models.first { $0["file"] as! String == file })
        let prompt = (Self.references["prompt"] as! [Int]).map(Int32.init)
        let greedy = (ref["greedy"] as! [Int]).map(Int32.init)
        let model = try Model(path: Fixtures.path("forward/" + file))
        let session = try model.makeSession(contextLength: 64, threads: 2)
        var options = GenerationOptions()
        options.sampling = .greedy
        options.maxTokens = greedy.count
        options.stopAtEndOfGeneration = false
        var streamed = ""
        let result = try session.generate(tokens: prompt, options: options) { streamed += $0; return true }
        #expect(result.generatedTokens == greedy)
        #expect(result.stopReason == .maxTokens)
        #expect(streamed == result.text)
        #expect(Array(streamed.utf8) == Array(try model.tokenizer().decode(greedy).utf8))
    }

    @Test("the async stream yields the same text and stops when the consumer stops")
    func asyncStream() async throws {
        let model = try Model(path: Fixtures.path("models/tiny-qwen3moe-q8_0.gguf"))
        var options = GenerationOptions()
        options.sampling = .greedy
        options.maxTokens = 16
        options.stopAtEndOfGeneration = false
        let direct = try model.makeSession(contextLength: 64, threads: 1).generate("Hello", options: options) { _ in true }.text
        var streamed = ""
        for try await piece in try model.makeSession(contextLength: 64, threads: 1).generate("Hello", options: options) {
            streamed += piece
        }
        #expect(streamed == direct)
        var pieces = 0
        for try await _ in try model.makeSession(contextLength: 64, threads: 1).generate("Hello", options: options) {
            pieces += 1
            break
        }
        #expect(pieces == 1)
    }

    @Test("a callback returning false stops generation; a too-long prompt is refused")
    func stopping() throws {
        let model = try Model(path: Fixtures.path("models/tiny-qwen3moe-q8_0.gguf"))
        let session = try model.makeSession(contextLength: 16, threads: 1)
        var options = GenerationOptions()
        options.sampling = .greedy
        options.stopAtEndOfGeneration = false
        let r = try session.generate("Hi", options: options) { _ in false }
        #expect(r.stopReason == .cancelled)
        session.reset()
        #expect(throws: MoEError.self) { try session.generate(String(repeating: "x", count: 40), options: options) { _ in true } }
        options.maxTokens = 100
        session.reset()
        #expect(try session.generate("Hi", options: options) { _ in true }.stopReason == .contextFull)
    }
}
