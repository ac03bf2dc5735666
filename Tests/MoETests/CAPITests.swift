import CMoE
import MoE
import Testing
@testable import MoECAPI

/// The C API as a C caller sees it: status codes, out-parameters, the last-error message.
@Suite("C API")
struct CAPITests {
    func lastError() -> String { String(cString: moe_last_error()) }

    @Test("version and status strings are static and complete")
    func versionAndStatus() {
        #expect(String(cString: moe_version()) == MOE_VERSION_STRING)
        #expect(String(cString: moe_status_string(MOE_STATUS_OK)) == "ok")
        #expect(String(cString: moe_status_string(MOE_STATUS_INVALID_FILE)) == "invalid file")
        #expect(String(cString: moe_status_string(12345)) == "unknown status")
        for status in MOE_STATUS_OK...MOE_STATUS_INTERNAL {
            #expect(String(cString: moe_status_string(status)) != "unknown status")
        }
    }

    @Test("loading a model gives a handle whose metadata can be read")
    func loadAndRead() throws {
        var params = moe_model_default_params()
        #expect(Int(params.size) == MemoryLayout<moe_model_params>.size)
        params.n_threads = 1
        var model: OpaquePointer?
        #expect(moe_model_load(Fixtures.path("models/tiny-qwen3moe-q8_0.gguf"), &params, &model) == MOE_STATUS_OK)
        defer { moe_model_free(model) }
        var count: Int64 = 0
        #expect(moe_model_tensor_count(model, &count) == MOE_STATUS_OK)
        #expect(count == 27)

        var needed = 0
        #expect(moe_model_meta_string(model, "general.name", nil, 0, &needed) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(needed == "tiny-qwen3moe".utf8.count)
        #expect(lastError().contains("needs 14 bytes"))
        var buffer = [CChar](repeating: 0, count: needed + 1)
        #expect(moe_model_meta_string(model, "general.name", &buffer, buffer.count, &needed) == MOE_STATUS_OK)
        #expect(cString(buffer) == "tiny-qwen3moe")
        #expect(moe_model_meta_string(model, "{arch}.expert_count", &buffer, buffer.count, &needed) == MOE_STATUS_OK)
        #expect(cString(buffer) == "8")
        #expect(moe_model_meta_string(model, "no.such.key", &buffer, buffer.count, &needed) == MOE_STATUS_NOT_FOUND)
        #expect(lastError().contains("no.such.key"))
    }

    @Test("misuse returns a status and a message, never crashes")
    func misuse() {
        var model: OpaquePointer?
        #expect(moe_model_load(nil, nil, &model) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(lastError().contains("path is NULL"))
        #expect(moe_model_load("x", nil, nil) == MOE_STATUS_INVALID_ARGUMENT)
        var params = moe_model_default_params()
        params.size = 0
        #expect(moe_model_load(Fixtures.path("models/tiny-qwen3moe-q8_0.gguf"), &params, &model) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(model == nil)
        #expect(moe_model_load("/no/such/file.gguf", nil, &model) == MOE_STATUS_IO)
        #expect(lastError().contains("/no/such/file.gguf"))
        #expect(moe_model_load(Fixtures.path("gguf/ggml-types.json"), nil, &model) == MOE_STATUS_INVALID_FILE)
        #expect(lastError().contains("not a GGUF file"))
        #expect(model == nil, "out-parameters are written only on success")
        var count: Int64 = 0
        #expect(moe_model_tensor_count(nil, &count) == MOE_STATUS_INVALID_ARGUMENT)
        moe_model_free(nil)
    }

    func load(_ fixture: String) -> OpaquePointer? {
        var model: OpaquePointer?
        #expect(moe_model_load(Fixtures.path(fixture), nil, &model) == MOE_STATUS_OK)
        return model
    }

    @Test("a C session gives the Swift API's logits, position by position")
    func sessionMatchesSwift() throws {
        let tokens: [Int32] = [256, 72, 101, 108]
        let expected = try MoE.Model(path: Fixtures.path("forward/qwen3moe-q4_k_m.gguf")).makeSession(contextLength: 16).evaluate(tokens, logits: .all)
        let model = load("forward/qwen3moe-q4_k_m.gguf")
        var vocab: Int64 = 0
        #expect(moe_model_vocab_size(model, &vocab) == MOE_STATUS_OK && vocab == 259)
        var params = moe_session_default_params()
        params.n_ctx = 16
        params.n_threads = 2
        var session: OpaquePointer?
        #expect(moe_session_new(model, &params, &session) == MOE_STATUS_OK)
        moe_model_free(model)  // the session keeps the model alive
        defer { moe_session_free(session) }
        #expect(moe_session_eval(session, tokens, tokens.count, 1) == MOE_STATUS_OK)
        var needed = 0
        #expect(moe_session_logits(session, nil, 0, &needed) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(needed == tokens.count * 259)
        var logits = [Float](repeating: 0, count: needed)
        #expect(moe_session_logits(session, &logits, logits.count, &needed) == MOE_STATUS_OK)
        #expect(logits == expected)
        var position: Int64 = 0
        #expect(moe_session_position(session, &position) == MOE_STATUS_OK && position == 4)
        #expect(moe_session_truncate(session, 3) == MOE_STATUS_OK)
        #expect(moe_session_eval(session, [108], 1, 0) == MOE_STATUS_OK)
        var last = [Float](repeating: 0, count: 259)
        #expect(moe_session_logits(session, &last, last.count, nil) == MOE_STATUS_OK)
        #expect(last == Array(expected.suffix(259)))
    }

