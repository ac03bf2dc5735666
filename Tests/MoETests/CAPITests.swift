import CMoE
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
        #expect(String(cString: buffer) == "tiny-qwen3moe")
        #expect(moe_model_meta_string(model, "{arch}.expert_count", &buffer, buffer.count, &needed) == MOE_STATUS_OK)
        #expect(String(cString: buffer) == "8")
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
}
