/// The one error type of swift-moe: a code that maps one-to-one to the C API's `moe_status`,
/// a message that names the file, key or tensor and what was expected, and an optional cause.
public struct MoEError: Error, Sendable, CustomStringConvertible, Equatable {
    /// A stable error category; its raw value is the C API's `moe_status` value.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The `moe_status` value this code maps to.
        public let rawValue: Int32

        /// Creates a code from its `moe_status` value.
        public init(rawValue: Int32) { self.rawValue = rawValue }

        /// A caller passed an argument that is out of its domain (bad token id, bad size...).
        public static let invalidArgument = Code(rawValue: 1)
        /// The operating system refused an I/O operation (open, stat, mmap, read, write).
        public static let io = Code(rawValue: 2)
        /// A file is not a valid GGUF file or contradicts itself.
        public static let invalidFile = Code(rawValue: 3)
        /// A valid file uses something swift-moe does not support (a version, a type, an architecture).
        public static let unsupported = Code(rawValue: 4)
        /// Memory could not be reserved, or a request would need more than is allowed.
        public static let outOfMemory = Code(rawValue: 5)
        /// A lookup found nothing: a metadata key, a tensor name.
        public static let notFound = Code(rawValue: 6)
        /// A stored value has a different type than the caller asked for.
        public static let typeMismatch = Code(rawValue: 7)
        /// The operation was cancelled by its caller.
        public static let cancelled = Code(rawValue: 8)
        /// An internal invariant failed; always a bug in swift-moe.
        public static let `internal` = Code(rawValue: 9)

        /// A short lowercase name, as `moe_status_string` prints it.
        public var description: String {
            switch self {
            case .invalidArgument: "invalid argument"
            case .io: "I/O error"
            case .invalidFile: "invalid file"
            case .unsupported: "unsupported"
            case .outOfMemory: "out of memory"
            case .notFound: "not found"
            case .typeMismatch: "type mismatch"
            case .cancelled: "cancelled"
            case .internal: "internal error"
            default: "error \(rawValue)"
            }
        }
    }

    /// What kind of failure this is.
    public var code: Code
    /// A complete sentence naming the subject (file, key, tensor) and what was expected.
    public var message: String
    /// The file the error is about, when there is one.
    public var path: String?
    /// A lower-level description (for example `strerror(errno)`), when there is one.
    public var cause: String?

    /// Creates an error.
    public init(_ code: Code, _ message: String, path: String? = nil, cause: String? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.cause = cause
    }

    /// `path: message (cause)`, the one line the CLI prints.
    public var description: String {
        var text = ""
        if let path { text += "\(path): " }
        text += message
        if let cause { text += " (\(cause))" }
        return text
    }

    /// The same error, attributed to a file.
    func at(path: String) -> MoEError {
        var copy = self
        if copy.path == nil { copy.path = path }
        return copy
    }
}