    @Test("moe_session_eval_batch gives each session the logits it gets alone, and refuses bad batches")
    func evalBatch() throws {
        let model = load("forward/olmoe-q4_0.gguf")
        defer { moe_model_free(model) }
        var params = moe_session_default_params()
        params.n_ctx = 8
        params.n_threads = 2
        var sessions: [OpaquePointer?] = [nil, nil, nil]
        for i in 0..<3 { #expect(moe_session_new(model, &params, &sessions[i]) == MOE_STATUS_OK) }
        defer { for s in sessions { moe_session_free(s) } }
        let prompts: [[Int32]] = [[1, 2, 3], [4], [5, 6]], steps: [Int32] = [7, 8, 9]
        // The same prompts and tokens one session at a time, through the Swift API.
        let swiftModel = try MoE.Model(path: Fixtures.path("forward/olmoe-q4_0.gguf"))
        let expected = try (0..<3).map { i in
            let s = try swiftModel.makeSession(contextLength: 8)
            _ = try s.evaluate(prompts[i])
            return try s.evaluate([steps[i]])
        }
        for i in 0..<3 { #expect(moe_session_eval(sessions[i], prompts[i], prompts[i].count, 0) == MOE_STATUS_OK) }
        #expect(moe_session_eval_batch(sessions, steps, 3) == MOE_STATUS_OK)
        for i in 0..<3 {
            var logits = [Float](repeating: 0, count: 259)
            #expect(moe_session_logits(sessions[i], &logits, logits.count, nil) == MOE_STATUS_OK)
            #expect(logits == expected[i], "session \(i)")
            var position: Int64 = 0
            #expect(moe_session_position(sessions[i], &position) == MOE_STATUS_OK && position == Int64(prompts[i].count + 1))
        }
        // Refusals: nothing evaluated, the reason on the first session.
        #expect(moe_session_eval_batch(nil, steps, 3) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(moe_session_eval_batch(sessions, steps, 0) == MOE_STATUS_INVALID_ARGUMENT)
        let twice: [OpaquePointer?] = [sessions[0], sessions[0]]
        #expect(moe_session_eval_batch(twice, [1, 2], 2) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(String(cString: moe_session_last_error(sessions[0])).contains("twice"))
        let withNull: [OpaquePointer?] = [sessions[0], nil]
        #expect(moe_session_eval_batch(withNull, [1, 2], 2) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(String(cString: moe_session_last_error(sessions[0])).contains("session 1 is NULL"))
        #expect(moe_session_eval_batch(sessions, [1, 9999, 2], 3) == MOE_STATUS_INVALID_ARGUMENT)
        var position: Int64 = 0
        #expect(moe_session_position(sessions[0], &position) == MOE_STATUS_OK && position == 4, "nothing evaluated")
    }

    @Test("session misuse returns a status and keeps the session as it was")
    func sessionMisuse() {
        let model = load("forward/llama-q8_0.gguf")
        defer { moe_model_free(model) }
        var session: OpaquePointer?
        var params = moe_session_default_params()
        params.size = 4
        #expect(moe_session_new(model, &params, &session) == MOE_STATUS_INVALID_ARGUMENT && session == nil)
        params = moe_session_default_params()
        params.n_ctx = 0
        #expect(moe_session_new(model, &params, &session) == MOE_STATUS_INVALID_ARGUMENT)
        params.n_ctx = 4
        #expect(moe_session_new(nil, &params, &session) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(moe_session_new(model, &params, &session) == MOE_STATUS_OK)
        defer { moe_session_free(session) }
        #expect(moe_session_eval(session, [1, 2], 2, 0) == MOE_STATUS_OK)
        var before = [Float](repeating: 0, count: 259)
        _ = moe_session_logits(session, &before, before.count, nil)
        #expect(moe_session_eval(session, [9999], 1, 0) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(lastError().contains("id 9999"))
        #expect(moe_session_eval(session, nil, 0, 0) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(moe_session_eval(session, [1, 2, 3], 3, 0) == MOE_STATUS_INVALID_ARGUMENT, "context of 4 overflows")
        var position: Int64 = 0
        _ = moe_session_position(session, &position)
        #expect(position == 2)
        var after = [Float](repeating: 0, count: 259)
        _ = moe_session_logits(session, &after, after.count, nil)
        #expect(after == before, "a failed evaluation keeps the previous logits")
        #expect(moe_session_truncate(session, -1) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(moe_session_truncate(session, 5) == MOE_STATUS_INVALID_ARGUMENT)
        #expect(moe_session_eval(nil, [1], 1, 0) == MOE_STATUS_INVALID_ARGUMENT)
        moe_session_free(nil)
    }

    @Test("a file whose architecture cannot run still opens for metadata; sessions say why not")
    func unsupportedArchitecture() {
        let model = load("gguf/all-metadata.gguf")
        defer { moe_model_free(model) }
        var count: Int64 = 0
        #expect(moe_model_tensor_count(model, &count) == MOE_STATUS_OK && count == 10)
        var session: OpaquePointer?
        #expect(moe_session_new(model, nil, &session) == MOE_STATUS_UNSUPPORTED && session == nil)
        #expect(lastError().contains("architecture 'fixture' is not supported"))
        var vocab: Int64 = 0
        #expect(moe_model_vocab_size(model, &vocab) == MOE_STATUS_UNSUPPORTED)
    }
}
