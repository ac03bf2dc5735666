import CMoE
import MoE

/// Copies `bytes` plus a NUL into `buf` of `size` bytes; reports the length through `needed`.
func copyOut(_ bytes: [UInt8], _ buf: UnsafeMutablePointer<CChar>?, _ size: Int, _ needed: UnsafeMutablePointer<Int>?,
             _ function: String) -> moe_status {
    needed?.pointee = bytes.count
    guard size > bytes.count else {
        return invalid("\(function): the text needs \(bytes.count + 1) bytes with its NUL, the buffer has \(size)")
    }
    guard let buf else { return invalid("\(function): buf is NULL") }
    bytes.withUnsafeBufferPointer { b in
        if let base = b.baseAddress { UnsafeMutableRawPointer(buf).copyMemory(from: base, byteCount: b.count) }
    }
    buf[bytes.count] = 0
    return MOE_STATUS_OK
}

/// Copies `value` into a caller's output struct, at most `size` bytes of it (the caller's
/// `sizeof`, which may be older and smaller than ours); the struct's `size` field keeps its value.
func writeSized<T>(_ value: T, to out: UnsafeMutablePointer<T>, size: UInt32) {
    var copy = value
    let n = min(Int(size), MemoryLayout<T>.size)
    withUnsafeBytes(of: &copy) { UnsafeMutableRawPointer(out).copyMemory(from: $0.baseAddress!, byteCount: n) }
}

@c @implementation
public func moe_session_reset(_ session: OpaquePointer?) -> moe_status {
    guard let session else { return invalid("moe_session_reset: session is NULL") }
    guard Handles.enter(session, .session) else { return invalid("moe_session_reset: session was freed or is not a session handle") }
    let h = sessionHandle(session)
    h.session.reset()
    h.logits = []
    return MOE_STATUS_OK
}

@c @implementation
public func moe_vocab_get_info(_ model: OpaquePointer?, _ info: UnsafeMutablePointer<moe_vocab_info>?) -> moe_status {
    guard let model else { return invalid("moe_vocab_get_info: model is NULL") }
    guard Handles.enter(model, .model) else { return invalid("moe_vocab_get_info: model was freed or is not a model handle") }
    guard let info else { return invalid("moe_vocab_get_info: info is NULL") }
    let size = info.pointee.size
    guard size >= 4, size <= 1 << 16 else { return invalid("moe_vocab_get_info: info->size is \(size); set it to sizeof(moe_vocab_info)") }
    do {
        let v = try handle(model).tokenizer().vocabulary
        writeSized(moe_vocab_info(size: size, n_vocab: Int32(v.count), bos: v.bos ?? -1, eos: v.eos ?? -1, eot: v.eot ?? -1,
                                  add_bos: v.addBOS ? 1 : 0), to: info, size: size)
        return MOE_STATUS_OK
    } catch {
        return fail(error)
    }
}

@c @implementation
public func moe_tokenize(_ model: OpaquePointer?, _ text: UnsafePointer<CChar>?, _ length: Int, _ addSpecial: Int32,
                         _ parseSpecial: Int32, _ tokens: UnsafeMutablePointer<Int32>?, _ nMax: Int,
                         _ nNeeded: UnsafeMutablePointer<Int>?) -> moe_status {
    guard let model else { return invalid("moe_tokenize: model is NULL") }
    guard Handles.enter(model, .model) else { return invalid("moe_tokenize: model was freed or is not a model handle") }
    guard text != nil || length == 0 else { return invalid("moe_tokenize: text is NULL") }
    guard length >= 0, length <= 1 << 30 else { return invalid("moe_tokenize: text_len \(length) is out of range") }
    do {
        let tokenizer = try handle(model).tokenizer()
        let bytes = text.map { UnsafeRawBufferPointer(start: $0, count: length) }.map { Array($0) } ?? []
        let ids = tokenizer.encode(String(decoding: bytes, as: UTF8.self), addSpecial: addSpecial != 0, parseSpecial: parseSpecial != 0)
        nNeeded?.pointee = ids.count
        guard nMax >= ids.count else { return invalid("moe_tokenize: the text has \(ids.count) tokens, the buffer room for \(nMax)") }
        if !ids.isEmpty {
            guard let tokens else { return invalid("moe_tokenize: tokens is NULL") }
            ids.withUnsafeBufferPointer { tokens.update(from: $0.baseAddress!, count: ids.count) }
        }
        return MOE_STATUS_OK
    } catch {
        return fail(error)
    }
}

