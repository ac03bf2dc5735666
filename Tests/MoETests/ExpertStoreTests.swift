import Foundation
import Testing
@testable import MoE

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The expert store: a RAM budget of expert slots that must change nothing but memory and speed.
@Suite("Expert store")
struct ExpertStoreTests {
    static let moeFixtures: [String] = ["mixtral", "olmoe", "qwen2moe", "qwen3moe"].flatMap { arch in
        ["f16", "q4_0", "q4_k_m", "q8_0"].map { "forward/\(arch)-\($0).gguf" }
    }
    static let tokens: [Int32] = [1, 17, 42, 99, 3, 250, 7, 128, 64, 5, 200, 31, 77, 12, 180, 9]

    static func logits(_ path: String, _ options: ModelOptions, tokens: [Int32] = tokens, threads: Int = 2) throws -> [Float] {
        let model = try Model(path: path, options: options)
        let session = try model.makeSession(contextLength: 64, threads: threads)
        return try session.evaluate(tokens, logits: .all)
    }

    /// A store of exactly `slots` slots for `path`'s experts.
    static func budget(_ path: String, slots: Int) throws -> Int {
        try Model(path: path).expertSlotBytes * slots
    }

    @Test("every MoE fixture gives bit-identical logits with a budget of k experts, a few experts, LRU or LFU, with or without prefetch", arguments: moeFixtures)
    func bitIdentical(_ fixture: String) throws {
        let path = Fixtures.path(fixture)
        let reference = try Self.logits(path, ModelOptions())
        let k = try Model(path: path).config.expertsUsed
        let cases: [ExpertStoreOptions] = [
            ExpertStoreOptions(budget: try Self.budget(path, slots: k)),
            ExpertStoreOptions(budget: try Self.budget(path, slots: k + 3), policy: .lfu),
            ExpertStoreOptions(budget: try Self.budget(path, slots: k + 1), prefetch: false, ioThreads: 1),
            ExpertStoreOptions(budget: try Self.budget(path, slots: 3 * k), directIO: false, rebalanceInterval: 2),
        ]
        for options in cases {
            let got = try Self.logits(path, ModelOptions(expertStore: options))
            #expect(got.count == reference.count)
            let same = zip(got, reference).allSatisfy { $0.bitPattern == $1.bitPattern }
            #expect(same, "\(fixture) with \(options.budget) bytes, \(options.policy), prefetch \(options.prefetch)")
        }
    }

    @Test("the demo model generates the same text with a 2-expert budget as without one")
    func demoGenerationUnchanged() throws {
        let path = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Models/demo-austen-moe.gguf").path
        var o = GenerationOptions()
        o.maxTokens = 48
        o.sampling = .greedy
        func run(_ options: ModelOptions) throws -> [Int32] {
            let model = try Model(path: path, options: options)
            return try model.makeSession(contextLength: 128, threads: 2).generate("It is a truth universally", options: o) { _ in true }.generatedTokens
        }
        let plain = try run(ModelOptions())
        let model = try Model(path: path, options: ModelOptions(expertStore: ExpertStoreOptions(budget: try Self.budget(path, slots: 2))))
        let tokens = try model.makeSession(contextLength: 128, threads: 2).generate("It is a truth universally", options: o) { _ in true }.generatedTokens
        #expect(tokens == plain)
        let stats = try #require(model.expertStoreStats)
        #expect(stats.slots == 2)
        #expect(stats.total.misses > 0 && stats.total.bytesRead > 0)
        // The prompt acquires each distinct expert once per layer; every generated token then 2 per layer.
        let uses = stats.total.hits + stats.total.misses
        #expect(uses >= (tokens.count - 1) * 6 * 2 && uses <= (tokens.count + 8) * 6 * 2)
    }

