import CMoE
import MoE
import Testing
@testable import MoECAPI

/// The C API's tokenizer, sampler, generation and expert counters, including their misuse.
@Suite("C API: text, sampling, generation, experts")
struct CAPITextTests {
    func lastError() -> String { String(cString: moe_last_error()) }

    func load(_ path: String) -> OpaquePointer? {
        var model: OpaquePointer?
        #expect(moe_model_load(Fixtures.path(path), nil, &model) == MOE_STATUS_OK)
        return model
    }

    @Test("tokenize and detokenize agree with the Swift tokenizer; small buffers say what they need")
    func tokenizer() throws {
        let model = load("models/tiny-qwen3moe-q8_0.gguf")
        defer { moe_model_free(model) }
        let text = "Hello <|im_start|> wörld"
        let swift = try Tokenizer(file: GGUFFile(path: Fixtures.path("models/tiny-qwen3moe-q8_0.gguf")))
        var needed = 0
        #expect(moe_tokenize(model, text, text.utf8.count, 1, 1, nil, 0, &needed) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(needed == swift.encode(text, addSpecial: true, parseSpecial: true).count)
        #expect(lastError().contains("room for 0"))
        var ids = [Int32](repeating: -1, count: needed)
        #expect(moe_tokenize(model, text, text.utf8.count, 1, 1, &ids, ids.count, &needed) == MOE_STATUS_OK)
        #expect(ids == swift.encode(text, addSpecial: true, parseSpecial: true))

        var size = 0
        #expect(moe_detokenize(model, ids, ids.count, 1, nil, 0, &size) == MOE_STATUS_INVALID_ARGUMENT)
        var buf = [CChar](repeating: 0, count: size + 1)
        #expect(moe_detokenize(model, ids, ids.count, 1, &buf, buf.count, &size) == MOE_STATUS_OK)
        #expect(cString(buf) == text)
        #expect(moe_detokenize(model, [99999], 1, 0, &buf, buf.count, &size) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(lastError().contains("99999"))
        #expect(moe_token_to_piece(model, -1, 0, &buf, buf.count, &size) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(moe_token_to_piece(model, 72, 0, &buf, buf.count, &size) == MOE_STATUS_OK && cString(buf) == "H")

        var info = moe_vocab_info()
        info.size = UInt32(MemoryLayout<moe_vocab_info>.size)
        #expect(moe_vocab_get_info(model, &info) == MOE_STATUS_OK)
        #expect(Int(info.n_vocab) == swift.vocabulary.count && info.eos == 256)
        var eog: Int32 = 0
        #expect(moe_token_is_eog(model, 256, &eog) == MOE_STATUS_OK && eog == 1)
        #expect(moe_tokenize(nil, text, 1, 0, 0, &ids, ids.count, &needed) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(moe_tokenize(model, nil, 5, 0, 0, &ids, ids.count, &needed) == MOE_STATUS_INVALID_ARGUMENT)
        info.size = 0
        #expect(moe_vocab_get_info(model, &info) == MOE_STATUS_INVALID_ARGUMENT)
    }

    @Test("a vocabulary-only file tokenizes through the C API")
    func vocabularyOnly() {
        let model = load("text/spm-austen.gguf")
        defer { moe_model_free(model) }
        var ids = [Int32](repeating: 0, count: 64)
        var n = 0
        #expect(moe_tokenize(model, "Hello world", 11, 1, 0, &ids, ids.count, &n) == MOE_STATUS_OK)
        #expect(n > 2 && ids[0] == 1)  // BOS first: a SentencePiece vocabulary adds it
    }

    @Test("the C sampler draws what the Swift sampler draws; bad options and sizes are refused")
    func sampler() throws {
        var p = moe_sampler_default_params()
        p.seed = 11
        var s: OpaquePointer?
        #expect(moe_sampler_new(&p, &s) == MOE_STATUS_OK)
        defer { moe_sampler_free(s) }
        var o = SamplingOptions()
        o.seed = 11
        var swift = try Sampler(o)
        let logits: [Float] = [0.1, 2, 1.5, -1, 0.7, 1.9]
        for _ in 0..<50 {
            var t: Int32 = -1
            #expect(moe_sampler_sample(s, logits, logits.count, &t) == MOE_STATUS_OK)
            #expect(t == swift.sample(logits))
            #expect(moe_sampler_accept(s, t) == MOE_STATUS_OK)
            swift.accept(t)
        }
        p.top_p = 2
        var bad: OpaquePointer?
        #expect(moe_sampler_new(&p, &bad) == MOE_STATUS_INVALID_ARGUMENT && bad == nil)
        p = moe_sampler_default_params()
        p.size = 3
        #expect(moe_sampler_new(&p, &bad) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(lastError().contains("moe_sampler_default_params"))
        var t: Int32 = 0
        #expect(moe_sampler_sample(s, nil, 4, &t) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(moe_sampler_sample(nil, logits, logits.count, &t) == MOE_STATUS_INVALID_ARGUMENT)
        moe_sampler_free(nil)
    }