@c @implementation
public func moe_token_to_piece(_ model: OpaquePointer?, _ token: Int32, _ special: Int32, _ buf: UnsafeMutablePointer<CChar>?,
                               _ size: Int, _ needed: UnsafeMutablePointer<Int>?) -> moe_status {
    guard let model else { return invalid("moe_token_to_piece: model is NULL") }
    guard Handles.enter(model, .model) else { return invalid("moe_token_to_piece: model was freed or is not a model handle") }
    do {
        let tokenizer = try handle(model).tokenizer()
        guard tokenizer.vocabulary.contains(token) else {
            return invalid("moe_token_to_piece: token \(token) is outside the vocabulary 0..<\(tokenizer.vocabulary.count)")
        }
        return copyOut(tokenizer.piece(token, special: special != 0), buf, size, needed, "moe_token_to_piece")
    } catch {
        return fail(error)
    }
}

@c @implementation
public func moe_detokenize(_ model: OpaquePointer?, _ tokens: UnsafePointer<Int32>?, _ count: Int, _ special: Int32,
                           _ buf: UnsafeMutablePointer<CChar>?, _ size: Int, _ needed: UnsafeMutablePointer<Int>?) -> moe_status {
    guard let model else { return invalid("moe_detokenize: model is NULL") }
    guard Handles.enter(model, .model) else { return invalid("moe_detokenize: model was freed or is not a model handle") }
    guard tokens != nil || count == 0 else { return invalid("moe_detokenize: tokens is NULL") }
    do {
        let tokenizer = try handle(model).tokenizer()
        let ids = tokens.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
        if let bad = ids.firstIndex(where: { !tokenizer.vocabulary.contains($0) }) {
            return invalid("moe_detokenize: token \(bad) has id \(ids[bad]), outside the vocabulary 0..<\(tokenizer.vocabulary.count)")
        }
        return copyOut(Array(tokenizer.decode(ids, special: special != 0).utf8), buf, size, needed, "moe_detokenize")
    } catch {
        return fail(error)
    }
}

@c @implementation
public func moe_token_is_eog(_ model: OpaquePointer?, _ token: Int32, _ out: UnsafeMutablePointer<Int32>?) -> moe_status {
    guard let model else { return invalid("moe_token_is_eog: model is NULL") }
    guard Handles.enter(model, .model) else { return invalid("moe_token_is_eog: model was freed or is not a model handle") }
    guard let out else { return invalid("moe_token_is_eog: out is NULL") }
    do {
        out.pointee = try handle(model).tokenizer().vocabulary.endOfGeneration.contains(token) ? 1 : 0
        return MOE_STATUS_OK
    } catch {
        return fail(error)
    }
}

// MARK: Sampling

/// What a `moe_sampler *` points to.
final class SamplerHandle {
    var sampler: Sampler
    init(_ sampler: Sampler) { self.sampler = sampler }
}

func samplingOptions(_ p: moe_sampler_params) -> SamplingOptions {
    var o = SamplingOptions()
    o.temperature = p.temperature
    o.topK = Int(p.top_k)
    o.topP = p.top_p
    o.minP = p.min_p
    o.repetitionPenalty = p.repeat_penalty
    o.frequencyPenalty = p.frequency_penalty
    o.presencePenalty = p.presence_penalty
    o.penaltyWindow = Int(p.penalty_last_n)
    o.seed = p.seed
    return o
}

