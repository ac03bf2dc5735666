import Foundation
import Testing
@testable import MoE

/// The forward pass against llama.cpp on the same files (references recorded by
/// tools/make_forward_fixtures.py with llama-cpp-python).
@Suite("Forward pass vs llama.cpp")
struct ForwardPassTests {
    struct Reference: Sendable, CustomTestStringConvertible {
        let file: String
        let weights: String
        let greedy: [Int32]
        let ropeScaling: String?
        var testDescription: String { file }
        /// The tolerance the issue sets: max |ours - llama.cpp| / std(llama.cpp) per position.
        var tolerance: Float { weights == "F16" || weights == "Q8_0" ? 0.01 : 0.03 }
    }

    nonisolated(unsafe) static let index = Fixtures.json("forward/references.json") as! [String: Any]
    static let prompt = (index["prompt"] as! [Int]).map(Int32.init)
    static let references: [Reference] = (index["models"] as! [[String: Any]]).map {
        Reference(file: $0["file"] as! String, weights: $0["weights"] as! String, greedy: ($0["greedy"] as! [Int]).map(Int32.init),
                  ropeScaling: $0["rope_scaling"] as? String)
    }

    static func expectedLogits(_ r: Reference, vocabulary: Int) throws -> [Float] {
        let data = try Data(contentsOf: Fixtures.root.appendingPathComponent("forward/" + r.file.replacingOccurrences(of: ".gguf", with: ".logits.f32")))
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    static func argmax(_ v: ArraySlice<Float>) -> Int32 {
        var best = v.startIndex
        for i in v.indices where v[i] > v[best] { best = i }
        return Int32(best - v.startIndex)
    }

    @Test("logits at every prompt position match llama.cpp within tolerance", arguments: references)
    func promptLogits(_ r: Reference) throws {
        let model = try Model(path: Fixtures.path("forward/" + r.file))
        let n = model.config.vocabulary
        let expected = try Self.expectedLogits(r, vocabulary: n)
        let ours = try model.makeSession(contextLength: 64).evaluate(Self.prompt, logits: .all)
        #expect(ours.count == expected.count)
        for p in 0..<Self.prompt.count {
            let ref = expected[(p * n)..<((p + 1) * n)], got = ours[(p * n)..<((p + 1) * n)]
            let mean = ref.reduce(0, +) / Float(n)
            let std = (ref.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(n)).squareRoot()
            let worst = zip(ref, got).map { abs($0 - $1) }.max()!
            #expect(worst / std <= r.tolerance, "\(r.file) position \(p): max error \(worst / std) std")
        }
    }

    @Test("the 32-token greedy continuation is llama.cpp's", arguments: references)
    func greedyContinuation(_ r: Reference) throws {
        let model = try Model(path: Fixtures.path("forward/" + r.file))
        let session = try model.makeSession(contextLength: 64)
        var logits = try session.evaluate(Self.prompt)
        var tokens: [Int32] = []
        for _ in 0..<r.greedy.count {
            let next = Self.argmax(logits[...])
            tokens.append(next)
            logits = try session.evaluate([next])
        }
        #expect(tokens == r.greedy)
    }

    @Test("every architecture and weight type is covered by a reference")
    func coverage() {
        let archs = Set(Self.references.map { String($0.file.split(separator: "-")[0]) })
        #expect(archs == ["qwen3moe", "mixtral", "olmoe", "qwen2moe", "llama", "qwen3"])
        #expect(Set(Self.references.map(\.weights)) == ["F16", "Q8_0", "Q4_0", "Q4_K_M"])
        #expect(Set(Self.references.compactMap(\.ropeScaling)) == ["linear", "yarn"])
    }
}

/// Sessions: batching, independence, reset and truncation, and errors that leave state intact.
@Suite("Sessions")
struct SessionTests {
    static let path = Fixtures.path("forward/qwen3moe-q8_0.gguf")
    let model: Model
    init() throws { model = try Model(path: Self.path) }

    @Test("a prompt in one call gives the same logits as one token at a time")
    func batchEqualsSteps() throws {
        let all = try model.makeSession(contextLength: 32).evaluate(ForwardPassTests.prompt, logits: .all)
        let stepper = try model.makeSession(contextLength: 32)
        var stepped: [Float] = []
        for t in ForwardPassTests.prompt { stepped += try stepper.evaluate([t]) }
        #expect(all == stepped)
    }

    @Test("a prompt longer than one step gives the logits of the same tokens in short calls, and a session's buffers grow for it")
    func promptLongerThanOneStep() throws {
        let count = Model.promptStep + 45
        let prompt = (0..<count).map { Int32(($0 * 7919 + 11) % model.config.vocabulary) }
        let whole = try model.makeSession(contextLength: count).evaluate(prompt, logits: .all)
        // A session whose buffers were made for a short prompt first, then the rest at once.
        let growing = try model.makeSession(contextLength: count)
        var parts = try growing.evaluate(Array(prompt[..<10]), logits: .all)
        parts += try growing.evaluate(Array(prompt[10...]), logits: .all)
        let grownSame = parts == whole  // (a Bool, so a failure does not print 300 rows of logits)
        #expect(grownSame, "10 tokens, then \(count - 10) at once")
        // Calls shorter than a step.
        let short = try model.makeSession(contextLength: count)
        var pieces: [Float] = []
        for first in stride(from: 0, to: count, by: 40) { pieces += try short.evaluate(Array(prompt[first..<min(first + 40, count)]), logits: .all) }
        let shortSame = pieces == whole
        #expect(shortSame, "calls of 40 tokens")
    }

