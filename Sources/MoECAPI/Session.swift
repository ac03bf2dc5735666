import CMoE
import MoE

/// What a `moe_session *` points to: the Swift session and the logits of its last evaluation.
final class SessionHandle {
    let session: Session
    var logits: [Float] = []
    init(session: Session) { self.session = session }
}

func sessionHandle(_ pointer: OpaquePointer) -> SessionHandle {
    Unmanaged<SessionHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
}

@c @implementation
public func moe_model_vocab_size(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int64>?) -> moe_status {
    guard let model else { return invalid("moe_model_vocab_size: model is NULL") }
    guard Handles.enter(model, .model) else { return invalid("moe_model_vocab_size: model was freed or is not a model handle") }
    guard let out else { return invalid("moe_model_vocab_size: out is NULL") }
    switch handle(model).model {
    case .success(let m):
        out.pointee = Int64(m.config.vocabulary)
        return MOE_STATUS_OK
    case .failure(let error):
        return fail(error)
    }
}

@c @implementation
public func moe_session_default_params() -> moe_session_params {
    moe_session_params(size: UInt32(MemoryLayout<moe_session_params>.size), n_ctx: 4096, n_threads: 0)
}

@c @implementation
public func moe_session_new(_ model: OpaquePointer?, _ params: UnsafePointer<moe_session_params>?,
                            _ out: UnsafeMutablePointer<OpaquePointer?>?) -> moe_status {
    guard let model else { return invalid("moe_session_new: model is NULL") }
    guard Handles.enter(model, .model) else { return invalid("moe_session_new: model was freed or is not a model handle") }
    guard let out else { return invalid("moe_session_new: out is NULL") }
    var p = moe_session_default_params()
    if let params {
        let size = Int(params.pointee.size)
        guard size >= MemoryLayout<moe_session_params>.size, size <= 1 << 16 else {
            return invalid("moe_session_new: params->size is \(size), expected \(MemoryLayout<moe_session_params>.size); initialise params with moe_session_default_params()")
        }
        p = params.pointee
    }
    guard p.n_ctx > 0 else { return invalid("moe_session_new: n_ctx is \(p.n_ctx), expected a positive number") }
    guard p.n_threads >= 0 else { return invalid("moe_session_new: n_threads is \(p.n_threads), expected 0 (one per core) or more") }
    switch handle(model).model {
    case .failure(let error):
        return fail(error)
    case .success(let m):
        do {
            let fallback = handle(model).threads
            let threads = p.n_threads != 0 ? Int(p.n_threads) : fallback != 0 ? fallback : ThreadPool.processorCount
            let session = try m.makeSession(contextLength: Int(p.n_ctx), threads: threads)
            out.pointee = Handles.register(OpaquePointer(Unmanaged.passRetained(SessionHandle(session: session)).toOpaque()), .session)
            return MOE_STATUS_OK
        } catch {
            return fail(error)
        }
    }
}

@c @implementation
public func moe_session_free(_ session: OpaquePointer?) {
    guard let session else { return }
    // A pointer that is not live (freed twice, or never ours) is ignored rather than freed.
    guard Handles.remove(session, .session) else { return }
    Unmanaged<SessionHandle>.fromOpaque(UnsafeRawPointer(session)).release()
}

@c @implementation
public func moe_session_eval(_ session: OpaquePointer?, _ tokens: UnsafePointer<Int32>?, _ count: Int, _ allLogits: Int32) -> moe_status {
    guard let session else { return invalid("moe_session_eval: session is NULL") }
    guard Handles.enter(session, .session) else { return invalid("moe_session_eval: session was freed or is not a session handle") }
    guard let tokens, count > 0 else { return invalid("moe_session_eval: no tokens (tokens is NULL or n_tokens is 0)") }
    let h = sessionHandle(session)
    do {
        h.logits = try h.session.evaluate(Array(UnsafeBufferPointer(start: tokens, count: count)), logits: allLogits != 0 ? .all : .last)
        return MOE_STATUS_OK
    } catch {
        return fail(error)
    }
}

@c @implementation
public func moe_session_eval_batch(_ sessions: UnsafePointer<OpaquePointer?>?, _ tokens: UnsafePointer<Int32>?, _ count: Int) -> moe_status {
    guard let sessions, let tokens, count > 0 else {
        Handles.enterNone()
        return invalid("moe_session_eval_batch: no sessions (sessions or tokens is NULL, or n is 0)")
    }
    var handles: [SessionHandle] = []
    for i in 0..<count {
        guard let p = sessions[i], Handles.enter(p, .session) else {
            if let first = sessions[0] { _ = Handles.enter(first, .session) } else { Handles.enterNone() }
            return invalid("moe_session_eval_batch: session \(i) is NULL, was freed or is not a session handle")
        }
        handles.append(sessionHandle(p))
    }
    _ = Handles.enter(sessions[0]!, .session)  // failures are recorded on the first session
    do {
        let logits = try Session.evaluate(together: handles.map(\.session), tokens: Array(UnsafeBufferPointer(start: tokens, count: count)))
        for (h, l) in zip(handles, logits) { h.logits = l }
        return MOE_STATUS_OK
    } catch {
        return fail(error)
    }
}

@c @implementation
public func moe_session_logits(_ session: OpaquePointer?, _ buf: UnsafeMutablePointer<Float>?, _ length: Int,
                               _ needed: UnsafeMutablePointer<Int>?) -> moe_status {
    guard let session else { return invalid("moe_session_logits: session is NULL") }
    guard Handles.enter(session, .session) else { return invalid("moe_session_logits: session was freed or is not a session handle") }
    let logits = sessionHandle(session).logits
    needed?.pointee = logits.count
    guard length >= logits.count else {
        return invalid("moe_session_logits: the logits need \(logits.count) floats, the buffer has \(length)")
    }
    guard let buf else { return logits.isEmpty ? MOE_STATUS_OK : invalid("moe_session_logits: buf is NULL") }
    logits.withUnsafeBufferPointer { buf.update(from: $0.baseAddress!, count: logits.count) }
    return MOE_STATUS_OK
}

@c @implementation
public func moe_session_position(_ session: OpaquePointer?, _ out: UnsafeMutablePointer<Int64>?) -> moe_status {
    guard let session else { return invalid("moe_session_position: session is NULL") }
    guard Handles.enter(session, .session) else { return invalid("moe_session_position: session was freed or is not a session handle") }
    guard let out else { return invalid("moe_session_position: out is NULL") }
    out.pointee = Int64(sessionHandle(session).session.position)
    return MOE_STATUS_OK
}

@c @implementation
public func moe_session_truncate(_ session: OpaquePointer?, _ keep: Int64) -> moe_status {
    guard let session else { return invalid("moe_session_truncate: session is NULL") }
    guard Handles.enter(session, .session) else { return invalid("moe_session_truncate: session was freed or is not a session handle") }
    do {
        try sessionHandle(session).session.truncate(to: Int(clamping: keep))
        return MOE_STATUS_OK
    } catch {
        return fail(error)
    }
}
