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
    /// The expert store, when the model was opened with an expert memory budget.
    let store: ExpertStore?
    /// The options the model was opened with.
    public let options: ModelOptions
    private let cachedTokenizer = Locked<Result<Tokenizer, MoEError>?>(nil)

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
    public convenience init(path: String, options: ModelOptions = ModelOptions()) throws(MoEError) {
        try self.init(file: try GGUFFile(path: path), options: options)
    }

    /// Binds the weights of an already open file; with `options.expertStore`, routed experts are
    /// served from a RAM budget (a budget below one layer's k experts is refused here).
    public init(file: GGUFFile, options modelOptions: ModelOptions = ModelOptions()) throws(MoEError) {
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
        self.options = modelOptions
        if let storeOptions = modelOptions.expertStore {
            store = try ExpertStore(file: file.mapping, config: config, weights: weights, options: storeOptions)
        } else {
            store = nil
        }
        if modelOptions.prefetchFile {
            if store == nil {
                file.mapping.prefetch()
            } else {
                // Only what stays mapped: the experts' pages must not enter RSS.
                for info in file.tensors where !info.name.contains("_exps.") {
                    let view = file.view(info)
                    file.mapping.prefetch(offset: view.fileOffset, count: view.byteCount)
                }
            }
        }
    }

    deinit { store?.shutdown() }

    /// Bytes one expert-store slot takes for this model (one routed expert's gate, up and down
    /// matrices, padded for aligned reads); 0 for a dense model. A budget of `n * expertSlotBytes`
    /// holds `n` experts; the smallest usable budget is `config.expertsUsed` slots.
    public var expertSlotBytes: Int {
        let parts = ExpertStore.parts(of: weights)
        return parts.allSatisfy(\.isEmpty) ? 0 : ExpertStore.slotLayout(parts).bytes
    }

    /// What the expert store did so far (nil without a budget). Shared by every session.
    public var expertStoreStats: ExpertStoreStats? { store?.stats() }

    /// Zeroes the expert store's counters (resident experts stay).
    public func resetExpertStoreStats() { store?.resetStats() }

    /// A new session (KV cache, scratch, thread pool) holding up to `contextLength` tokens and
    /// computing on `threads` threads (default: one per core).
    public func makeSession(contextLength: Int, threads: Int = ThreadPool.processorCount) throws(MoEError) -> Session {
        try Session(model: self, contextLength: contextLength, threads: threads)
    }
}