    @Test("truncate and reset forget tokens, and re-evaluation repeats the same logits")
    func truncateAndReset() throws {
        let s = try model.makeSession(contextLength: 32)
        let first = try s.evaluate([1, 2, 3, 4, 5])
        try s.truncate(to: 3)
        #expect(s.position == 3)
        #expect(try s.evaluate([4, 5]) == first)
        s.reset()
        #expect(try s.evaluate([1, 2, 3, 4, 5]) == first)
        #expect(throws: MoEError.self) { try s.truncate(to: 6) }
    }

    @Test("bad input is an error and evaluates nothing")
    func errors() throws {
        let s = try model.makeSession(contextLength: 4)
        _ = try s.evaluate([1, 2])
        for bad: [Int32] in [[], [-1], [Int32(model.config.vocabulary)], [1, 2, 3]] {
            do {
                _ = try s.evaluate(bad)
                Issue.record("\(bad) was accepted")
            } catch {
                #expect(error.code == .invalidArgument)
            }
            #expect(s.position == 2)
        }
        #expect(throws: MoEError.self) { try model.makeSession(contextLength: 0) }
        #expect(throws: MoEError.self) { try model.makeSession(contextLength: Int.max / 2) }
    }

    @Test("four sessions on four threads each get the tokens they get alone")
    func concurrentSessions() async throws {
        let model = self.model
        let prompts: [[Int32]] = [[256, 72, 101], [256, 119, 111, 114], [33, 33], [256, 10]]
        func greedy(_ prompt: [Int32]) throws -> [Int32] {
            let s = try model.makeSession(contextLength: 32)
            var logits = try s.evaluate(prompt), out: [Int32] = []
            for _ in 0..<8 {
                out.append(ForwardPassTests.argmax(logits[...]))
                logits = try s.evaluate([out.last!])
            }
            return out
        }
        let alone = try prompts.map(greedy)
        let together = try await withThrowingTaskGroup(of: (Int, [Int32]).self) { group in
            for (i, p) in prompts.enumerated() { group.addTask { (i, try greedy(p)) } }
            var results = [[Int32]](repeating: [], count: prompts.count)
            for try await (i, tokens) in group { results[i] = tokens }
            return results
        }
        #expect(together == alone)
    }
}

/// Loading: unsupported architectures and missing or misshapen tensors are named.
@Suite("Model loading")
struct ModelLoadingTests {
    func rewrite(_ source: String, architecture: String? = nil, dropping: String? = nil, reshaping: String? = nil,
                 setting: (key: String, value: GGUFValue)? = nil) throws -> String {
        let file = try GGUFFile(path: Fixtures.path(source))
        var w = GGUFWriter()
        for (k, v) in file.metadata.entries {
            w.set(k, k == "general.architecture" && architecture != nil ? .string(architecture!) : k == setting?.key ? setting!.value : v)
        }
        for t in file.tensors where t.name != dropping {
            if t.name == reshaping {
                try w.addTensor(t.name, type: t.type, shape: [t.shape[0] / 2, t.shape[1] * 2], data: .bytes(Array(file.view(t).bytes)))
            } else {
                try w.addTensor(t.name, type: t.type, shape: t.shape, data: .bytes(Array(file.view(t).bytes)))
            }
        }
        return Fixtures.write(try w.serialized())
    }

    @Test("an unsupported architecture is refused, naming it and what is supported")
    func unsupportedArchitecture() throws {
        let path = try rewrite("forward/llama-q8_0.gguf", architecture: "gpt2")
        do {
            _ = try Model(path: path)
            Issue.record("gpt2 was accepted")
        } catch {
            #expect(error.code == .unsupported)
            #expect(error.message.contains("'gpt2'") && error.message.contains("qwen3moe"))
        }
    }

    @Test("a missing tensor is named at load")
    func missingTensor() throws {
        let path = try rewrite("forward/qwen3moe-q8_0.gguf", dropping: "blk.1.ffn_down_exps.weight")
        do {
            _ = try Model(path: path)
            Issue.record("a model without blk.1.ffn_down_exps.weight loaded")
        } catch {
            #expect(error.code == .invalidFile)
            #expect(error.message.contains("'blk.1.ffn_down_exps.weight' is missing"))
        }
    }

    @Test("a tensor whose shape contradicts the metadata is named at load")
    func wrongShape() throws {
        let path = try rewrite("forward/llama-q8_0.gguf", reshaping: "blk.0.attn_q.weight")
        do {
            _ = try Model(path: path)
            Issue.record("a misshapen attn_q loaded")
        } catch {
            #expect(error.message.contains("'blk.0.attn_q.weight' has shape [32, 128], expected [64, 64]"))
        }
    }

    @Test("an MoE file's unused feed_forward_length does not size the session's buffers (the tensors do)")
    func inflatedDenseLength() throws {
        // A fuzzed file once declared ~700M here; the session's scratch asked for 8 GB.
        let path = try rewrite("forward/qwen3moe-q8_0.gguf", setting: ("qwen3moe.feed_forward_length", .uint32(1 << 20)))
        let model = try Model(path: path), reference = try Model(path: Fixtures.path("forward/qwen3moe-q8_0.gguf"))
        #expect(model.config.feedForward == 1 << 20)
        let session = try model.makeSession(contextLength: 8, threads: 1)
        #expect(session.state.hiddenSize == model.weights.widestInput)
        #expect(try session.evaluate([1, 17, 42]) == reference.makeSession(contextLength: 8, threads: 1).evaluate([1, 17, 42]))
    }

    @Test("a model with a tied output head uses the embedding table")
    func tiedHead() throws {
        let model = try Model(path: Fixtures.path("forward/mixtral-q8_0.gguf"))
        #expect(model.file.tensorInfo("output.weight") == nil)
        #expect(model.weights.output.base == model.weights.embedding.bytes.baseAddress)
    }
}
