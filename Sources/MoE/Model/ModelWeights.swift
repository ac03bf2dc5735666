/// A 1-D weight (norm scale, bias, gate vector) as `Float`s: a view when the file stores F32,
/// otherwise dequantized once at load (these vectors are a few KB).
struct VectorWeight: @unchecked Sendable {
    let pointer: UnsafePointer<Float>
    let count: Int
    private let owner: FloatStorage?

    init(_ view: TensorView) throws(MoEError) {
        count = view.elementCount
        if view.type == .f32 {
            pointer = view.bytes.baseAddress!.assumingMemoryBound(to: Float.self)
            owner = nil
        } else {
            let storage = FloatStorage(try view.dequantized())
            owner = storage
            pointer = UnsafePointer(storage.pointer)
        }
    }
}

/// Owned float memory with a stable address, freed with its last reference.
final class FloatStorage: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(_ values: [Float]) {
        count = values.count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(from: values, count: count)
    }

    init(zeros count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }
}

/// The feed-forward weights of one layer.
enum FeedForwardWeights: @unchecked Sendable {
    /// Routed experts, optionally with a sigmoid-gated shared expert.
    case experts(router: Linear, gate: ExpertLinear, up: ExpertLinear, down: ExpertLinear, shared: SharedExpertWeights?)
    /// A dense SwiGLU block.
    case dense(gate: Linear, up: Linear, down: Linear)
}

/// A shared expert: a SwiGLU block whose output is scaled by sigmoid(gate · x).
struct SharedExpertWeights: @unchecked Sendable {
    let gateInput: VectorWeight
    let gate: Linear
    let up: Linear
    let down: Linear
}

/// One transformer block's weights, bound once at load as views into the mapping.
struct LayerWeights: @unchecked Sendable {
    let attentionNorm: VectorWeight
    let q: Linear, k: Linear, v: Linear, output: Linear
    let qBias: VectorWeight?, kBias: VectorWeight?, vBias: VectorWeight?
    let qNorm: VectorWeight?, kNorm: VectorWeight?
    let ffnNorm: VectorWeight
    let feedForward: FeedForwardWeights
}

/// Every weight the forward pass uses, checked against the config at load.
struct ModelWeights: @unchecked Sendable {
    let embedding: TensorView
    let outputNorm: VectorWeight
    let output: Linear
    let layers: [LayerWeights]
    /// The widest activation any matrix reads (sizes the per-session scratch).
    let widestInput: Int

