/// How one architecture (as `general.architecture` names it) differs from the others. Every
/// difference the forward pass needs is a field here; the forward pass never checks a name.
public struct ArchitectureSpec: Sendable {
    /// How queries and keys are normalised before RoPE.
    public enum QKNorm: Sendable {
        /// No normalisation.
        case none
        /// RMSNorm over each head's slice, with one `[head_dim]` weight shared by the heads (Qwen3).
        case perHead
        /// RMSNorm over the whole projection, `[n_head * head_dim]` weight (OLMoE).
        case wholeProjection
    }

    /// What kind of feed-forward block a layer has.
    public enum FeedForward: Sendable {
        /// Routed experts (stacked `ffn_*_exps` tensors); an error if the file has none.
        case experts
        /// A dense SwiGLU block (`ffn_gate`, `ffn_up`, `ffn_down`).
        case dense
        /// Routed experts when `{arch}.expert_count` > 0, else dense (llama: Mixtral or Llama).
        case expertsIfCounted
    }

    /// The `general.architecture` value.
    public var name: String
    /// Which RoPE rotation the architecture uses.
    public var rope: RoPE.Style
    /// Query/key normalisation.
    public var qkNorm: QKNorm
    /// Whether `attn_q/k/v.bias` must be present (they are used whenever present).
    public var requiresQKVBias: Bool = false
    /// The feed-forward block.
    public var feedForward: FeedForward
    /// How the router turns logits into expert weights.
    public var router: Router.Options = .init()
    /// Whether layers also have a shared expert with a sigmoid gate (`ffn_*_shexp`, `ffn_gate_inp_shexp`).
    public var sharedExpert: Bool = false

    /// Every supported architecture, by name.
    public static let all: [String: ArchitectureSpec] = Dictionary(
        uniqueKeysWithValues: [llama, qwen3moe, qwen3, olmoe, qwen2moe].map { ($0.name, $0) })

    /// The spec for `name`, or an `.unsupported` error listing what is supported.
    public static func named(_ name: String) throws(MoEError) -> ArchitectureSpec {
        guard let spec = all[name] else {
            throw MoEError(.unsupported, "architecture '\(name)' is not supported; supported: \(all.keys.sorted().joined(separator: ", "))")
        }
        return spec
    }
}