    @Test("moe_generate streams the Swift API's text, stops from its callback, and counts experts")
    func generate() throws {
        let path = "forward/qwen3moe-q8_0.gguf"
        let model = load(path)
        defer { moe_model_free(model) }
        var sp = moe_session_default_params()
        sp.n_ctx = 128
        sp.n_threads = 1
        var session: OpaquePointer?
        #expect(moe_session_new(model, &sp, &session) == MOE_STATUS_OK)
        defer { moe_session_free(session) }
        var gp = moe_generate_default_params()
        gp.n_predict = 10
        gp.sampler.temperature = 0
        gp.stop_at_eog = 0
        final class Collector { var text: [UInt8] = []; var limit = Int.max }
        let collector = Collector()
        let callback: moe_piece_callback = { piece, length, user in
            let c = Unmanaged<Collector>.fromOpaque(user!).takeUnretainedValue()
            c.text += UnsafeRawBufferPointer(start: piece, count: length)
            return c.text.count < c.limit ? 1 : 0
        }
        var result = moe_generate_result()
        result.size = UInt32(MemoryLayout<moe_generate_result>.size)
        let user = Unmanaged.passUnretained(collector).toOpaque()
        #expect(moe_generate(session, "Hello", &gp, callback, user, &result) == MOE_STATUS_OK)
        #expect(result.n_generated == 10 && result.stop_reason == MOE_STOP_LENGTH)

        let swiftModel = try Model(path: Fixtures.path(path))
        var options = GenerationOptions()
        options.sampling = .greedy
        options.maxTokens = 10
        options.stopAtEndOfGeneration = false
        let expected = try swiftModel.makeSession(contextLength: 128, threads: 1).generate("Hello", options: options) { _ in true }
        #expect(collector.text == Array(expected.text.utf8))

        // Counts: every evaluated token adds top-k choices per layer.
        var info = moe_expert_info()
        info.size = UInt32(MemoryLayout<moe_expert_info>.size)
        #expect(moe_model_expert_info(model, &info) == MOE_STATUS_OK)
        var n = 0
        #expect(moe_session_expert_counts(session, nil, 0, &n) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(n == Int(info.n_layer * info.n_expert))
        var counts = [UInt64](repeating: 0, count: n)
        #expect(moe_session_expert_counts(session, &counts, n, &n) == MOE_STATUS_OK)
        var position: Int64 = 0
        #expect(moe_session_position(session, &position) == MOE_STATUS_OK)
        for l in 0..<Int(info.n_layer) {
            let row = counts[(l * Int(info.n_expert))..<((l + 1) * Int(info.n_expert))]
            #expect(row.reduce(0, +) == UInt64(position) * UInt64(info.n_expert_used))
        }
        // The routing trace: off by default, then every token's choices, matching the counts.
        var traced = 0
        #expect(moe_session_routing_trace(session, nil, nil, 0, &traced) == MOE_STATUS_OK && traced == 0)
        #expect(moe_session_record_routing(session, 1) == MOE_STATUS_OK)
        var before: Int64 = 0
        #expect(moe_session_position(session, &before) == MOE_STATUS_OK)
        #expect(moe_session_eval(session, [72, 105], 2, 0) == MOE_STATUS_OK)
        #expect(moe_session_routing_trace(session, nil, nil, 0, &traced) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(traced == 2 * Int(info.n_layer * info.n_expert_used))
        var ids = [Int32](repeating: -1, count: traced), weights = [Float](repeating: -1, count: traced)
        #expect(moe_session_routing_trace(session, &ids, &weights, traced, &traced) == MOE_STATUS_OK)
        #expect(ids.allSatisfy { $0 >= 0 && $0 < info.n_expert } && weights.allSatisfy { $0 > 0 && $0 <= 1 })
        #expect(moe_session_clear_routing_trace(session) == MOE_STATUS_OK)
        #expect(moe_session_routing_trace(session, nil, nil, 0, &traced) == MOE_STATUS_OK && traced == 0)
        #expect(moe_session_reset_expert_counts(session) == MOE_STATUS_OK)
        #expect(moe_session_expert_counts(session, &counts, n, &n) == MOE_STATUS_OK && counts.allSatisfy { $0 == 0 })

        // The callback stops it; the session goes on from where it stopped.
        collector.text = []
        collector.limit = 1
        #expect(moe_session_reset(session) == MOE_STATUS_OK)
        #expect(moe_generate(session, "Hello", &gp, callback, user, &result) == MOE_STATUS_OK)
        #expect(result.stop_reason == MOE_STOP_CALLBACK)

        // Misuse.
        #expect(moe_generate(nil, "x", &gp, nil, nil, nil) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(moe_generate(session, nil, &gp, nil, nil, nil) == MOE_STATUS_INVALID_ARGUMENT)
        var wrong = gp
        wrong.size = 8
        #expect(moe_generate(session, "x", &wrong, nil, nil, nil) == MOE_STATUS_INVALID_ARGUMENT)
        wrong = gp
        wrong.n_stop = 2
        #expect(moe_generate(session, "x", &wrong, nil, nil, nil) == MOE_STATUS_INVALID_ARGUMENT)
        var small = moe_generate_result()
        small.size = 0
        #expect(moe_generate(session, "x", &gp, nil, nil, &small) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(moe_session_expert_counts(nil, &counts, n, &n) == MOE_STATUS_INVALID_ARGUMENT)
    }

