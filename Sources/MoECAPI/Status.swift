import CMoE
import MoE

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The calling thread's last error message, stored as a malloc'd C string per thread.
enum LastError {
    static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { pointer in free(pointer) }
        return key
    }()

    static func set(_ message: String) {
        free(pthread_getspecific(key))
        pthread_setspecific(key, strdup(message))
    }

    static func clear() {
        free(pthread_getspecific(key))
        pthread_setspecific(key, nil)
    }
}

/// Records `error` as the thread's last error (and as the last error of the handle the current
/// call works on) and returns its status.
func fail(_ error: MoEError) -> moe_status {
    LastError.set(error.description)
    Handles.noteFailure(error.description)
    return error.code.rawValue
}

/// The handles the library has given out and not freed, with their kind and last error. Every
/// call checks its handle here, so a freed handle, a handle of another kind, or a pointer that
/// was never ours is an error instead of a crash (as long as the memory was not reused for a new
/// handle of the same kind).
enum Handles {
    enum Kind: Sendable { case model, session, sampler }
    struct Entry: Sendable {
        var kind: Kind
        /// The address of the last failure message of a call on this handle (a malloc'd C
        /// string), or 0.
        var lastError: UInt
    }
    /// Live handles by address.
    static let live = Locked<[UInt: Entry]>([:])

    /// The handle the calling thread's current call works on.
    static let currentKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    static func address(_ p: OpaquePointer) -> UInt { UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(p))) }

    static func register(_ p: OpaquePointer, _ kind: Kind) -> OpaquePointer {
        let key = address(p)
        live.withLock { $0[key] = Entry(kind: kind, lastError: 0) }
        return p
    }

    /// Whether `p` is a live handle of `kind`; makes it the current call's handle.
    static func enter(_ p: OpaquePointer, _ kind: Kind) -> Bool {
        let key = address(p)
        let ok = live.withLock { $0[key]?.kind == kind }
        pthread_setspecific(currentKey, ok ? UnsafeRawPointer(p) : nil)
        return ok
    }

    /// Starts a call that works on no handle.
    static func enterNone() { pthread_setspecific(currentKey, nil) }

    /// Forgets a handle; false when it was not a live handle of that kind.
    static func remove(_ p: OpaquePointer, _ kind: Kind) -> Bool {
        let key = address(p)
        let old: UInt? = live.withLock { table in
            guard let entry = table[key], entry.kind == kind else { return nil }
            table[key] = nil
            return entry.lastError
        }
        guard let old else { return false }
        free(UnsafeMutableRawPointer(bitPattern: old))
        return true
    }

    static func noteFailure(_ message: String) {
        guard let current = pthread_getspecific(currentKey) else { return }
        let key = UInt(bitPattern: Int(bitPattern: current))
        let copy = UInt(bitPattern: Int(bitPattern: strdup(message)))
        let old: UInt = live.withLock { table in
            guard table[key] != nil else { return copy }
            let previous = table[key]!.lastError
            table[key]!.lastError = copy
            return previous
        }
        free(UnsafeMutableRawPointer(bitPattern: old))
    }

    /// The last error message of a handle; "" when none or when the handle is not live.
    static func lastError(_ p: OpaquePointer?, _ kind: Kind) -> UnsafePointer<CChar> {
        guard let p else { return staticCString("\0") }
        let key = address(p)
        let message: UInt = live.withLock { $0[key]?.kind == kind ? $0[key]!.lastError : 0 }
        return UnsafePointer(bitPattern: message) ?? staticCString("\0")
    }
}

@c @implementation
public func moe_model_last_error(_ model: OpaquePointer?) -> UnsafePointer<CChar>! {
    Handles.lastError(model, .model)
}

@c @implementation
public func moe_session_last_error(_ session: OpaquePointer?) -> UnsafePointer<CChar>! {
    Handles.lastError(session, .session)
}

/// Records an invalid-argument failure.
func invalid(_ message: String) -> moe_status {
    fail(MoEError(.invalidArgument, message))
}

/// A C string with static storage from a literal that ends in NUL.
func staticCString(_ s: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self)
}

@c @implementation
public func moe_version() -> UnsafePointer<CChar>! {
    staticCString("0.1.0\0")
}

@c @implementation
public func moe_status_string(_ status: moe_status) -> UnsafePointer<CChar>! {
    switch status {
    case MOE_STATUS_OK: staticCString("ok\0")
    case MOE_STATUS_INVALID_ARGUMENT: staticCString("invalid argument\0")
    case MOE_STATUS_IO: staticCString("I/O error\0")
    case MOE_STATUS_INVALID_FILE: staticCString("invalid file\0")
    case MOE_STATUS_UNSUPPORTED: staticCString("unsupported\0")
    case MOE_STATUS_OUT_OF_MEMORY: staticCString("out of memory\0")
    case MOE_STATUS_NOT_FOUND: staticCString("not found\0")
    case MOE_STATUS_TYPE_MISMATCH: staticCString("type mismatch\0")
    case MOE_STATUS_CANCELLED: staticCString("cancelled\0")
    case MOE_STATUS_INTERNAL: staticCString("internal error\0")
    default: staticCString("unknown status\0")
    }
}

@c @implementation
public func moe_last_error() -> UnsafePointer<CChar>! {
    if let message = pthread_getspecific(LastError.key) {
        return UnsafePointer(message.assumingMemoryBound(to: CChar.self))
    }
    return staticCString("\0")
}
