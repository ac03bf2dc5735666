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

/// Records `error` as the thread's last error and returns its status.
func fail(_ error: MoEError) -> moe_status {
    LastError.set(error.description)
    return error.code.rawValue
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