@c @implementation
public func moe_sampler_default_params() -> moe_sampler_params {
    let o = SamplingOptions()
    return moe_sampler_params(size: UInt32(MemoryLayout<moe_sampler_params>.size), temperature: o.temperature, top_k: Int32(o.topK),
                              top_p: o.topP, min_p: o.minP, repeat_penalty: o.repetitionPenalty,
                              frequency_penalty: o.frequencyPenalty, presence_penalty: o.presencePenalty,
                              penalty_last_n: Int32(o.penaltyWindow), seed: o.seed)
}

/// The caller's params with their size checked (fields the caller's struct lacks keep defaults).
func checkedSamplerParams(_ params: UnsafePointer<moe_sampler_params>?, _ function: String) -> Result<moe_sampler_params, MoEError> {
    var p = moe_sampler_default_params()
    guard let params else { return .success(p) }
    let size = Int(params.pointee.size)
    guard size == MemoryLayout<moe_sampler_params>.size else {
        return .failure(MoEError(.invalidArgument, "\(function): params->size is \(size), expected \(MemoryLayout<moe_sampler_params>.size); initialise params with moe_sampler_default_params()"))
    }
    p = params.pointee
    return .success(p)
}

@c @implementation
public func moe_sampler_new(_ params: UnsafePointer<moe_sampler_params>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> moe_status {
    Handles.enterNone()
    guard let out else { return invalid("moe_sampler_new: out is NULL") }
    do {
        let p = try checkedSamplerParams(params, "moe_sampler_new").get()
        let sampler = try Sampler(samplingOptions(p))
        out.pointee = Handles.register(OpaquePointer(Unmanaged.passRetained(SamplerHandle(sampler)).toOpaque()), .sampler)
        return MOE_STATUS_OK
    } catch {
        return fail(error)
    }
}

@c @implementation
public func moe_sampler_free(_ sampler: OpaquePointer?) {
    guard let sampler else { return }
    // A pointer that is not live (freed twice, or never ours) is ignored rather than freed.
    guard Handles.remove(sampler, .sampler) else { return }
    Unmanaged<SamplerHandle>.fromOpaque(UnsafeRawPointer(sampler)).release()
}

@c @implementation
public func moe_sampler_sample(_ sampler: OpaquePointer?, _ logits: UnsafePointer<Float>?, _ count: Int,
                               _ out: UnsafeMutablePointer<Int32>?) -> moe_status {
    guard let sampler else { return invalid("moe_sampler_sample: sampler is NULL") }
    guard Handles.enter(sampler, .sampler) else { return invalid("moe_sampler_sample: sampler was freed or is not a sampler handle") }
    guard let logits, count > 0 else { return invalid("moe_sampler_sample: no logits (logits is NULL or n_logits is 0)") }
    guard count <= Int(Int32.max) else { return invalid("moe_sampler_sample: n_logits \(count) is too large") }
    guard let out else { return invalid("moe_sampler_sample: out is NULL") }
    let h = Unmanaged<SamplerHandle>.fromOpaque(UnsafeRawPointer(sampler)).takeUnretainedValue()
    out.pointee = h.sampler.sample(Array(UnsafeBufferPointer(start: logits, count: count)))
    return MOE_STATUS_OK
}

@c @implementation
public func moe_sampler_accept(_ sampler: OpaquePointer?, _ token: Int32) -> moe_status {
    guard let sampler else { return invalid("moe_sampler_accept: sampler is NULL") }
    guard Handles.enter(sampler, .sampler) else { return invalid("moe_sampler_accept: sampler was freed or is not a sampler handle") }
    guard token >= 0 else { return invalid("moe_sampler_accept: token \(token) is negative") }
    Unmanaged<SamplerHandle>.fromOpaque(UnsafeRawPointer(sampler)).takeUnretainedValue().sampler.accept(token)
    return MOE_STATUS_OK
}

// MARK: Generation

@c @implementation
public func moe_generate_default_params() -> moe_generate_params {
    moe_generate_params(size: UInt32(MemoryLayout<moe_generate_params>.size), n_predict: 128, sampler: moe_sampler_default_params(),
                        add_special: 1, parse_special: 0, stop_at_eog: 1, stop: nil, n_stop: 0)
}

@c @implementation
public func moe_generate(_ session: OpaquePointer?, _ prompt: UnsafePointer<CChar>?, _ params: UnsafePointer<moe_generate_params>?,
                         _ callback: moe_piece_callback?, _ userData: UnsafeMutableRawPointer?,
                         _ result: UnsafeMutablePointer<moe_generate_result>?) -> moe_status {
    guard let session else { return invalid("moe_generate: session is NULL") }
    guard Handles.enter(session, .session) else { return invalid("moe_generate: session was freed or is not a session handle") }
    guard let prompt else { return invalid("moe_generate: prompt is NULL") }
    var p = moe_generate_default_params()
    if let params {
        let size = Int(params.pointee.size)
        guard size == MemoryLayout<moe_generate_params>.size else {
            return invalid("moe_generate: params->size is \(size), expected \(MemoryLayout<moe_generate_params>.size); initialise params with moe_generate_default_params()")
        }
        p = params.pointee
    }
    if let result {
        let size = result.pointee.size
        guard size >= 4, size <= 1 << 16 else { return invalid("moe_generate: result->size is \(size); set it to sizeof(moe_generate_result)") }
    }
    guard p.n_predict >= 0 else { return invalid("moe_generate: n_predict is \(p.n_predict), expected 0 or more") }
    guard p.sampler.size == UInt32(MemoryLayout<moe_sampler_params>.size) else {
        return invalid("moe_generate: params->sampler.size is \(p.sampler.size); initialise it with moe_sampler_default_params()")
    }
    guard p.n_stop == 0 || p.stop != nil else { return invalid("moe_generate: n_stop is \(p.n_stop) but stop is NULL") }
    var options = GenerationOptions()
    options.maxTokens = Int(p.n_predict)
    options.sampling = samplingOptions(p.sampler)
    options.addSpecial = p.add_special != 0
    options.parseSpecial = p.parse_special != 0
    options.stopAtEndOfGeneration = p.stop_at_eog != 0
    for i in 0..<p.n_stop {
        guard let s = p.stop![i] else { return invalid("moe_generate: stop[\(i)] is NULL") }
        options.stopStrings.append(String(cString: s))
    }
    let h = sessionHandle(session)
    do {
        let r = try h.session.generate(String(cString: prompt), options: options) { piece in
            guard let callback else { return true }
            var bytes = Array(piece.utf8)
            let n = bytes.count
            bytes.append(0)
            return bytes.withUnsafeBufferPointer { b in
                b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: n + 1) { callback($0, n, userData) != 0 }
            }
        }
        h.logits = []
        if let result {
            let reason: moe_stop_reason = switch r.stopReason {
            case .endOfGeneration: MOE_STOP_EOG
            case .maxTokens: MOE_STOP_LENGTH
            case .stopString: MOE_STOP_STRING
            case .contextFull: MOE_STOP_CONTEXT
            case .cancelled: MOE_STOP_CALLBACK
            }
            let size = result.pointee.size
            writeSized(moe_generate_result(size: size, n_prompt: Int32(r.promptTokens), n_generated: Int32(r.generatedTokens.count),
                                           stop_reason: reason, prompt_seconds: r.promptSeconds, decode_seconds: r.decodeSeconds),
                       to: result, size: size)
        }
        return MOE_STATUS_OK
    } catch {
        return fail(error)
    }
}