    @Test("freed handles, handles of another kind and foreign pointers are refused; a double free is ignored")
    func staleHandles() throws {
        let model = load("forward/qwen3moe-q8_0.gguf")
        var session: OpaquePointer?
        #expect(moe_session_new(model, nil, &session) == MOE_STATUS_OK)
        var position: Int64 = 0
        // A session passed where a model is expected, and the other way round.
        var count: Int64 = 0
        #expect(moe_model_tensor_count(session, &count) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(lastError().contains("not a model handle"))
        #expect(moe_session_position(model, &position) == MOE_STATUS_INVALID_ARGUMENT)
        // A pointer the library never gave out.
        var junk = [UInt8](repeating: 0, count: 64)
        junk.withUnsafeMutableBytes { raw in
            let fake = OpaquePointer(raw.baseAddress!)
            #expect(moe_session_eval(fake, [1], 1, 0) == MOE_STATUS_INVALID_ARGUMENT)
            moe_session_free(fake)  // ignored, not freed
        }
        moe_session_free(session)
        #expect(moe_session_position(session, &position) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(lastError().contains("was freed"))
        moe_session_free(session)  // a second free is ignored
        moe_model_free(model)
        #expect(moe_model_tensor_count(model, &count) == MOE_STATUS_INVALID_ARGUMENT)
    }

    @Test("each handle keeps the message of its own last failure")
    func perHandleErrors() {
        let a = load("forward/qwen3moe-q8_0.gguf"), b = load("models/tiny-qwen3moe-q8_0.gguf")
        defer { moe_model_free(a); moe_model_free(b) }
        #expect(String(cString: moe_model_last_error(a)) == "")
        var buf = [CChar](repeating: 0, count: 8)
        var needed = 0
        #expect(moe_model_meta_string(a, "no.such.key", &buf, buf.count, &needed) == MOE_STATUS_NOT_FOUND)
        #expect(moe_detokenize(b, [99999], 1, 0, &buf, buf.count, &needed) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(String(cString: moe_model_last_error(a)).contains("no.such.key"))
        #expect(String(cString: moe_model_last_error(b)).contains("99999"))
        var session: OpaquePointer?
        #expect(moe_session_new(a, nil, &session) == MOE_STATUS_OK)
        #expect(moe_session_eval(session, [99999], 1, 0) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(String(cString: moe_session_last_error(session)).contains("99999"))
        moe_session_free(session)
        #expect(String(cString: moe_session_last_error(nil)) == "")
    }

