import Foundation
import Testing
@testable import MoE

/// One model shared by several sessions on several threads.
@Suite("Concurrency")
struct ConcurrencyTests {
    @Test("4 sessions generating on 4 threads from one model give each the tokens it gives alone")
    func sharedModel() throws {
        let model = try Model(path: Fixtures.path("forward/qwen3moe-q8_0.gguf"))
        let prompts = ["Hello", "world, again", "MoE!", "abc def ghi"]
        var o = GenerationOptions()
        o.maxTokens = 24
        o.stopAtEndOfGeneration = false
        o.sampling.seed = 9  // sampled, not greedy: the RNG state is per session too
        let options = o
        @Sendable func generate(_ prompt: String) throws -> [Int32] {
            try model.makeSession(contextLength: 64, threads: 2).generate(prompt, options: options) { _ in true }.generatedTokens
        }
        let alone = try prompts.map(generate)
        let together = Locked<[Int: [Int32]]>([:])  // not Mutex: ThreadSanitizer cannot see its futex (Locked.swift)
        let failures = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            do {
                let tokens = try generate(prompts[i])
                together.withLock { $0[i] = tokens }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        for i in 0..<4 { #expect(together.withLock { $0[i] } == alone[i], "session \(i)") }
    }
}

/// Requests that would need more memory than the machine has are refused before allocating.
@Suite("Resource limits")
struct ResourceLimitTests {
    /// Only meaningful where physical memory is known and below the 64 GiB KV limit.
    static let applies = Session.physicalMemory > 0 && Session.physicalMemory < 64 << 30

    @Test("a context whose KV cache exceeds physical memory is refused, naming the machine's memory", .enabled(if: applies))
    func contextBeyondMemory() throws {
        let model = try Model(path: Fixtures.path("models/tiny-qwen3moe-q8_0.gguf"))
        let c = model.config
        let perToken = c.layers * c.kvHeads * (c.headDimension + c.valueDimension) * 2
        let physical = Session.physicalMemory
        let context = physical / perToken + 1
        do {
            _ = try model.makeSession(contextLength: context, threads: 1)
            Issue.record("a \(context)-token context was accepted")
        } catch {
            #expect(error.code == .outOfMemory && error.message.contains("machine"))
        }
    }
}
