extension ArchitectureSpec {
    /// `qwen2moe` (Qwen1.5-MoE, Qwen2-57B-A14B): q/k/v biases, NeoX RoPE, routed experts without
    /// renormalisation, plus a shared expert scaled by sigmoid(`ffn_gate_inp_shexp` · x).
    public static let qwen2moe = ArchitectureSpec(
        name: "qwen2moe", rope: .neox, qkNorm: .none, requiresQKVBias: true, feedForward: .experts,
        router: .init(gating: .softmax, normalizeTopK: false), sharedExpert: true)
}
