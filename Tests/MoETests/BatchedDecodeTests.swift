import Testing
@testable import MoE

/// Several sessions decoding together (`Session.evaluate(together:tokens:)`), and the per-phase
/// timings every session keeps.
@Suite("Batched decode")
struct BatchedDecodeTests {
    /// Prompts of different lengths, so the sessions sit at different positions.
    static let prompts: [[Int32]] = [[1, 17, 42], [99, 3], [250, 7, 128, 64, 5], [200]]
    /// Tokens each session is fed, one per step.
    static let steps: [[Int32]] = [[31, 77, 12, 180], [9, 1, 17, 42], [99, 3, 250, 7], [128, 64, 5, 200]]

    /// Per session: the logits of each step, its expert counts and routing trace.
    struct Outcome: Equatable {
        var logits: [[Float]]
        var counts: [UInt64]
        var trace: [Int32]
        var weights: [Float]
    }

    static func alone(_ model: Model) throws -> [Outcome] {
        try prompts.indices.map { i in
            let session = try model.makeSession(contextLength: 16, threads: 2)
            session.recordsRouting = true
            _ = try session.evaluate(prompts[i])
            let logits = try steps[i].map { try session.evaluate([$0]) }
            return Outcome(logits: logits, counts: session.expertCounts, trace: session.routingTrace, weights: session.routingWeights)
        }
    }

    /// The first `count` prompts' sessions decoded together; the pass runs on `threads` threads
    /// (the first session's), overlapping the halves when `overlap` allows it.
    static func together(_ model: Model, count: Int = prompts.count, threads: Int = 2, overlap: Bool = true) throws -> [Outcome] {
        // Different thread counts and context lengths: the pass uses the first session's threads,
        // and scores must fit the longest context.
        let sessions = try (0..<count).map { i in try model.makeSession(contextLength: 16 + 8 * i, threads: i == 0 ? threads : 1) }
        for (i, session) in sessions.enumerated() {
            session.recordsRouting = true
            _ = try session.evaluate(prompts[i])
        }
        var logits = [[[Float]]](repeating: [], count: sessions.count)
        for step in 0..<steps[0].count {
            let out = try Session.evaluate(together: sessions, tokens: steps[..<count].map { $0[step] }, overlap: overlap)
            for i in sessions.indices { logits[i].append(out[i]) }
        }
        return sessions.indices.map { i in
            Outcome(logits: logits[i], counts: sessions[i].expertCounts, trace: sessions[i].routingTrace, weights: sessions[i].routingWeights)
        }
    }

    @Test("sessions decoded together get bit for bit what each gets alone: logits, expert counts, routing traces (halves overlapped or not)",
          arguments: ExpertStoreTests.moeFixtures + ["forward/llama-q8_0.gguf"])
    func matchesAlone(_ fixture: String) throws {
        let model = try Model(path: Fixtures.path(fixture))
        let reference = try Self.alone(model)
        #expect(try Self.together(model, overlap: true) == reference)
        #expect(try Self.together(model, overlap: false) == reference)
    }

    @Test("overlapped halves of uneven size, on 1, 2 and 3 threads, match decoding alone", arguments: [1, 2, 3])
    func unevenHalves(threads: Int) throws {
        let model = try Model(path: Fixtures.path("forward/qwen3moe-q4_k_m.gguf"))
        let reference = try Self.alone(model)
        #expect(try Self.together(model, count: 3, threads: threads) == Array(reference[..<3]))
        #expect(try Self.together(model, count: 2, threads: threads) == Array(reference[..<2]))
    }

    @Test("decoding together through an expert store of 2k slots matches decoding alone without one")
    func matchesAloneWithStore() throws {
        let path = Fixtures.path("forward/qwen3moe-q4_0.gguf")
        let reference = try Self.alone(try Model(path: path))
        let k = try Model(path: path).config.expertsUsed
        let stored = try Model(path: path, options: ModelOptions(expertStore: ExpertStoreOptions(budget: try ExpertStoreTests.budget(path, slots: 2 * k))))
        #expect(try Self.together(stored) == reference)
        #expect(stored.store!.pinnedSlots() == 0)
    }

    @Test("a bad batch is refused before anything is evaluated, with a reason")
    func refusals() throws {
        let path = Fixtures.path("forward/olmoe-q8_0.gguf")
        let model = try Model(path: path), other = try Model(path: path)
        let a = try model.makeSession(contextLength: 4, threads: 1), b = try model.makeSession(contextLength: 1, threads: 1)
        let stranger = try other.makeSession(contextLength: 4, threads: 1)
        func reason(_ sessions: [Session], _ tokens: [Int32]) -> String? {
            do { _ = try Session.evaluate(together: sessions, tokens: tokens); return nil } catch { return error.message }
        }
        #expect(reason([], [])?.contains("no sessions") == true)
        #expect(reason([a, b], [1])?.contains("one token per session") == true)
        #expect(reason([a, a], [1, 2])?.contains("twice") == true)
        #expect(reason([a, stranger], [1, 2])?.contains("different model") == true)
        #expect(reason([a, b], [1, -3])?.contains("outside the vocabulary") == true)
        #expect(reason(Array(repeating: a, count: Model.batchCapacity + 1), Array(repeating: 1, count: Model.batchCapacity + 1))?.contains("at most") == true)
        #expect(a.position == 0 && b.position == 0, "nothing was evaluated")
        _ = try Session.evaluate(together: [a, b], tokens: [1, 2])
        #expect(a.position == 1 && b.position == 1)
        #expect(reason([a, b], [3, 4])?.contains("session 1 is full") == true)
        #expect(a.position == 1)
    }

