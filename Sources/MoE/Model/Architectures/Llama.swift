extension ArchitectureSpec {
    /// `llama`: Llama (dense) and Mixtral (`llama.expert_count` > 0). Adjacent-pair RoPE; the
    /// router renormalises the top-k weights (softmax over the chosen experts, as Mixtral defines it).
    public static let llama = ArchitectureSpec(
        name: "llama", rope: .normal, qkNorm: .none, feedForward: .expertsIfCounted,
        router: .init(gating: .softmax, normalizeTopK: true))
}
