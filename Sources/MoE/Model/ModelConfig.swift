/// The hyperparameters the forward pass needs, read from a file's metadata and tensor shapes.
public struct ModelConfig: Sendable, Equatable {
    /// RoPE frequency scaling, as `{arch}.rope.scaling.*` describes it.
    public enum RoPEScaling: Sendable, Equatable {
        /// No scaling.
        case none
        /// Positions divided by `factor` (`freq_scale = 1 / factor`).
        case linear(factor: Double)
        /// YaRN: interpolation blended with extrapolation per frequency, with attention scaling.
        case yarn(factor: Double, originalContext: Int)
    }

    public var layers: Int
    public var embedding: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDimension: Int
    public var valueDimension: Int
    public var vocabulary: Int
    public var contextLength: Int
    public var rmsEpsilon: Float
    public var ropeBase: Float
    public var ropeDimensions: Int
    public var ropeScaling: RoPEScaling
    /// Routed experts per layer (0 for a dense model).
    public var experts: Int
    /// Experts used per token (top-k).
    public var expertsUsed: Int
    /// One expert's hidden size.
    public var expertFeedForward: Int
    /// The dense FFN hidden size (or the shared expert's, where the arch has one).
    public var feedForward: Int
    /// Scale applied to the routed weights (`{arch}.expert_weights_scale`; 1 when absent).
    public var expertWeightsScale: Float

    /// Reads the config of `file` for `spec`; missing or inconsistent values are errors naming the key.
    init(file: GGUFFile, spec: ArchitectureSpec) throws(MoEError) {
        let m = file.metadata
        func positive(_ key: String) throws(MoEError) -> Int {
            let v = try m.int(key)
            guard v > 0 && v <= 1 << 24 else {
                throw MoEError(.invalidFile, "metadata key '\(m.resolve(key))' is \(v), expected a positive count", path: file.path)
            }
            return v
        }
        layers = try positive("{arch}.block_count")
        embedding = try positive("{arch}.embedding_length")
        heads = try positive("{arch}.attention.head_count")
        kvHeads = m.contains("{arch}.attention.head_count_kv") ? try positive("{arch}.attention.head_count_kv") : heads
        guard heads % kvHeads == 0 else {
            throw MoEError(.invalidFile, "\(heads) attention heads cannot share \(kvHeads) KV heads evenly", path: file.path)
        }
        headDimension = m.contains("{arch}.attention.key_length") ? try positive("{arch}.attention.key_length") : embedding / heads
        valueDimension = m.contains("{arch}.attention.value_length") ? try positive("{arch}.attention.value_length") : headDimension
        contextLength = try m.int("{arch}.context_length", default: 4096)
        rmsEpsilon = Float(try m.double("{arch}.attention.layer_norm_rms_epsilon", default: 1e-5))
        ropeBase = Float(try m.double("{arch}.rope.freq_base", default: 10_000))
        ropeDimensions = try m.int("{arch}.rope.dimension_count", default: headDimension)
        guard ropeDimensions > 0, ropeDimensions <= headDimension, ropeDimensions % 2 == 0 else {
            throw MoEError(.invalidFile, "rope dimension count \(ropeDimensions) must be even and at most the head dimension \(headDimension)", path: file.path)
        }
        let factor = try m.double("{arch}.rope.scaling.factor", default: 0)
        switch try m.optionalString("{arch}.rope.scaling.type") ?? "none" {
        case "none": ropeScaling = .none
        case "linear": ropeScaling = factor > 0 && factor != 1 ? .linear(factor: factor) : .none
        case "yarn":
            ropeScaling = factor > 0 && factor != 1
                ? .yarn(factor: factor, originalContext: try m.int("{arch}.rope.scaling.original_context_length", default: contextLength))
                : .none
        case let other:
            throw MoEError(.unsupported, "rope scaling type '\(other)' is not supported (none, linear, yarn are)", path: file.path)
        }
        guard let embd = file.tensorInfo("token_embd.weight"), embd.shape.count == 2, embd.shape[0] == embedding else {
            throw MoEError(.invalidFile, "tensor 'token_embd.weight' is missing or not [\(embedding), n_vocab]", path: file.path)
        }
        vocabulary = embd.shape[1]
        experts = try m.int("{arch}.expert_count", default: 0)
        expertsUsed = try m.int("{arch}.expert_used_count", default: 0)
        feedForward = try m.int("{arch}.feed_forward_length", default: 0)
        expertFeedForward = try m.int("{arch}.expert_feed_forward_length", default: 0)
        expertWeightsScale = Float(try m.double("{arch}.expert_weights_scale", default: 1))
        if expertWeightsScale == 0 { expertWeightsScale = 1 }
        let usesExperts: Bool = switch spec.feedForward {
        case .experts: true
        case .dense: false
        case .expertsIfCounted: experts > 0
        }
        if usesExperts {
            guard experts > 0, expertsUsed > 0, expertsUsed <= experts else {
                throw MoEError(.invalidFile, "expert_count \(experts) and expert_used_count \(expertsUsed) must satisfy 0 < used <= count", path: file.path)
            }
            if expertFeedForward == 0, let gate = file.tensorInfo("blk.0.ffn_gate_exps.weight"), gate.shape.count == 3 {
                expertFeedForward = gate.shape[1]
            }
        } else {
            experts = 0
            expertsUsed = 0
        }
    }

    /// Whether layers have routed experts.
    public var isMoE: Bool { experts > 0 }
}