// MARK: Expert utilization

@c @implementation
public func moe_model_expert_info(_ model: OpaquePointer?, _ info: UnsafeMutablePointer<moe_expert_info>?) -> moe_status {
    guard let model else { return invalid("moe_model_expert_info: model is NULL") }
    guard Handles.enter(model, .model) else { return invalid("moe_model_expert_info: model was freed or is not a model handle") }
    guard let info else { return invalid("moe_model_expert_info: info is NULL") }
    let size = info.pointee.size
    guard size >= 4, size <= 1 << 16 else { return invalid("moe_model_expert_info: info->size is \(size); set it to sizeof(moe_expert_info)") }
    switch handle(model).model {
    case .failure(let error):
        return fail(error)
    case .success(let m):
        let c = m.config
        writeSized(moe_expert_info(size: size, n_layer: Int32(c.layers), n_expert: Int32(c.experts), n_expert_used: Int32(c.expertsUsed)),
                   to: info, size: size)
        return MOE_STATUS_OK
    }
}

@c @implementation
public func moe_session_expert_counts(_ session: OpaquePointer?, _ counts: UnsafeMutablePointer<UInt64>?, _ nMax: Int,
                                      _ nNeeded: UnsafeMutablePointer<Int>?) -> moe_status {
    guard let session else { return invalid("moe_session_expert_counts: session is NULL") }
    guard Handles.enter(session, .session) else { return invalid("moe_session_expert_counts: session was freed or is not a session handle") }
    let values = sessionHandle(session).session.expertCounts
    nNeeded?.pointee = values.count
    guard nMax >= values.count else { return invalid("moe_session_expert_counts: \(values.count) counts, the buffer has room for \(nMax)") }
    if !values.isEmpty {
        guard let counts else { return invalid("moe_session_expert_counts: counts is NULL") }
        values.withUnsafeBufferPointer { counts.update(from: $0.baseAddress!, count: values.count) }
    }
    return MOE_STATUS_OK
}