    @Test("stats between two snapshots: since() gives what happened in between, adding() it to the first gives the second")
    func statsIntervals() throws {
        let path = Fixtures.path("forward/qwen3moe-q8_0.gguf")
        let model = try Model(path: path, options: ModelOptions(expertStore: ExpertStoreOptions(budget: try Self.budget(path, slots: 3))))
        let session = try model.makeSession(contextLength: 16, threads: 2)
        _ = try session.evaluate([1, 17, 42])
        let first = try #require(model.expertStoreStats)
        for token: Int32 in [99, 3, 250, 7] { _ = try session.evaluate([token]) }
        let second = try #require(model.expertStoreStats)
        let between = second.since(first)
        #expect(between.total.hits + between.total.misses == 4 * 2 * model.config.layers, "four tokens, top-2, every layer")
        #expect(between.total.bytesRead == second.total.bytesRead - first.total.bytesRead)
        #expect(between.total.residentSlots == second.total.residentSlots, "gauges are the later snapshot's")
        #expect(first.adding(between) == second)
        #expect(second.since(second).total.hits == 0 && second.since(second).total.bytesRead == 0)
    }

    @Test("sizes parse as plain bytes or with binary K/M/G/T suffixes; nonsense is nil")
    func byteSizes() {
        #expect(ByteSize.parse("1073741824") == 1 << 30)
        #expect(ByteSize.parse("4G") == 4 << 30 && ByteSize.parse("4g") == 4 << 30 && ByteSize.parse("4GiB") == 4 << 30)
        #expect(ByteSize.parse("512M") == 512 << 20 && ByteSize.parse("512MB") == 512 << 20)
        #expect(ByteSize.parse("1.5G") == 3 << 29 && ByteSize.parse("64K") == 65536 && ByteSize.parse("2T") == 2 << 40)
        #expect(ByteSize.parse(" 8M ") == 8 << 20 && ByteSize.parse("0") == 0)
        for bad in ["", "G", "-1G", "4X", "1e3", "lots", "4 G", "99999999999T", "1.2.3M"] {
            #expect(ByteSize.parse(bad) == nil, "\(bad)")
        }
    }

    @Test("moe run --stats with a budget prints the store's counters and the peak RSS")
    func cliStats() throws {
        let model = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Models/demo-austen-moe.gguf").path
        let r = try CLITests().run(["run", "-m", model, "-p", "It is", "-n", "6", "--temp", "0", "--stats",
                                    "--expert-memory", "300K", "--expert-policy", "lfu"])
        #expect(r.status == 0)
        #expect(r.stderr.contains("experts: budget 300.00 KiB = 2 slots"), "\(r.stderr)")
        #expect(r.stderr.contains("lfu") && r.stderr.contains("experts: hit rate") && r.stderr.contains("peak RSS"))
        let plain = try CLITests().run(["run", "-m", model, "-p", "It is", "-n", "6", "--temp", "0", "--no-echo"])
        let stored = try CLITests().run(["run", "-m", model, "-p", "It is", "-n", "6", "--temp", "0", "--no-echo", "--expert-memory", "300K"])
        #expect(plain.stdout == stored.stdout && !plain.stdout.isEmpty)
    }