    init(file: GGUFFile, spec: ArchitectureSpec, config c: ModelConfig) throws(MoEError) {
        let arch = spec.name
        func tensor(_ name: String, _ shape: [Int]) throws(MoEError) -> TensorView {
            guard let info = file.tensorInfo(name) else {
                throw MoEError(.invalidFile, "tensor '\(name)' is missing (\(arch) needs it)", path: file.path)
            }
            guard info.shape == shape else {
                throw MoEError(.invalidFile, "tensor '\(name)' has shape \(info.shape), expected \(shape) for this \(arch) model", path: file.path)
            }
            return file.view(info)
        }
        func optional(_ name: String, _ shape: [Int]) throws(MoEError) -> TensorView? {
            file.tensorInfo(name) == nil ? nil : try tensor(name, shape)
        }
        func linear(_ name: String, _ inputs: Int, _ outputs: Int) throws(MoEError) -> Linear {
            Linear(try tensor(name, [inputs, outputs]))
        }
        func vector(_ name: String, _ n: Int) throws(MoEError) -> VectorWeight {
            try VectorWeight(try tensor(name, [n]))
        }
        func optionalVector(_ name: String, _ n: Int) throws(MoEError) -> VectorWeight? {
            guard let view = try optional(name, [n]) else { return nil }
            return try VectorWeight(view)
        }

        let d = c.embedding, qDim = c.heads * c.headDimension, kvDim = c.kvHeads * c.headDimension
        let vDim = c.kvHeads * c.valueDimension, attnOut = c.heads * c.valueDimension
        embedding = try tensor("token_embd.weight", [d, c.vocabulary])
        outputNorm = try vector("output_norm.weight", d)
        output = try Linear(optional("output.weight", [d, c.vocabulary]) ?? embedding)
        var widest = max(d, attnOut)
        var layers: [LayerWeights] = []
        for i in 0..<c.layers {
            let p = "blk.\(i)."
            let qNorm: VectorWeight?, kNorm: VectorWeight?
            switch spec.qkNorm {
            case .none: (qNorm, kNorm) = (nil, nil)
            case .perHead: (qNorm, kNorm) = (try vector(p + "attn_q_norm.weight", c.headDimension), try vector(p + "attn_k_norm.weight", c.headDimension))
            case .wholeProjection: (qNorm, kNorm) = (try vector(p + "attn_q_norm.weight", qDim), try vector(p + "attn_k_norm.weight", kvDim))
            }
            let biases = (try optionalVector(p + "attn_q.bias", qDim), try optionalVector(p + "attn_k.bias", kvDim), try optionalVector(p + "attn_v.bias", vDim))
            if spec.requiresQKVBias && (biases.0 == nil || biases.1 == nil || biases.2 == nil) {
                throw MoEError(.invalidFile, "tensor '\(p)attn_q/k/v.bias' is missing (\(arch) needs q, k and v biases)", path: file.path)
            }
            let ffn: FeedForwardWeights
            if c.isMoE {
                let e = c.experts, f = c.expertFeedForward
                var shared: SharedExpertWeights?
                if spec.sharedExpert {
                    guard let up = file.tensorInfo(p + "ffn_up_shexp.weight"), up.shape.count == 2 else {
                        throw MoEError(.invalidFile, "tensor '\(p)ffn_up_shexp.weight' is missing (\(arch) needs a shared expert)", path: file.path)
                    }
                    let sf = up.shape[1]
                    shared = SharedExpertWeights(gateInput: try vector(p + "ffn_gate_inp_shexp.weight", d),
                                                 gate: try linear(p + "ffn_gate_shexp.weight", d, sf),
                                                 up: try linear(p + "ffn_up_shexp.weight", d, sf),
                                                 down: try linear(p + "ffn_down_shexp.weight", sf, d))
                    widest = max(widest, sf)
                }
                ffn = .experts(router: try linear(p + "ffn_gate_inp.weight", d, e),
                               gate: ExpertLinear(try tensor(p + "ffn_gate_exps.weight", [d, f, e])),
                               up: ExpertLinear(try tensor(p + "ffn_up_exps.weight", [d, f, e])),
                               down: ExpertLinear(try tensor(p + "ffn_down_exps.weight", [f, d, e])),
                               shared: shared)
                widest = max(widest, f)
            } else {
                guard c.feedForward > 0 else {
                    throw MoEError(.invalidFile, "metadata key '\(arch).feed_forward_length' is missing (a dense \(arch) model needs it)", path: file.path)
                }
                let f = c.feedForward
                ffn = .dense(gate: try linear(p + "ffn_gate.weight", d, f), up: try linear(p + "ffn_up.weight", d, f),
                             down: try linear(p + "ffn_down.weight", f, d))
                widest = max(widest, f)
            }
            layers.append(LayerWeights(
                attentionNorm: try vector(p + "attn_norm.weight", d),
                q: try linear(p + "attn_q.weight", d, qDim), k: try linear(p + "attn_k.weight", d, kvDim),
                v: try linear(p + "attn_v.weight", d, vDim), output: try linear(p + "attn_output.weight", attnOut, d),
                qBias: biases.0, kBias: biases.1, vBias: biases.2, qNorm: qNorm, kNorm: kNorm,
                ffnNorm: try vector(p + "ffn_norm.weight", d), feedForward: ffn))
        }
        self.layers = layers
        self.widestInput = widest
    }
}