@c @implementation
public func moe_session_reset_expert_counts(_ session: OpaquePointer?) -> moe_status {
    guard let session else { return invalid("moe_session_reset_expert_counts: session is NULL") }
    guard Handles.enter(session, .session) else { return invalid("moe_session_reset_expert_counts: session was freed or is not a session handle") }
    sessionHandle(session).session.resetExpertCounts()
    return MOE_STATUS_OK
}

@c @implementation
public func moe_session_record_routing(_ session: OpaquePointer?, _ enable: Int32) -> moe_status {
    guard let session else { return invalid("moe_session_record_routing: session is NULL") }
    guard Handles.enter(session, .session) else { return invalid("moe_session_record_routing: session was freed or is not a session handle") }
    sessionHandle(session).session.recordsRouting = enable != 0
    return MOE_STATUS_OK
}

@c @implementation
public func moe_session_routing_trace(_ session: OpaquePointer?, _ ids: UnsafeMutablePointer<Int32>?, _ weights: UnsafeMutablePointer<Float>?,
                                      _ nMax: Int, _ nNeeded: UnsafeMutablePointer<Int>?) -> moe_status {
    guard let session else { return invalid("moe_session_routing_trace: session is NULL") }
    guard Handles.enter(session, .session) else { return invalid("moe_session_routing_trace: session was freed or is not a session handle") }
    let s = sessionHandle(session).session
    let trace = s.routingTrace, w = s.routingWeights
    nNeeded?.pointee = trace.count
    guard nMax >= trace.count else { return invalid("moe_session_routing_trace: \(trace.count) entries, the buffers have room for \(nMax)") }
    guard !trace.isEmpty else { return MOE_STATUS_OK }
    guard let ids else { return invalid("moe_session_routing_trace: ids is NULL") }
    trace.withUnsafeBufferPointer { ids.update(from: $0.baseAddress!, count: trace.count) }
    if let weights, w.count == trace.count { w.withUnsafeBufferPointer { weights.update(from: $0.baseAddress!, count: w.count) } }
    return MOE_STATUS_OK
}

@c @implementation
public func moe_session_clear_routing_trace(_ session: OpaquePointer?) -> moe_status {
    guard let session else { return invalid("moe_session_clear_routing_trace: session is NULL") }
    guard Handles.enter(session, .session) else { return invalid("moe_session_clear_routing_trace: session was freed or is not a session handle") }
    sessionHandle(session).session.clearRoutingTrace()
    return MOE_STATUS_OK
}