    @Test("a budget below one layer's k experts is refused at load with the size it needs")
    func budgetTooSmall() throws {
        let path = Fixtures.path("forward/olmoe-q8_0.gguf")
        let k = try Model(path: path).config.expertsUsed
        let budget = try Self.budget(path, slots: k) - 1
        do {
            _ = try Model(path: path, options: ModelOptions(expertStore: ExpertStoreOptions(budget: budget)))
            Issue.record("a budget of \(budget) bytes was accepted")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("working set is \(k) experts"), "\(error.message)")
        }
        // A huge budget is capped at the model's own experts.
        if Session.physicalMemory > 0 {
            let summary = ModelSummary(file: try GGUFFile(path: path))
            #expect(summary.routedExpertBytes < Session.physicalMemory, "the fixture's experts fit; the arena is capped at them")
            let capped = try Model(path: path, options: ModelOptions(expertStore: ExpertStoreOptions(budget: Int.max / 2)))
            #expect(capped.expertStoreStats!.slots == capped.config.layers * capped.config.experts)
        }
        do {
            _ = try Model(path: Fixtures.path("forward/llama-q8_0.gguf"), options: ModelOptions(expertStore: ExpertStoreOptions(budget: 1 << 30)))
            Issue.record("a dense model took an expert budget")
        } catch {
            #expect(error.message.contains("dense"))
        }
    }

    // MARK: Policies on scripted access patterns

    /// A store over a tiny model's 8 experts per layer driven directly: one layer, no prefetch, fixed split.
    static func scriptedStore(slots: Int, policy: ExpertEvictionPolicy) throws -> (Model, ExpertStore) {
        let path = Fixtures.path("models/tiny-qwen3moe-q8_0.gguf")
        let options = ExpertStoreOptions(budget: try budget(path, slots: slots), policy: policy, prefetch: false, ioThreads: 2, rebalanceInterval: 0)
        let model = try Model(path: path, options: ModelOptions(expertStore: options))
        return (model, model.store!)
    }

    /// Runs `steps` (each the experts one token chooses) through `store` at `layer`; returns hits per step.
    static func play(_ store: ExpertStore, layer: Int = 1, _ steps: [[Int32]]) throws -> [Int] {
        var hits: [Int] = []
        for step in steps {
            let before = store.stats().layers[layer].hits
            var slots = [Int32](repeating: -1, count: step.count)
            var pending = [Bool](repeating: true, count: step.count), ready = [Bool](repeating: false, count: step.count)
            store.acquire(layer: layer, ids: step, count: step.count, slots: &slots, predicted: nil, predictedCount: 0)
            var left = step.count
            while left > 0 { left -= try store.waitForReady(layer: layer, slots: slots, pending: &pending, count: step.count, ready: &ready) }
            store.release(slots: slots, count: step.count)
            hits.append(store.stats().layers[layer].hits - before)
        }
        return hits
    }

    @Test("LRU evicts the least recently used unpinned expert")
    func lruScript() throws {
        let (model, store) = try Self.scriptedStore(slots: 4, policy: .lru)
        _ = model
        // {0,1} {2,3} then {0,4}: 0 is pinned, so 4 replaces 1, the least recently used.
        #expect(try Self.play(store, [[0, 1], [2, 3], [0, 4]]) == [0, 0, 1])
        #expect(store.residentExperts(layer: 1) == [0, 2, 3, 4])
        #expect(store.pinnedSlots() == 0)
    }

    @Test("LFU keeps the most used expert where LRU drops it")
    func lfuScript() throws {
        let script: [[Int32]] = [[0, 1], [0, 2], [0, 1], [3, 4]]
        let (lfuModel, lfu) = try Self.scriptedStore(slots: 3, policy: .lfu)
        _ = lfuModel
        _ = try Self.play(lfu, script)
        #expect(lfu.residentExperts(layer: 1) == [0, 3, 4], "LFU evicts 2 (used once), then 1 (twice), keeping 0 (three times)")
        let (lruModel, lru) = try Self.scriptedStore(slots: 3, policy: .lru)
        _ = lruModel
        _ = try Self.play(lru, script)
        #expect(lru.residentExperts(layer: 1) == [1, 3, 4], "LRU evicts 2, then 0 (used before 1 in the last step)")
    }

    @Test("on random routing the store's hits equal the cache simulator's, for LRU and LFU", arguments: ExpertEvictionPolicy.allCases)
    func matchesSimulator(_ policy: ExpertEvictionPolicy) throws {
        var rng = SeededGenerator(seed: 11)
        // Skewed routing: expert e is chosen with weight 1/(e+1).
        let experts = 8
        var steps: [[Int32]] = []
        for _ in 0..<300 {
            var chosen: [Int32] = []
            while chosen.count < 2 {
                let total = (1...experts).reduce(0.0) { $0 + 1 / Double($1) }
                var r = Double.random(in: 0..<total, using: &rng), e = 0
                while r >= 1 / Double(e + 1) { r -= 1 / Double(e + 1); e += 1 }
                if !chosen.contains(Int32(e)) { chosen.append(Int32(e)) }
            }
            steps.append(chosen)
        }
        let (model, store) = try Self.scriptedStore(slots: 4, policy: policy)
        _ = model
        let hits = try Self.play(store, steps).reduce(0, +)
        let simulated = CacheSimulator.simulateLayer(steps, experts: 8, slots: 4, policy: policy == .lru ? .lru : .lfu)
        #expect(hits == simulated.hits)
        #expect(hits > 0 && hits < simulated.uses)
    }

    // MARK: Split, prefetch, profile

    @Test("the split gives fewer slots to a layer whose routing concentrates on few experts")
    func splitFollowsNeed() {
        let experts = 8
        let concentrated: [Double] = [100, 90, 1, 1, 1, 1, 1, 1]
        let even: [Double] = [Double](repeating: 25, count: experts)
        let quota = ExpertStore.split(counts: concentrated + even, layers: 2, experts: experts, active: [true, true], slots: 10, minimum: 2)
        #expect(quota.reduce(0, +) == 10)
        #expect(quota[0] == 2 && quota[1] == 8, "\(quota)")
        let dense = ExpertStore.split(counts: even + even, layers: 2, experts: experts, active: [false, true], slots: 10, minimum: 2)
        #expect(dense == [0, 8], "a dense layer gets nothing and no layer more than its experts")
    }

    @Test("a profile's usage.csv seeds the split; bad profiles are clear errors")
    func profileSeed() throws {
        var csv = "layer,expert,selected,share,mean_weight,rank0,rank1\n"
        for l in 0..<3 { for e in 0..<4 { csv += "\(l),\(e),\(l == 0 ? (e == 0 ? 50 : 0) : 10),0,0,0,0\n" } }
        let counts = try ExpertStoreOptions.seedCounts(usageCSV: csv)
        #expect(counts == [[50, 0, 0, 0], [10, 10, 10, 10], [10, 10, 10, 10]])
        #expect(throws: MoEError.self) { try ExpertStoreOptions.seedCounts(usageCSV: "hello\n1,2,3\n") }
        #expect(throws: MoEError.self) { try ExpertStoreOptions.seedCounts(usageCSV: "layer,expert,selected\n0,x,3\n") }
        // Seeded counts of the wrong shape for the model (2 layers of 4 experts) are refused at load.
        let path = Fixtures.path("forward/olmoe-q8_0.gguf")
        let options = ExpertStoreOptions(budget: try Self.budget(path, slots: 8), seedCounts: counts)
        #expect(throws: MoEError.self) { try Model(path: path, options: ModelOptions(expertStore: options)) }
    }

    @Test("a seeded split starts where the profile says: the concentrated layer gets its minimum")
    func seededQuota() throws {
        let path = Fixtures.path("forward/olmoe-q8_0.gguf")
        let probe = try Model(path: path)
        let (layers, experts, k) = (probe.config.layers, probe.config.experts, probe.config.expertsUsed)
        var seed = [[Double]](repeating: [Double](repeating: 10, count: experts), count: layers)
        seed[0] = (0..<experts).map { $0 < k ? 1000 : 0 }
        let options = ExpertStoreOptions(budget: try Self.budget(path, slots: layers * k + 2), seedCounts: seed, rebalanceInterval: 0)
        let model = try Model(path: path, options: ModelOptions(expertStore: options))
        let quota = model.expertStoreStats!.layers.map(\.quota)
        #expect(quota[0] == k, "\(quota)")
        #expect(quota.reduce(0, +) == layers * k + 2)
    }

    @Test("prefetching predicts experts and reports precision and recall; without it nothing is predicted")
    func prefetchAccounting() throws {
        let path = Fixtures.path("forward/qwen3moe-q8_0.gguf")
        let slots = 4 * (try Model(path: path).config.expertsUsed)
        for prefetch in [true, false] {
            let model = try Model(path: path, options: ModelOptions(expertStore: ExpertStoreOptions(budget: try Self.budget(path, slots: slots), prefetch: prefetch)))
            let session = try model.makeSession(contextLength: 64, threads: 2)
            for t in Self.tokens { _ = try session.evaluate([t]) }  // decode: one token at a time
            let t = model.expertStoreStats!.total
            #expect(t.hits + t.misses == Self.tokens.count * model.config.layers * model.config.expertsUsed)
            if prefetch {
                #expect(t.predicted == Self.tokens.count * model.config.layers * model.config.expertsUsed)
                #expect(t.predictedCorrectly > 0 && t.precision <= 1 && t.recall == t.precision)
                #expect(t.prefetches > 0 && t.prefetchHits > 0)
                #expect(t.bytesRead == (t.misses + t.prefetches) * (model.store!.parts[0].reduce(0) { $0 + $1.expertBytes }))
            } else {
                #expect(t.predicted == 0 && t.prefetches == 0 && t.prefetchHits == 0)
                #expect(t.bytesRead == t.misses * (model.store!.parts[0].reduce(0) { $0 + $1.expertBytes }))
            }
            model.resetExpertStoreStats()
            #expect(model.expertStoreStats!.total.hits == 0)
        }
    }

    @Test("a batched prompt gives bit for bit the one-token path's logits and routing, with and without a store", arguments: moeFixtures)
    func batchMatchesOneToken(_ fixture: String) throws {
        let path = Fixtures.path(fixture)
        let k = try Model(path: path).config.expertsUsed
        for options in [ModelOptions(), ModelOptions(expertStore: ExpertStoreOptions(budget: try Self.budget(path, slots: k + 2)))] {
            let model = try Model(path: path, options: options)
            let batched = try model.makeSession(contextLength: 200, threads: 2)
            let stepped = try model.makeSession(contextLength: 200, threads: 2)
            batched.recordsRouting = true
            stepped.recordsRouting = true
            // 70 tokens: a full batch of 64 and a second one of 6.
            let tokens = (0..<70).map { Self.tokens[$0 % Self.tokens.count] &+ Int32($0 / 16) }
            let all = try batched.evaluate(tokens, logits: .all)
            var one: [Float] = []
            for t in tokens { one += try stepped.evaluate([t]) }
            #expect(all.count == one.count)
            #expect(zip(all, one).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(fixture), store: \(options.expertStore != nil)")
            #expect(batched.routingTrace == stepped.routingTrace && batched.routingWeights == stepped.routingWeights)
            #expect(batched.expertCounts == stepped.expertCounts)
        }
    }

    @Test("a batched prompt through a store acquires each distinct expert of a layer once per batch, in waves")
    func promptWaves() throws {
        let path = Fixtures.path("models/tiny-qwen3moe-q8_0.gguf")
        let probe = try Model(path: path)
        let (layers, k) = (probe.config.layers, probe.config.expertsUsed)
        // k slots: every layer's distinct experts (up to 8) need several waves of k.
        let model = try Model(path: path, options: ModelOptions(expertStore: ExpertStoreOptions(budget: try Self.budget(path, slots: k), prefetch: false)))
        let session = try model.makeSession(contextLength: 64, threads: 2)
        session.recordsRouting = true
        let tokens = Array(Self.tokens.prefix(12)).map { $0 % Int32(probe.config.vocabulary) }
        _ = try session.evaluate(tokens)
        let trace = RoutingTrace(session: session)
        var distinct = 0
        for l in 0..<layers { distinct += Set((0..<trace.tokens).flatMap { trace.choice(token: $0, layer: l) }).count }
        let t = model.expertStoreStats!.total
        #expect(t.hits + t.misses == distinct, "one acquisition per distinct (layer, expert)")
        #expect(t.misses >= distinct - k, "at most the k experts left from the previous layer can be hits")
        #expect(distinct > layers * k, "the batch needed more experts per layer than there are slots")
        #expect(model.store!.pinnedSlots() == 0)
    }

    @Test("a budget larger than this machine's memory is refused before the arena is reserved", .enabled(if: Session.physicalMemory > 0 && Session.physicalMemory < 1 << 40))
    func budgetBeyondMemory() throws {
        // A sparse file whose experts (F16, all zero) add up to more than physical memory.
        let (d, f, experts, layers) = (1024, 4096, 256, 2)
        let perLayer = 3 * d * f * 2 * experts
        let needed = Session.physicalMemory / perLayer + 1
        var w = GGUFWriter(architecture: "qwen3moe")
        for (key, value) in [("block_count", layers * needed), ("embedding_length", d), ("attention.head_count", 8),
                             ("expert_count", experts), ("expert_used_count", 2), ("expert_feed_forward_length", f)] {
            w.set("qwen3moe." + key, .uint32(UInt32(value)))
        }
        try w.addTensor("token_embd.weight", type: .f16, shape: [d, 64], data: .zeros)
        try w.addTensor("output_norm.weight", type: .f32, shape: [d], data: .zeros)
        for l in 0..<(layers * needed) {
            let p = "blk.\(l)."
            for name in ["attn_norm", "ffn_norm"] { try w.addTensor(p + name + ".weight", type: .f32, shape: [d], data: .zeros) }
            for name in ["attn_q", "attn_k", "attn_v", "attn_output"] { try w.addTensor(p + name + ".weight", type: .f16, shape: [d, d], data: .zeros) }
            for name in ["attn_q_norm", "attn_k_norm"] { try w.addTensor(p + name + ".weight", type: .f32, shape: [d / 8], data: .zeros) }
            try w.addTensor(p + "ffn_gate_inp.weight", type: .f32, shape: [d, experts], data: .zeros)
            try w.addTensor(p + "ffn_gate_exps.weight", type: .f16, shape: [d, f, experts], data: .zeros)
            try w.addTensor(p + "ffn_up_exps.weight", type: .f16, shape: [d, f, experts], data: .zeros)
            try w.addTensor(p + "ffn_down_exps.weight", type: .f16, shape: [f, d, experts], data: .zeros)
        }
        let path = Fixtures.processScratch.appendingPathComponent("sparse-\(UUID().uuidString).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try w.write(to: path)
        do {
            _ = try Model(path: path, options: ModelOptions(expertStore: ExpertStoreOptions(budget: Int.max / 2)))
            Issue.record("a budget beyond physical memory was accepted")
        } catch {
            #expect(error.code == .outOfMemory && error.message.contains("more than this machine"), "\(error.message)")
        }
        let fits = try Model(path: path, options: ModelOptions(expertStore: ExpertStoreOptions(budget: 64 << 20, ioThreads: 1)))
        #expect(fits.expertStoreStats!.slots >= 2)
    }

    // MARK: Sharing and failures

    @Test("4 sessions on 4 threads through a store of k+1 slots give each the tokens it gives alone, and leave nothing pinned")
    func concurrentSessions() throws {
        let path = Fixtures.path("forward/qwen3moe-q8_0.gguf")
        let k = try Model(path: path).config.expertsUsed
        let model = try Model(path: path, options: ModelOptions(expertStore: ExpertStoreOptions(budget: try Self.budget(path, slots: k + 1))))
        let plain = try Model(path: path)
        let prompts = ["Hello", "world, again", "MoE!", "abc def ghi"]
        var o = GenerationOptions()
        o.maxTokens = 16
        o.stopAtEndOfGeneration = false
        o.sampling.seed = 5
        let options = o
        @Sendable func generate(_ m: Model, _ prompt: String) throws -> [Int32] {
            try m.makeSession(contextLength: 64, threads: 2).generate(prompt, options: options) { _ in true }.generatedTokens
        }
        let alone = try prompts.map { try generate(plain, $0) }
        let together = Locked<[Int: [Int32]]>([:])  // not Mutex: ThreadSanitizer cannot see its futex (Locked.swift)
        let failures = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            do {
                let tokens = try generate(model, prompts[i])
                together.withLock { $0[i] = tokens }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        for i in 0..<4 { #expect(together.withLock { $0[i] } == alone[i], "session \(i)") }
        #expect(model.store!.pinnedSlots() == 0)
        #expect(model.expertStoreStats!.total.misses > 0)
    }

    @Test("a model file truncated after opening gives an I/O error naming the truncation, not SIGBUS; the store stays usable")
    func truncatedFile() throws {
        let source = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Models/demo-austen-moe.gguf").path
        let copy = Fixtures.processScratch.appendingPathComponent("truncated-\(UUID().uuidString).gguf").path
        try FileManager.default.copyItem(atPath: source, toPath: copy)
        let model = try Model(path: copy, options: ModelOptions(expertStore: ExpertStoreOptions(budget: try Self.budget(copy, slots: 2))))
        // The demo file ends with layer 5's ffn_down_exps: cut into it, so only paged experts are lost.
        let down = try #require(model.file.tensorInfo("blk.5.ffn_down_exps.weight"))
        let view = model.file.view(down)
        #expect(view.fileOffset + view.byteCount == model.file.mapping.size, "the cut must only hit experts")
        #expect(truncate(copy, off_t(view.fileOffset + view.byteCount / 4)) == 0)
        let session = try model.makeSession(contextLength: 256, threads: 2)
        var failure: MoEError?
        for t in 0..<200 where failure == nil {
            do { _ = try session.evaluate([Int32(t * 17 % 4096)]) } catch { failure = error }
        }
        let error = try #require(failure, "no expert beyond the cut was needed in 200 tokens")
        #expect(error.code == .io)
        #expect(error.message.contains("truncated"), "\(error.message)")
        #expect(model.store!.pinnedSlots() == 0)
    }

    // MARK: Memory

    /// Writes a random qwen3moe model whose routed experts take `layers x experts x 3 x d x f` Q8_0 weights.
    static func writeLargeModel(to path: String, layers: Int, experts: Int, d: Int, f: Int) throws {
        var w = GGUFWriter(architecture: "qwen3moe")
        let heads = 4, hd = d / heads, vocab = 512
        w.set("qwen3moe.block_count", .uint32(UInt32(layers)))
        w.set("qwen3moe.embedding_length", .uint32(UInt32(d)))
        w.set("qwen3moe.attention.head_count", .uint32(UInt32(heads)))
        w.set("qwen3moe.attention.head_count_kv", .uint32(UInt32(heads)))
        w.set("qwen3moe.attention.key_length", .uint32(UInt32(hd)))
        w.set("qwen3moe.attention.value_length", .uint32(UInt32(hd)))
        w.set("qwen3moe.expert_count", .uint32(UInt32(experts)))
        w.set("qwen3moe.expert_used_count", .uint32(8))
        w.set("qwen3moe.expert_feed_forward_length", .uint32(UInt32(f)))
        w.set("qwen3moe.context_length", .uint32(256))
        var rng = SeededGenerator(seed: 3)
        func small(_ n: Int) -> [Float] { (0..<n).map { _ in Float.random(in: -0.05...0.05, using: &rng) } }
        // Q8_0 blocks with scale 0.01 and pseudo-random quants, made chunk by chunk.
        let expertCount = experts
        func stacked(_ rows: Int, _ cols: Int) -> GGUFWriter.TensorData {
            let blocks = rows * cols * expertCount / 32, perChunk = 1 << 15
            return .chunks { chunk in
                let first = chunk * perChunk, count = min(perChunk, blocks - first)
                guard count > 0 else { return [] }
                var state = UInt64(truncatingIfNeeded: chunk) &* 0x9E37_79B9_7F4A_7C15 | 1
                var out = [UInt8](repeating: 0, count: count * 34)
                for b in 0..<count {
                    out[b * 34] = 0x1F
                    out[b * 34 + 1] = 0x21
                    for i in 0..<32 {
                        state = state &* 6364136223846793005 &+ 1442695040888963407
                        out[b * 34 + 2 + i] = UInt8(truncatingIfNeeded: state >> 59) &+ 0xF0
                    }
                }
                return out
            }
        }
        try w.addTensor("token_embd.weight", type: .q8_0, shape: [d, vocab], values: small(d * vocab))
        try w.addTensor("output_norm.weight", type: .f32, shape: [d], values: [Float](repeating: 1, count: d))
        for l in 0..<layers {
            let p = "blk.\(l)."
            try w.addTensor(p + "attn_norm.weight", type: .f32, shape: [d], values: [Float](repeating: 1, count: d))
            for name in ["attn_q", "attn_k", "attn_v"] { try w.addTensor(p + name + ".weight", type: .q8_0, shape: [d, d], values: small(d * d)) }
            try w.addTensor(p + "attn_output.weight", type: .q8_0, shape: [d, d], values: small(d * d))
            try w.addTensor(p + "attn_q_norm.weight", type: .f32, shape: [hd], values: [Float](repeating: 1, count: hd))
            try w.addTensor(p + "attn_k_norm.weight", type: .f32, shape: [hd], values: [Float](repeating: 1, count: hd))
            try w.addTensor(p + "ffn_norm.weight", type: .f32, shape: [d], values: [Float](repeating: 1, count: d))
            try w.addTensor(p + "ffn_gate_inp.weight", type: .f32, shape: [d, experts], values: small(d * experts).map { $0 * 20 })
            try w.addTensor(p + "ffn_gate_exps.weight", type: .q8_0, shape: [d, f, experts], data: stacked(d, f))
            try w.addTensor(p + "ffn_up_exps.weight", type: .q8_0, shape: [d, f, experts], data: stacked(d, f))
            try w.addTensor(p + "ffn_down_exps.weight", type: .q8_0, shape: [f, d, experts], data: stacked(f, d))
        }
        try w.write(to: path)
    }

    /// Peak RSS of a `moe bench` run as it reports it (VmHWM of its own address space: a parent's
    /// wait4 would also see the pre-exec high-water mark of the test process).
    static func benchRSS(_ args: [String]) throws -> Int? {
        let r = try CLITests().run(["bench", "-o", "json", "-r", "1", "-t", "2"] + args)
        guard r.status == 0, let rows = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] else { return nil }
        return rows.first?["peak_rss_bytes"] as? Int
    }

    /// Whether this test process — and so the `moe` built beside it — runs under a sanitizer. Its
    /// shadow memory grows with every instrumented read (ThreadSanitizer instruments the kernels'
    /// 16-byte vector loads but not 32-byte ones), so resident-set bounds mean nothing there.
    static let underSanitizer: Bool = {
        guard let program = dlopen(nil, RTLD_NOW) else { return false }
        defer { dlclose(program) }
        return dlsym(program, "__tsan_init") != nil || dlsym(program, "__asan_init") != nil
    }()

    @Test("RSS stays within budget + non-expert weights + KV + 64 MiB with experts 4x the budget; without a budget it does not",
          .disabled(if: ExpertStoreTests.underSanitizer, "a sanitizer's shadow memory counts in the resident set"))
    func residentSetBound() throws {
        try #require(FileManager.default.isExecutableFile(atPath: CLITests.binary.path))
        let path = Fixtures.processScratch.appendingPathComponent("large-\(UUID().uuidString).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (layers, experts, d, f) = (8, 64, 256, 512)
        try Self.writeLargeModel(to: path, layers: layers, experts: experts, d: d, f: f)
        let summary = ModelSummary(file: try GGUFFile(path: path))
        let expertBytes = summary.routedExpertBytes
        let budget = expertBytes / 4
        let nonExpert = summary.tensorBytes - expertBytes
        let context = 32, kv = layers * context * 2 * d * 2
        // A 32-token prompt and 32 decoded tokens (bench's sessions hold at most 32 tokens).
        let run = ["-m", path, "-p", "32", "-n", "32"]
        let bounded = try #require(try Self.benchRSS(run + ["--expert-memory", "\(budget)"]))
        let limit = budget + nonExpert + kv + (64 << 20)
        #expect(bounded <= limit, "peak RSS \(bounded >> 20) MiB over the bound \(limit >> 20) MiB (experts \(expertBytes >> 20) MiB)")
        // The same run without a budget maps every expert it touches into RSS: the bound is not vacuous.
        let unbounded = try #require(try Self.benchRSS(run))
        print("expert store RSS test: experts \(expertBytes >> 20) MiB, budget \(budget >> 20) MiB, bound \(limit >> 20) MiB, peak RSS with budget \(bounded >> 20) MiB, without \(unbounded >> 20) MiB")
        #expect(unbounded > limit, "without a budget peak RSS was \(unbounded >> 20) MiB")
    }
}