    @Test("model params: n_threads is the sessions' default, mmap_prefetch loads, bad values are refused")
    func modelParams() {
        var p = moe_model_default_params()
        p.n_threads = 1
        p.mmap_prefetch = 1
        var model: OpaquePointer?
        #expect(moe_model_load(Fixtures.path("forward/qwen3moe-q8_0.gguf"), &p, &model) == MOE_STATUS_OK)
        defer { moe_model_free(model) }
        var session: OpaquePointer?
        #expect(moe_session_new(model, nil, &session) == MOE_STATUS_OK)
        #expect(sessionHandle(session!).session.threads == 1)
        var sp = moe_session_default_params()
        sp.n_threads = 2
        var other: OpaquePointer?
        #expect(moe_session_new(model, &sp, &other) == MOE_STATUS_OK)
        #expect(sessionHandle(other!).session.threads == 2)
        moe_session_free(session)
        moe_session_free(other)
        p.n_threads = -3
        var bad: OpaquePointer?
        #expect(moe_model_load(Fixtures.path("forward/qwen3moe-q8_0.gguf"), &p, &bad) == MOE_STATUS_INVALID_ARGUMENT && bad == nil)
    }

    @Test("expert_memory loads a store: identical logits, live counters per layer, a too-small budget fails the load")
    func expertStore() throws {
        let path = Fixtures.path("forward/qwen3moe-q8_0.gguf")
        let swiftModel = try Model(path: path)
        let slot = swiftModel.expertSlotBytes, k = swiftModel.config.expertsUsed
        var p = moe_model_default_params()
        #expect(p.expert_prefetch == 1 && p.expert_policy == Int32(MOE_EXPERT_POLICY_LRU))
        p.expert_memory = UInt64(slot * (k + 1))
        p.expert_policy = Int32(MOE_EXPERT_POLICY_LFU)
        var model: OpaquePointer?
        #expect(moe_model_load(path, &p, &model) == MOE_STATUS_OK)
        var session: OpaquePointer?
        var sp = moe_session_default_params()
        sp.n_ctx = 32
        #expect(moe_session_new(model, &sp, &session) == MOE_STATUS_OK)
        let tokens: [Int32] = [1, 2, 3, 4, 5, 6]
        var logits = [Float](repeating: 0, count: swiftModel.config.vocabulary)
        for t in tokens {  // one token at a time: each uses k experts per layer
            var one = t
            #expect(moe_session_eval(session, &one, 1, 0) == MOE_STATUS_OK)
        }
        #expect(moe_session_logits(session, &logits, logits.count, nil) == MOE_STATUS_OK)
        let reference = try swiftModel.makeSession(contextLength: 32).evaluate(tokens)  // batched: the same bits
        #expect(logits == reference)
        var total = moe_expert_store_stats()
        total.size = UInt32(MemoryLayout<moe_expert_store_stats>.size)
        #expect(moe_model_expert_store_stats(model, -1, &total) == MOE_STATUS_OK)
        #expect(Int(total.hits + total.misses) == tokens.count * swiftModel.config.layers * k)
        #expect(total.slots == UInt64(k + 1) && total.slot_bytes == UInt64(slot) && total.bytes_read > 0)
        var layer0 = moe_expert_store_stats()
        layer0.size = UInt32(MemoryLayout<moe_expert_store_stats>.size)
        #expect(moe_model_expert_store_stats(model, 0, &layer0) == MOE_STATUS_OK)
        #expect(Int(layer0.hits + layer0.misses) == tokens.count * k)
        #expect(moe_model_expert_store_stats(model, 99, &layer0) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(moe_model_reset_expert_store_stats(model) == MOE_STATUS_OK)
        #expect(moe_model_expert_store_stats(model, -1, &total) == MOE_STATUS_OK && total.hits == 0 && total.misses == 0)
        moe_session_free(session)
        moe_model_free(model)

        // No store: NOT_FOUND. A budget below k experts: the load fails and says why.
        var plain: OpaquePointer?
        var defaults = moe_model_default_params()
        #expect(moe_model_load(path, &defaults, &plain) == MOE_STATUS_OK)
        #expect(moe_model_expert_store_stats(plain, -1, &total) == MOE_STATUS_NOT_FOUND)
        moe_model_free(plain)
        p.expert_memory = UInt64(slot * k - 1)
        var small: OpaquePointer?
        #expect(moe_model_load(path, &p, &small) == MOE_STATUS_INVALID_ARGUMENT && small == nil)
        #expect(String(cString: moe_last_error()).contains("working set"))
        p.expert_memory = UInt64(slot * k)
        p.expert_policy = 7
        #expect(moe_model_load(path, &p, &small) == MOE_STATUS_INVALID_ARGUMENT && small == nil)
    }
}
