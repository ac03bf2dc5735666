import Synchronization

/// A loaded model: the mapped GGUF file, its architecture, hyperparameters and bound weights.
/// Immutable and shareable across threads; each thread evaluates through its own `Session`.
///
/// ```swift
/// let model = try Model(path: "Qwen3-30B-A3B-Q4_K_M.gguf")
/// let session = try model.makeSession(contextLength: 4096)
/// let logits = try session.evaluate([9707, 11, 1879])   // last position's logits
/// ```
public final class Model: Sendable {
    /// The open file the weights are views of.
    public let file: GGUFFile
    /// The architecture's rules.
    public let spec: ArchitectureSpec
    /// The hyperparameters.
    public let config: ModelConfig
    let weights: ModelWeights
    let rope: RoPE
    let router: Router
    private let cachedTokenizer = Mutex<Result<Tokenizer, MoEError>?>(nil)

    /// The model's tokenizer, built from the file's vocabulary on first use and then shared.
    /// Throws when the file has no usable vocabulary (the error is remembered).
    public func tokenizer() throws(MoEError) -> Tokenizer {
        let result = cachedTokenizer.withLock { cached -> Result<Tokenizer, MoEError> in
            if let cached { return cached }
            let made = Result { () throws(MoEError) -> Tokenizer in try Tokenizer(file: file) }
            cached = made
            return made
        }
        return try result.get()
    }

    /// Opens `path` and binds every weight; an unsupported architecture, a missing tensor or a
    /// shape that contradicts the metadata is an error naming it.
    public convenience init(path: String) throws(MoEError) {
        try self.init(file: try GGUFFile(path: path))
    }

    /// Binds the weights of an already open file.
    public init(file: GGUFFile) throws(MoEError) {
        guard let arch = file.metadata.architecture else {
            throw MoEError(.invalidFile, "metadata key 'general.architecture' is missing", path: file.path)
        }
        do {
            spec = try ArchitectureSpec.named(arch)
            config = try ModelConfig(file: file, spec: spec)
            weights = try ModelWeights(file: file, spec: spec, config: config)
        } catch {
            throw error.at(path: file.path)
        }
        self.file = file
        rope = RoPE(style: spec.rope, dimensions: config.ropeDimensions, base: config.ropeBase, scaling: config.ropeScaling)
        var options = spec.router
        options.scale *= config.expertWeightsScale
        router = Router(options: options)
    }

    /// A new session (KV cache, scratch, thread pool) holding up to `contextLength` tokens and
    /// computing on `threads` threads (default: one per core).
    public func makeSession(contextLength: Int, threads: Int = ThreadPool.processorCount) throws(MoEError) -> Session {
        try Session(model: self, contextLength: contextLength, threads: threads)
    }
}