    @Test("timings: every phase is charged, they add up to the total, waiting is part of it, reset zeroes them")
    func timings() throws {
        let model = try Model(path: Fixtures.path("forward/qwen3moe-q8_0.gguf"))
        let session = try model.makeSession(contextLength: 16, threads: 2)
        #expect(session.timings == ForwardTimings())
        _ = try session.evaluate([1, 17, 42])
        _ = try session.evaluate([99])
        let t = session.timings
        #expect(t.tokens == 4)
        #expect(t.attention > 0 && t.router > 0 && t.experts > 0 && t.output > 0)
        #expect(t.total == t.attention + t.router + t.experts + t.output)
        #expect(t.waiting <= t.total)
        #expect(t.perToken(t.total) == Double(t.total) / 4)
        #expect(t.overlapped == 0 && t.wall == t.total, "one session alone overlaps nothing")
        session.resetTimings()
        #expect(session.timings == ForwardTimings())
    }

    @Test("a step counts each routed expert once however many of its tokens chose it; an overlapped step is two, one per half")
    func expertsRunPerStep() throws {
        let model = try Model(path: Fixtures.path("forward/qwen3moe-q8_0.gguf"))
        let c = model.config, k = c.expertsUsed
        /// Distinct experts per layer, summed over layers, of tokens `range` of each trace's last step.
        func distinct(_ traces: [[Int32]], tokens: (Int) -> Range<Int>) -> Int {
            (0..<c.layers).reduce(0) { sum, l in
                var ids = Set<Int32>()
                for (i, trace) in traces.enumerated() {
                    for t in tokens(i) { ids.formUnion(trace[(t * c.layers + l) * k..<(t * c.layers + l + 1) * k]) }
                }
                return sum + ids.count
            }
        }
        let session = try model.makeSession(contextLength: 16, threads: 2)
        session.recordsRouting = true
        _ = try session.evaluate([1, 17, 42, 99, 3])
        var t = session.timings
        #expect(t.steps == 1 && t.tokens == 5)
        #expect(t.expertsRun == distinct([session.routingTrace]) { _ in 0..<5 })
        #expect(t.expertsRun > k * c.layers && t.expertsRun < 5 * k * c.layers, "five tokens share some experts")
        _ = try session.evaluate([250])
        t = session.timings
        #expect(t.steps == 2 && t.expertsRun == distinct([session.routingTrace]) { _ in 0..<5 } + k * c.layers)

        for overlap in [false, true] {
            let sessions = try (0..<4).map { _ in try model.makeSession(contextLength: 16, threads: 2) }
            for s in sessions { s.recordsRouting = true }
            _ = try Session.evaluate(together: sessions, tokens: [31, 77, 31, 128], overlap: overlap)
            let traces = sessions.map(\.routingTrace)
            t = sessions[0].timings
            if overlap {  // halves: sessions 0-1 and 2-3
                #expect(t.steps == 2)
                #expect(t.expertsRun == distinct(Array(traces[..<2])) { _ in 0..<1 } + distinct(Array(traces[2...])) { _ in 0..<1 })
            } else {
                #expect(t.steps == 1)
                #expect(t.expertsRun == distinct(traces) { _ in 0..<1 })
                #expect(t.expertsRun < 4 * k * c.layers, "sessions 0 and 2 have the same token, so the same experts")
            }
            #expect(t.expertsPerStep(layers: c.layers) == Double(t.expertsRun) / Double(t.steps * c.layers))
        }
    }

    @Test("timings of overlapped halves: both halves' phases and tokens are charged to the first session, the overlap is part of the phases")
    func overlappedTimings() throws {
        let model = try Model(path: Fixtures.path("forward/qwen3moe-q8_0.gguf"))
        let sessions = try (0..<4).map { _ in try model.makeSession(contextLength: 16, threads: 2) }
        for _ in 0..<3 { _ = try Session.evaluate(together: sessions, tokens: [1, 2, 3, 4]) }
        let t = sessions[0].timings
        #expect(t.tokens == 12)
        #expect(t.attention > 0 && t.router > 0 && t.experts > 0 && t.output > 0)
        #expect(t.overlapped <= t.total && t.wall == t.total - t.overlapped)
        #expect(t.waiting <= t.total)
        #expect(sessions[1].timings == ForwardTimings(), "the other sessions are not charged")
        sessions[0].resetTimings()
        #expect(sessions[0].timings == ForwardTimings())
    }
}
